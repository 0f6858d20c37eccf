"""``pretrain``, ``train``, ``evaluate``, ``check-data`` and ``config``: the training engine's commands.

Run settings come from a recipe (``--config``), shortcut flags and ``--set section.field=value``.
A shortcut flag is a row of :data:`SHORTCUTS`: its type, choices and help are those of the config
field it sets (:mod:`videoperlin.train.config`), so they cannot disagree.
"""

from __future__ import annotations

import argparse
import json
import os

from videoperlin.config_fields import bounded_int, describe, text_parser, type_name
from videoperlin.data.config import DataConfig
from videoperlin.errors import ConfigError
from videoperlin.train.config import (
    DEFAULT_RECIPES,
    SHORTCUTS,
    RunConfig,
    config_path,
    field_annotation,
    field_doc_of,
    load_config,
    recipe_config,
)

_RUN = (
    "out",
    "model",
    "widen_factor",
    "epochs",
    "batch_size",
    "lr",
    "amp",
    "seed",
    "max_steps",
    "checkpoint_every",
    "frames",
    "size",
    "workers",
)
_DATA = ("data", "dataset", "split", "splits_dir", "fold", "folds", "cache_dir", "on_bad_video")
#: The shortcut flags of each command.
COMMAND_SHORTCUTS = {
    "pretrain": _RUN + ("objective", "family", "preset", "num_videos") + _DATA,
    "train": _RUN + ("init", "ft_begin_module", "val_data") + _DATA,
    "evaluate": _DATA
    + ("val_data", "val_fraction", "seed", "frames", "size", "stride", "window_stride", "short_side", "workers"),
    "check-data": ("dataset", "split", "splits_dir", "frames", "short_side", "cache_dir"),
}


def add_shortcuts(parser: argparse.ArgumentParser, command: str) -> None:
    """The command's shortcut flags, typed and documented by the fields they set."""
    group = parser.add_argument_group(
        "shortcuts for config fields (any field: --set section.field=value; all of them: videoperlin config)"
    )
    for name in COMMAND_SHORTCUTS[command]:
        key = SHORTCUTS[name]
        annotation = field_annotation(key)
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=None,
            metavar=type_name(annotation),
            type=text_parser(annotation, key),
            help=f"{field_doc_of(key)} [{key}]",
        )


def shortcut_values(args: argparse.Namespace, command: str) -> dict[str, object]:
    """Config key -> value of the shortcut flags given on the command line."""
    return {SHORTCUTS[n]: getattr(args, n) for n in COMMAND_SHORTCUTS[command] if getattr(args, n, None) is not None}


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any config field, e.g. --set optim.schedule=cosine (repeatable)",
    )


def _run_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument(
        "--config",
        default=None,
        help=f"YAML recipe: a path, or a built-in name (configs/); default {DEFAULT_RECIPES[command]} "
        f"(videoperlin config {command} prints its every value)",
    )
    add_set_argument(parser)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    parser.add_argument(
        "--accept-changes",
        action="store_true",
        help="with --resume: go on with settings that differ from the run's (recorded in metrics.jsonl)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no log lines but errors")
    add_shortcuts(parser, command)
    if command == "train":
        parser.add_argument("--keep-head", action="store_true", help="load the --init classifier too (no head swap)")


def pretrain_arguments(parser: argparse.ArgumentParser) -> None:
    _run_arguments(parser, "pretrain")


def train_arguments(parser: argparse.ArgumentParser) -> None:
    _run_arguments(parser, "train")


def config_from_args(args: argparse.Namespace, task: str) -> RunConfig:
    """The run config of a ``pretrain``/``train`` command line."""
    overrides = shortcut_values(args, task)
    if getattr(args, "keep_head", False):
        overrides["train.reset_head"] = False
    if args.quiet:
        overrides["train.progress"] = False
    return recipe_config(task, args.config, overrides, args.set)


def run_training(args: argparse.Namespace) -> int:
    """Train with the engine: VPN pre-training (``pretrain``) or real video (``train``)."""
    from videoperlin.train.engine import Trainer

    config = config_from_args(args, args.command)
    if args.accept_changes and not args.resume:
        raise ConfigError("--accept-changes goes with --resume (it accepts changed settings of a resumed run)")
    trainer = Trainer(config, resume=args.resume, accept_changes=args.accept_changes)
    record = trainer.fit()
    if record:
        score = trainer.objective.score
        best = record.get(f"best_{score}")
        print(
            f"{config.train.out}: epoch {record['epoch']}, {score} {record.get(score, float('nan')):.4f}, "
            f"best {float('nan') if best is None else best:.4f}; checkpoints in {config.train.out}/checkpoints"
        )
    return 0


def evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="training checkpoint (its run config is reused) or saved model"
    )
    parser.add_argument("--out", default=None, help="report directory (default: RUN/eval-<subset>)")
    parser.add_argument("--subset", default="val", help="val, train or all videos of the run's split")
    parser.add_argument("--max-windows", type=bounded_int(1), default=None, help="windows per video (default: all)")
    add_set_argument(parser)
    parser.add_argument("-q", "--quiet", action="store_true")
    add_shortcuts(parser, "evaluate")


def run_evaluate(args: argparse.Namespace) -> int:
    """Clip- and video-level accuracy, per-class accuracy, confusion matrix and predictions of a
    checkpoint, on the validation split its run used (rebuilt from the checkpoint) unless flags say otherwise."""
    from videoperlin.train.evaluate import run_evaluation

    metrics = run_evaluation(
        args.checkpoint,
        args.out,
        args.subset,
        args.max_windows,
        shortcut_values(args, "evaluate"),
        args.set,
        progress=not args.quiet,
    )
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
    return 0


def check_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data", help="class folders, CSV manifest, UCF-101/HMDB-51 root, Kinetics CSV or ActivityNet JSON"
    )
    parser.add_argument("--strict", action="store_true", help="videos shorter than one clip fail the check too")
    parser.add_argument("-q", "--quiet", action="store_true")
    add_shortcuts(parser, "check-data")


def run_check_data(args: argparse.Namespace) -> int:
    """Scan a dataset: classes with train/test counts, listed-but-missing clips, unreadable videos (exit 1)
    and videos shorter than one clip (a warning; exit 1 with --strict)."""
    from videoperlin.data.check import check_catalog, format_report
    from videoperlin.data.sources import load_catalog

    given = shortcut_values(args, "check-data")
    # check-data decodes at data.short_side and never crops: data.size (a training setting) must not refuse a short side
    short_side = int(given.get("data.short_side") or DataConfig.short_side)  # type: ignore[call-overload]
    crop = {"data.size": min(short_side, DataConfig.size)}
    d = load_config(None, {"data.path": args.data, **crop, **given}, task="train").data
    catalog = load_catalog(args.data, d.dataset, d.split, d.splits_dir)
    report = check_catalog(catalog, d.frame_cache(), d.frames, not args.quiet)
    print(format_report(report, args.strict))
    return 0 if report.ok(args.strict) else 1


def prepare_arguments(parser: argparse.ArgumentParser) -> None:
    from videoperlin.data.encode import CRF_RANGE
    from videoperlin.data.prepare import DEFAULT_CRF

    parser.add_argument("source", help="dataset folder (its whole tree) or CSV manifest (the videos it lists)")
    parser.add_argument(
        "--short-side", type=bounded_int(1), required=True, help="short side of the copy in pixels (never enlarged)"
    )
    parser.add_argument("--out", required=True, help="folder of the copy (rerun to finish an interrupted copy)")
    parser.add_argument("--fps", type=float, default=None, help="at most this many frames a second (default: keep)")
    parser.add_argument(
        "--crf",
        type=bounded_int(*CRF_RANGE),
        default=DEFAULT_CRF,
        help=f"H.264 quality, {CRF_RANGE[0]}..{CRF_RANGE[1]} (default {DEFAULT_CRF})",
    )
    parser.add_argument(
        "--workers", type=bounded_int(0), default=os.cpu_count() or 1, help="processes encoding at once (0: this one)"
    )
    parser.add_argument("-q", "--quiet", action="store_true")


def run_prepare(args: argparse.Namespace) -> int:
    """Re-encode a dataset at its training resolution, keeping its layout; a summary line (and
    ``OUT/prepare.json``). Exit 1 when a video was unreadable (left out, as check-data reports it)."""
    from videoperlin.data.prepare import PrepareSettings, prepare_dataset

    if args.workers < 0:
        raise ConfigError(f"--workers {args.workers} must be 0 (this process) or more")
    settings = PrepareSettings(args.short_side, args.fps, args.crf)
    summary = prepare_dataset(args.source, args.out, settings, args.workers, progress=not args.quiet)
    print(f"{args.out}: {summary.line()}")
    for name in summary.unreadable[:10]:
        print(f"  unreadable, left out: {name}")
    return 1 if summary.unreadable else 0


def config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "command",
        nargs="?",
        choices=tuple(DEFAULT_RECIPES),
        default="pretrain",
        help="show what this command runs with no --config (its default recipe); default pretrain",
    )
    parser.add_argument("--config", default=None, help="show this recipe's values instead (a path or a built-in name)")
    add_set_argument(parser)


def run_config(args: argparse.Namespace) -> int:
    """Print the run config a command uses -- its default recipe, or another with --config, with --set
    applied -- as commented YAML: every field with its value, type and doc (a starting point for a recipe
    of your own)."""
    recipe = args.config or DEFAULT_RECIPES[args.command]
    config = load_config(config_path(recipe), None, args.set, task=args.command)
    print(f"# videoperlin {args.command} with recipe {recipe}" + (f" and {len(args.set)} --set" if args.set else ""))
    values = dict(_flat_values(config.to_dict()))
    section = None
    for key, kind, _, doc in describe(RunConfig):
        head, _, name = key.rpartition(".")
        if head != section and head:
            print(f"{head}:")
        section = head
        line = f"{'  ' if head else ''}{name or head}: {json.dumps(values[key])}"
        print(f"{line:44} # {doc} [{kind}]")
    return 0


def _flat_values(mapping: dict, prefix: str = ""):
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from _flat_values(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value
