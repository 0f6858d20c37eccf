"""The ``videoperlin`` command line.

Built on the standard library's argparse: the subcommands' flag names are fixed by the project's
issues (``--num-videos``, ``--shard I/N``, a bare ``--gif``), and argparse spells them exactly so.
Every user error is a :class:`~videoperlin.errors.VideoperlinError`, printed as one line
(``videoperlin: error: ...``) with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from videoperlin.errors import ConfigError, VideoperlinError

Command = Callable[[argparse.Namespace], int]


def add_label_space_arguments(parser: argparse.ArgumentParser) -> None:
    """--preset, or explicit --fx/--fy/--ft lists, or a --labels file."""
    group = parser.add_argument_group("label space (a class is a frequency triple fx, fy, ft)")
    group.add_argument("--preset", default=None, help="low | high | wide | tiny (default: low)")
    group.add_argument("--fx", default=None, help="x frequencies (cells per frame width), e.g. 1,2,4,8")
    group.add_argument("--fy", default=None, help="y frequencies (cells per frame height)")
    group.add_argument("--ft", default=None, help="t frequencies (cells per clip length)")
    group.add_argument("--labels", default=None, help="JSON/YAML file with fx, fy and ft lists")


def label_space_from_args(args: argparse.Namespace):  # -> LabelSpace
    """Resolve the label space from --preset / --fx --fy --ft / --labels (exactly one source)."""
    from videoperlin.vpn.labels import LabelSpace, parse_frequency_list

    explicit = [args.fx, args.fy, args.ft]
    sources = [args.preset is not None, any(v is not None for v in explicit), args.labels is not None]
    if sum(sources) > 1:
        raise ConfigError("give only one of --preset, --fx/--fy/--ft or --labels")
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise ConfigError("--fx, --fy and --ft must be given together (e.g. --fx 1,2 --fy 1,2 --ft 1,4)")
        return LabelSpace(*(parse_frequency_list(text, axis) for text, axis in zip(explicit, ("fx", "fy", "ft"))))
    if args.labels is not None:
        return LabelSpace.from_file(args.labels)
    return LabelSpace.preset(args.preset or "low")


def add_vpn_arguments(parser: argparse.ArgumentParser, num_videos: int) -> None:
    """Clip geometry, seed and intra-class variety of a VPN dataset."""
    add_label_space_arguments(parser)
    group = parser.add_argument_group("clips")
    group.add_argument("--num-videos", type=int, default=num_videos, help=f"videos in the set (default {num_videos})")
    group.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    group.add_argument("--size", type=int, default=112, help="frame height and width in pixels (default 112)")
    group.add_argument("--seed", type=int, default=0, help="base seed; sample i is a function of (seed, i)")
    group.add_argument("--octaves", type=int, default=1, help="fractal octaves (default 1: pure single-frequency noise)")
    group.add_argument("--persistence", type=float, default=0.5, help="amplitude ratio between octaves")
    group.add_argument("--lacunarity", type=float, default=2.0, help="frequency ratio between octaves")
    group.add_argument("--tileable", action="store_true", help="seamlessly looping lattice")
    group.add_argument("--no-random-phase", action="store_true", help="align the lattice with the pixel grid")
    group.add_argument("--contrast-jitter", type=float, default=0.25, help="contrast drawn from U(1-j, 1+j)")
    group.add_argument("--brightness-jitter", type=float, default=0.1, help="mean gray drawn from 0.5+U(-j, j)")


def vpn_dataset_from_args(args: argparse.Namespace):  # -> VPNDataset
    """Build the VPNDataset described by :func:`add_vpn_arguments` flags."""
    from videoperlin.vpn.dataset import VPNDataset

    return VPNDataset(
        label_space_from_args(args), num_videos=args.num_videos, frames=args.frames, size=args.size,
        seed=args.seed, octaves=args.octaves, persistence=args.persistence, lacunarity=args.lacunarity,
        tileable=args.tileable, random_phase=not args.no_random_phase,
        contrast_jitter=args.contrast_jitter, brightness_jitter=args.brightness_jitter,
    )


def cmd_generate(args: argparse.Namespace) -> int:
    """Render a VPN dataset to DIR/<class_name>/<index:08d>.<ext> with manifest.csv and dataset.json."""
    from videoperlin.vpn.export import export_dataset, parse_shard

    shard = parse_shard(args.shard)
    ds = vpn_dataset_from_args(args)
    summary = export_dataset(ds, args.out, fmt=args.format, shard=shard, batch_size=args.batch_size,
                             npy_dtype=args.npy_dtype, crf=args.crf, workers=args.workers,
                             progress=not args.quiet)
    status = "manifest.csv written" if summary.manifest_written else "manifest.csv pending other shards"
    print(f"{args.out}: wrote {summary.written}, kept {summary.skipped} of {summary.shard_size} videos "
          f"in shard {args.shard}; {len(ds.space)} classes; {status}")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    """Draw the teaser-style class grid (and optionally an animated GIF)."""
    from videoperlin.vpn.preview import preview_gif, preview_grid

    ds = vpn_dataset_from_args(args)
    grid = preview_grid(ds, args.out, ft=args.show_ft, frame=args.frame)
    print(f"wrote {grid}")
    if args.gif:
        gif = preview_gif(ds, grid.with_suffix(".gif"))
        print(f"wrote {gif}")
    return 0


def parse_clip_size(text: str) -> tuple[int, int, int]:
    """Parse ``TxHxW`` (e.g. 16x112x112)."""
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise ConfigError(f"--input {text!r} must look like TxHxW, e.g. 16x112x112")
    return dims  # type: ignore[return-value]


def cmd_models(args: argparse.Namespace) -> int:
    """List registered models with parameter counts (and forward GFLOPs per clip with --flops)."""
    from videoperlin.models import count_parameters, create_model, list_models
    from videoperlin.models.flops import count_flops

    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"no model matches {args.pattern!r}; try --pattern 'r3d*'")
    size = parse_clip_size(args.input)
    header = f"{'model':10} {'params (M)':>11}" + (f" {'GFLOPs @ ' + args.input:>22}" if args.flops else "")
    print(header)
    for name in names:
        line = f"{name:10} {count_parameters(create_model(name, num_classes=args.num_classes)) / 1e6:11.2f}"
        if args.flops:
            line += f" {count_flops(name, size, args.num_classes) / 1e9:22.1f}"
        print(line)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert a 3D-ResNets-PyTorch checkpoint into this project's model format (safetensors + JSON)."""
    from videoperlin.models.checkpoint import save_model
    from videoperlin.models.hara import import_hara_checkpoint

    model = import_hara_checkpoint(args.source, conv1_t_stride=args.conv1_t_stride, no_max_pool=args.no_max_pool)
    out = save_model(model, args.out, extra={"converted_from": str(args.source)})
    print(f"{args.source} -> {out} ({model.config['name']}, {model.num_classes} classes)")
    return 0


def cmd_inflate(args: argparse.Namespace) -> int:
    """Inflate a 2D ResNet state dict into a 3D model and save it in this project's model format."""
    from videoperlin.models import create_model
    from videoperlin.models.checkpoint import save_model
    from videoperlin.models.inflate import inflate_2d

    model = create_model(args.model, num_classes=args.num_classes, temporal_padding=args.temporal_padding)
    report = inflate_2d(model, args.source, drop_classifier=args.num_classes != args.source_classes)
    print(report.summary())
    save_model(model, args.out, extra={"inflated_from": str(args.source)})
    print(f"wrote {args.out}")
    return 0


def add_model_commands(sub) -> None:
    """The ``models``, ``convert`` and ``inflate`` subcommands."""
    models = sub.add_parser("models", help="list models with parameters and FLOPs", description=cmd_models.__doc__)
    models.add_argument("--pattern", default="*", help="shell pattern, e.g. 'r3d*'")
    models.add_argument("--num-classes", type=int, default=400)
    models.add_argument("--flops", action="store_true", help="also count forward FLOPs (meta device, no compute)")
    models.add_argument("--input", default="16x112x112", help="clip size TxHxW for --flops")
    models.set_defaults(func=cmd_models)

    convert = sub.add_parser("convert", help="import a 3D-ResNets-PyTorch checkpoint", description=cmd_convert.__doc__)
    convert.add_argument("source", help="checkpoint .pth ({'arch', 'state_dict', ...})")
    convert.add_argument("--out", required=True, help="output directory (model.safetensors + config.json)")
    convert.add_argument("--conv1-t-stride", type=int, default=1, help="not recorded in the weights (authors: 1)")
    convert.add_argument("--no-max-pool", action="store_true", help="not recorded in the weights")
    convert.set_defaults(func=cmd_convert)

    inflate = sub.add_parser("inflate", help="inflate 2D ResNet weights to a 3D model", description=cmd_inflate.__doc__)
    inflate.add_argument("source", help="2D ResNet state dict (.pth/.pt/.safetensors)")
    inflate.add_argument("--model", required=True, help="target r3d model, e.g. r3d50")
    inflate.add_argument("--out", required=True, help="output directory")
    inflate.add_argument("--num-classes", type=int, default=400, help="classes of the 3D model's head")
    inflate.add_argument("--source-classes", type=int, default=1000, help="classes of the 2D head (kept if equal)")
    inflate.add_argument("--temporal-padding", default="zeros", help="zeros | replicate (exact on static clips)")
    inflate.set_defaults(func=cmd_inflate)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with all subcommands."""
    from videoperlin import __version__

    parser = argparse.ArgumentParser(prog="videoperlin", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"videoperlin {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    gen = sub.add_parser("generate", help="render a VPN dataset to disk", description=cmd_generate.__doc__)
    add_vpn_arguments(gen, num_videos=1000)
    gen.add_argument("--out", required=True, help="output directory")
    gen.add_argument("--format", default="mp4", help="mp4 (H.264, CRF --crf) or npy (exact)")
    gen.add_argument("--npy-dtype", default="uint8", help="uint8 or float32 for --format npy")
    gen.add_argument("--crf", type=int, default=10, help="H.264 quality for mp4 (default 10: visually lossless)")
    gen.add_argument("--shard", default="0/1", help="I/N: write only indices i with i %% N == I (0-based)")
    gen.add_argument("--batch-size", type=int, default=32, help="clips rendered per call")
    gen.add_argument("--workers", type=int, default=2, help="encoder threads")
    gen.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=cmd_generate)

    pre = sub.add_parser("preview", help="draw a grid of VPN classes (and a GIF)", description=cmd_preview.__doc__)
    add_vpn_arguments(pre, num_videos=100000)
    pre.add_argument("--out", default="vpn_preview.png", help="grid PNG path (the GIF goes beside it)")
    pre.add_argument("--gif", action="store_true", help="also write an animated GIF of a few classes")
    pre.add_argument("--show-ft", type=int, default=None, help="temporal frequency shown in the grid")
    pre.add_argument("--frame", type=int, default=None, help="frame shown (default: middle)")
    pre.set_defaults(func=cmd_preview)
    add_model_commands(sub)
    from videoperlin.cli_train import add_train_commands

    add_train_commands(sub)
    from videoperlin.cli_analysis import add_analysis_commands

    add_analysis_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``videoperlin`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except VideoperlinError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        # An error re-raised from a DataLoader worker carries the worker's traceback; keep its last line.
        message = lines[-1].split(": ", 1)[-1] if "Traceback" in str(exc) else " ".join(lines)
        print(f"videoperlin: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("videoperlin: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
