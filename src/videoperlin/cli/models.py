"""``models``, ``convert`` and ``inflate``: the model zoo from the command line."""

from __future__ import annotations

import argparse

from videoperlin.config_fields import bounded_int
from videoperlin.errors import ConfigError, VideoperlinError, quoted
from videoperlin.utils.atomic import atomic_write_text


def parse_clip_size(text: str) -> tuple[int, int, int]:
    """Parse ``TxHxW`` (e.g. 16x112x112)."""
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise ConfigError(f"--input {quoted(text)} must look like TxHxW, e.g. 16x112x112")
    return dims


def models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pattern", default="*", help="shell pattern, e.g. 'r3d*'")
    parser.add_argument("--num-classes", type=bounded_int(1), default=400)
    parser.add_argument("--flops", action="store_true", help="also count forward FLOPs (meta device, no compute)")
    parser.add_argument("--input", default="16x112x112", help="clip size TxHxW for --flops")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a model option, as the config key model.NAME takes it (repeatable), e.g. widen_factor=0.25, "
        "tubelet_size=4; models without the option are left out",
    )


def model_option_values(texts: list[str]) -> dict[str, object]:
    """``NAME=VALUE`` texts parsed by the types of the config's ``model.NAME`` fields."""
    from videoperlin.config_fields import parse_text
    from videoperlin.train.config import field_annotation

    values = {}
    for text in texts:
        name, sep, raw = text.partition("=")
        if not sep:
            raise ConfigError(f"--option {quoted(text)} must look like NAME=VALUE, e.g. widen_factor=0.25")
        values[name.strip()] = parse_text(raw, field_annotation(f"model.{name.strip()}"), f"model.{name.strip()}")
    return values


def run_models(args: argparse.Namespace) -> int:
    """List registered models with parameter counts (and forward GFLOPs per clip with --flops)."""
    import torch

    from videoperlin.models import architecture, count_parameters, create_model, list_models
    from videoperlin.models.flops import count_flops

    options = model_option_values(args.option)
    names = [n for n in list_models(args.pattern) if set(options) <= set(architecture(n).option_names())]
    if not names:
        raise ConfigError(
            f"no model matches {quoted(args.pattern)}"
            + (f" with options {', '.join(options)}" if options else "")
            + "; try --pattern 'r3d*'"
        )
    size = parse_clip_size(args.input)
    header = f"{'model':10} {'params (M)':>11}" + (f" {'GFLOPs @ ' + args.input:>22}" if args.flops else "")
    print(header)
    for name in names:
        with torch.device("meta"):  # shapes only: counting needs no weights
            parameters = count_parameters(create_model(name, num_classes=args.num_classes, **options))
        line = f"{name:10} {parameters / 1e6:11.2f}"
        if args.flops:
            line += f" {count_flops(name, size, args.num_classes, **options) / 1e9:22.2f}"
        print(line)
    return 0


def convert_arguments(parser: argparse.ArgumentParser) -> None:
    from videoperlin.models.frameworks import FRAMEWORKS as RESNET_FRAMEWORKS

    FRAMEWORKS = (*RESNET_FRAMEWORKS, "videomae")
    parser.add_argument(
        "source", nargs="?", default=None, help="weights: a .pth/.pt/.safetensors file or a model directory"
    )
    parser.add_argument(
        "--from",
        dest="source_format",
        choices=(*FRAMEWORKS, "videoperlin"),
        default=None,
        help="layout of SOURCE (default: videoperlin for a file that records its model, else hara with --to "
        "videoperlin)",
    )
    parser.add_argument(
        "--to",
        dest="target_format",
        choices=("videoperlin", *FRAMEWORKS),
        default="videoperlin",
        help="videoperlin: our model directory (model.safetensors + config.json); a framework: a "
        ".pth state dict its own model loads strictly, and a .json of how to build that model",
    )
    parser.add_argument("--out", default=None, help="output directory (--to videoperlin) or .pth file")
    parser.add_argument(
        "--config",
        default=None,
        help="instead of SOURCE: say before training whether the network of this recipe (a path or a built-in "
        "name, with --set) converts --to the framework",
    )
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="with --config")
    parser.add_argument(
        "--conv1-t-stride", type=bounded_int(1), default=None, help="not recorded in the weights (their default)"
    )
    parser.add_argument("--no-max-pool", action="store_true", default=None, help="not recorded in the weights")


def read_source_model(path: str, source_format: str, fixed: dict):
    """Our model from ``path`` in ``source_format`` (ours, hara, torchvision, mmaction2 or videomae)."""
    from videoperlin.models.frameworks import import_state_dict
    from videoperlin.models.from_3d_resnets_pytorch import import_hara_checkpoint
    from videoperlin.models.pretrained import load_model
    from videoperlin.models.videomae import import_videomae
    from videoperlin.models.weight_files import read_checkpoint_file

    if source_format == "videoperlin":
        if fixed:
            raise ConfigError(
                "--conv1-t-stride/--no-max-pool apply to imports; a videoperlin model records its options"
            )
        return load_model(path)
    if source_format == "hara":
        return import_hara_checkpoint(path, **fixed)
    if source_format == "videomae":
        if fixed:
            raise ConfigError(
                "--conv1-t-stride/--no-max-pool are ResNet options; VideoMAE checkpoints are transformers"
            )
        return import_videomae(read_checkpoint_file(path)[0], str(path))
    return import_state_dict(read_checkpoint_file(path)[0], source_format, str(path), **fixed)


def check_recipe_exports(recipe: str, sets: list[str], target: str) -> str:
    """The line saying that recipe's network converts to ``target``; a ConfigError naming what does not."""
    import torch

    from videoperlin.config_fields import to_dict
    from videoperlin.models import create_model
    from videoperlin.train.config import config_path, load_config

    config = load_config(config_path(recipe), None, sets)
    with torch.device("meta"):  # the options are what is checked: no weights needed
        model = create_model(config.model.name, num_classes=10, **to_dict(config.model.options()))
    try:
        check_exportable(model, target)
    except ConfigError as exc:
        raise ConfigError(f"--config {recipe}: its network cannot be converted --to {target}: {exc}") from None
    return f"--config {recipe}: {config.model.name} converts to {target}"


def check_exportable(model, target: str) -> None:
    """Refuse, naming the difference, a network that has no counterpart in ``target`` (before any weights move)."""
    from videoperlin.models.frameworks import check_corresponds
    from videoperlin.models.registry import architecture_of
    from videoperlin.models.videomae import check_exportable as videomae_exportable

    arch = architecture_of(model)
    if target == "videomae":
        videomae_exportable(model)
    elif arch.tokens:
        raise ConfigError(f"{arch.name} has no {target} counterpart; it converts to {', '.join(arch.frameworks)}")
    elif target != "videoperlin":
        check_corresponds(model, target)


def default_source_format(source: str, target: str) -> str:
    """Without --from: videoperlin for a file or directory that records its model (ours), else 3D-ResNets-PyTorch
    when converting into ours (its checkpoints are the common case), else ours."""
    from videoperlin.models.weight_files import read_checkpoint_file

    if target != "videoperlin":
        return "videoperlin"
    try:
        return "videoperlin" if "model_config" in read_checkpoint_file(source)[1] else "hara"
    except VideoperlinError:
        return "hara"  # unreadable here: the import says why


def run_convert(args: argparse.Namespace) -> int:
    """Convert weights between this project and torchvision, mmaction2 and 3D-ResNets-PyTorch (hara) for the
    video ResNets, and the VideoMAE release for the transformers: strict both ways (every tensor placed with
    its shape) or a one-line error naming the difference."""
    import json
    from pathlib import Path

    from videoperlin.models.frameworks import export_state_dict, framework_settings
    from videoperlin.models.hub import CARD_FILE, checkpoint_metadata, save_pretrained
    from videoperlin.models.videomae import to_videomae, videomae_settings
    from videoperlin.train.checkpointing import save_checkpoint
    from videoperlin.train.config import config_from_record

    if args.config is not None:
        if args.source is not None:
            raise ConfigError("give SOURCE weights to convert, or --config RECIPE to check before training; not both")
        print(check_recipe_exports(args.config, args.set, args.target_format))
        return 0
    if args.source is None or args.out is None:
        raise ConfigError("convert needs SOURCE and --out (or --config RECIPE --to FRAMEWORK to check a recipe)")
    source_format = args.source_format or default_source_format(args.source, args.target_format)
    fixed = {
        k: v for k, v in (("conv1_t_stride", args.conv1_t_stride), ("no_max_pool", args.no_max_pool)) if v is not None
    }
    model = read_source_model(args.source, source_format, fixed)
    name = f"{model.config['name']}, {model.num_classes} classes"
    if args.target_format == "videoperlin":  # a model directory with its model card (save_pretrained)
        metadata = (
            checkpoint_metadata(args.source) if source_format == "videoperlin" and Path(args.source).is_file() else {}
        )
        if metadata.get("config"):  # an older version's record, in today's names for the card
            metadata["config"] = config_from_record(metadata["config"]).to_dict()
        out = save_pretrained(model, args.out, {**metadata, "source": f"{args.source} ({source_format})"})
        print(f"{args.source} ({source_format}) -> {out} ({name}; model card {out / CARD_FILE})")
        return 0
    out = Path(args.out)
    out = out / f"{model.config['name']}-{args.target_format}.pth" if out.is_dir() else out
    sidecar = out.with_suffix(".json")
    if sidecar == out or Path(args.source).resolve() in (out.resolve(), sidecar.resolve()):
        raise ConfigError(
            f"--out {out}: the weights and their build settings ({sidecar}) must be two new files, not "
            f"{'one' if sidecar == out else 'the source'}; give the weights a suffix such as .pth"
        )
    check_exportable(model, args.target_format)
    if args.target_format == "videomae":
        settings, state = videomae_settings(model), to_videomae(model.state_dict())
    else:
        settings, state = framework_settings(model, args.target_format), export_state_dict(model, args.target_format)
    save_checkpoint(out, state)
    atomic_write_text(sidecar, json.dumps(settings, indent=2) + "\n")
    print(
        f"{args.source} ({source_format}) -> {out} ({args.target_format} layout, {name}); build the model as in "
        f"{out.with_suffix('.json')}"
    )
    return 0


def inflate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="2D ResNet state dict (.pth/.pt/.safetensors)")
    parser.add_argument("--model", required=True, help="target r3d model, e.g. r3d50")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--num-classes", type=bounded_int(1), default=400, help="classes of the 3D model's head")
    parser.add_argument(
        "--source-classes", type=bounded_int(1), default=1000, help="classes of the 2D head (kept if equal)"
    )
    parser.add_argument("--temporal-padding", default="zeros", help="zeros | replicate (exact on static clips)")


def run_inflate(args: argparse.Namespace) -> int:
    """Inflate a 2D ResNet state dict into a 3D model and save it in this project's model format."""
    from videoperlin.models import architecture, create_model, load_models
    from videoperlin.models.inflate import inflate_2d
    from videoperlin.models.weight_files import save_model

    if not architecture(args.model).inflates_from_2d:
        inflatable = [n for n, a in load_models().items() if a.inflates_from_2d]
        raise ConfigError(f"--model {args.model}: 2D ResNet weights inflate into {', '.join(inflatable)} only")
    model = create_model(args.model, num_classes=args.num_classes, temporal_padding=args.temporal_padding)
    report = inflate_2d(model, args.source, drop_classifier=args.num_classes != args.source_classes)
    print(report.summary())
    save_model(model, args.out, extra={"inflated_from": str(args.source)})
    print(f"wrote {args.out}")
    return 0
