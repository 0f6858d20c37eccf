"""Command-line front ends of the training engine: pretrain, train, evaluate, check-data."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from videoperlin.errors import ConfigError

#: Shortcut flags -> config keys (anything else: --set section.field=value).
SHORTCUTS = {
    "out": "train.out", "epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "optim.lr",
    "model": "model.name", "widen_factor": "model.widen_factor", "frames": "data.frames", "size": "data.size",
    "seed": "train.seed", "workers": "data.workers", "amp": "train.amp", "data": "data.data",
    "val_data": "data.val_data", "dataset": "data.dataset", "split": "data.split", "splits_dir": "data.splits_dir",
    "fold": "data.fold", "folds": "data.folds", "init": "train.init", "ft_begin_module": "train.ft_begin_module",
    "on_bad_video": "data.on_bad_video", "max_steps": "train.max_steps", "checkpoint_every": "train.checkpoint_every",
    "preset": "vpn.preset", "num_videos": "vpn.num_videos", "cache_dir": "data.cache_dir",
}
DEFAULT_PRETRAIN_CONFIG = "pretrain_cpu"


def builtin_config(name: str) -> Path:
    """Path of a built-in recipe (``configs/<name>.yaml`` inside the package)."""
    path = Path(str(resources.files("videoperlin") / "configs" / f"{name}.yaml"))
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"--config {name!r} is neither a file nor a built-in recipe ({', '.join(available)})")
    return path


def add_run_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    parser.add_argument("--config", default=None, help="YAML recipe (a path, or a built-in name: see configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override any config field, e.g. --set optim.schedule=cosine (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    group = parser.add_argument_group("shortcuts for common fields")
    for flag in ("out", "model", "amp", "init", "ft_begin_module", "on_bad_video", "splits_dir", "dataset",
                 "data", "val_data", "preset", "cache_dir"):
        if task == "pretrain" and flag in ("init", "ft_begin_module", "val_data"):
            continue
        if task == "train" and flag in ("preset",):
            continue
        group.add_argument(f"--{flag.replace('_', '-')}", default=None, help=f"= {SHORTCUTS[flag]}")
    for flag in ("epochs", "batch_size", "frames", "size", "seed", "workers", "split", "fold", "folds", "max_steps",
                 "checkpoint_every", "num_videos"):
        group.add_argument(f"--{flag.replace('_', '-')}", type=int, default=None, help=f"= {SHORTCUTS[flag]}")
    for flag in ("lr", "widen_factor"):
        group.add_argument(f"--{flag.replace('_', '-')}", type=float, default=None, help=f"= {SHORTCUTS[flag]}")
    if task == "train":
        group.add_argument("--keep-head", action="store_true", help="load the --init classifier too (no head swap)")


def config_from_args(args: argparse.Namespace, task: str):
    from videoperlin.train.config import load_config

    path = args.config
    if path is None and task == "pretrain":
        path = builtin_config(DEFAULT_PRETRAIN_CONFIG)
    elif path is not None and not Path(path).exists() and "/" not in path and not path.endswith(".yaml"):
        path = builtin_config(path)
    overrides = {key: getattr(args, flag) for flag, key in SHORTCUTS.items() if hasattr(args, flag)}
    if getattr(args, "keep_head", False):
        overrides["train.reset_head"] = False
    if args.quiet:
        overrides["train.progress"] = False
    return load_config(path, overrides, args.set, task=task)


def cmd_run(args: argparse.Namespace) -> int:
    """Train (VPN pre-training or real video) with the engine."""
    from videoperlin.train.engine import Trainer

    config = config_from_args(args, args.command)
    record = Trainer(config, resume=args.resume).fit()
    if record:
        print(f"{config.train.out}: epoch {record['epoch']}, val_acc {record.get('val_acc', float('nan')):.4f}, "
              f"best {record['best_val_acc']:.4f}; checkpoints in {config.train.out}/checkpoints")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Clip- and video-level accuracy, per-class accuracy, confusion matrix and predictions."""
    from videoperlin.train.evaluate import run_evaluation

    metrics = run_evaluation(args)
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    """Scan a dataset: class counts and unreadable, empty or too-short videos."""
    from videoperlin.data.check import check_source, format_report
    from videoperlin.data.decode import FrameCache
    from videoperlin.data.sources import load_source

    source = load_source(args.data, args.dataset, args.split, args.splits_dir)
    report = check_source(source, FrameCache(args.cache_dir, args.short_side), args.frames, not args.quiet)
    print(format_report(report, source.kind))
    return 0 if report.ok else 1


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default=None, help="rows of a CSV manifest with this 'dataset' value")
    parser.add_argument("--split", type=int, default=1, help="UCF-101/HMDB-51 split number")
    parser.add_argument("--splits-dir", default=None, help="folder of UCF-101/HMDB-51 split files")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--short-side", type=int, default=128, help="decode size (short side)")
    parser.add_argument("--cache-dir", default=None, help="decoded-frame cache (default: none)")
    parser.add_argument("-q", "--quiet", action="store_true")


def add_train_commands(sub) -> None:
    for task, text in (("pretrain", "VPN pre-training (on-the-fly VPN by default)"),
                       ("train", "train on real video, from scratch or --init CHECKPOINT")):
        parser = sub.add_parser(task, help=text, description=text)
        add_run_arguments(parser, task)
        parser.set_defaults(func=cmd_run)

    evaluate = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset", description=cmd_evaluate.__doc__)
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--out", required=True)
    add_data_arguments(evaluate)
    evaluate.set_defaults(frames=None)
    evaluate.add_argument("--size", type=int, default=None, help="default: the checkpoint's")
    evaluate.add_argument("--stride", type=int, default=1, help="temporal stride inside a clip")
    evaluate.add_argument("--window-stride", type=int, default=None, help="frames between windows (default: clip span)")
    evaluate.add_argument("--subset", default="val", choices=("val", "train", "all"))
    evaluate.add_argument("--fold", type=int, default=0)
    evaluate.add_argument("--folds", type=int, default=5)
    evaluate.add_argument("--val-fraction", type=float, default=0.2)
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the stratified split (as in training)")
    evaluate.add_argument("--workers", type=int, default=2)
    evaluate.add_argument("--on-bad-video", default="skip", choices=("skip", "fail"))
    evaluate.set_defaults(func=cmd_evaluate)

    check = sub.add_parser("check-data", help="scan a dataset for problems", description=cmd_check_data.__doc__)
    check.add_argument("data")
    add_data_arguments(check)
    check.set_defaults(func=cmd_check_data)
