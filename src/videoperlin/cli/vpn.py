"""``generate`` and ``preview``: synthetic clip sources to disk and pictures of their label space.

Their flags are generated from :class:`~videoperlin.vpn.source.ClipSource` (family, label choice,
options, count) and :class:`~videoperlin.geometry.ClipGeometry`, so a new family, or a new option
of one, is a new flag here without an edit.
"""

from __future__ import annotations

import argparse
import dataclasses

from videoperlin.config_fields import SEED_MAX, add_field_arguments, bounded_int, values_of
from videoperlin.data.encode import CRF_RANGE, DEFAULT_CRF
from videoperlin.geometry import ClipGeometry

SHARED = ("family", "num_videos", "preset", "labels", "label_mode", "rng")


def add_source_arguments(parser: argparse.ArgumentParser, num_videos: int) -> None:
    """The clip source (shared fields, then each family's own), the clip geometry and the seed."""
    from videoperlin.vpn.source import FAMILIES, ClipSource

    names = [f.name for f in dataclasses.fields(ClipSource)]
    add_field_arguments(
        parser.add_argument_group("clip source"),
        ClipSource,
        skip=[n for n in names if n not in SHARED],
        defaults={"num_videos": num_videos},
    )
    group = parser.add_argument_group("clips")
    add_field_arguments(group, ClipGeometry)
    group.add_argument(
        "--seed", type=bounded_int(0, SEED_MAX), default=0, help="base seed; sample i is a function of (seed, i)"
    )
    shown = set(SHARED)
    for family in FAMILIES.values():
        own = [f.name for g in (family.Labels, family.Options) for f in dataclasses.fields(g) if f.name not in shown]
        shown.update(own)
        add_field_arguments(
            parser.add_argument_group(f"family {family.name}: {family.description}"),
            ClipSource,
            skip=[n for n in names if n not in own],
        )


def dataset_from_args(args: argparse.Namespace, keep: tuple[str, ...] = ()):  # -> SyntheticDataset
    """The dataset named by :func:`add_source_arguments` flags (with the clip settings of
    ``VIDEOPERLIN_SET``, :data:`~videoperlin.train.config.ENV_SET`, over them but for ``keep``)."""
    from videoperlin.train.config import env_sets, parse_override
    from videoperlin.vpn.source import ClipSource

    for text in env_sets():
        key, value = parse_override(text)
        section, _, name = key.partition(".")
        ours = (section, name) in (("data", "frames"), ("data", "size")) or (
            section == "synthetic" and hasattr(args, name)
        )
        if ours and name not in keep:
            setattr(args, name, value)
    source = ClipSource(**values_of(ClipSource, args))
    return source.dataset(ClipGeometry(**values_of(ClipGeometry, args)), args.seed)


def families_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--family", default=None, help="describe only this family")


def run_families(args: argparse.Namespace) -> int:
    """List the registered formula families: description, presets (with their class counts), label axes
    and options (each option is a flag of generate/preview and a key vpn.<option> of the run config)."""
    from videoperlin.vpn.family import SourceOptions, get_family
    from videoperlin.vpn.source import FAMILIES

    for name in [args.family] if args.family else sorted(FAMILIES):
        family = get_family(name)
        presets = ", ".join(
            f"{p} ({len(family.label_space(family.Labels(preset=p)))} classes)"
            + (" [default]" if p == family.default_preset else "")
            for p in family.presets
        )
        shared = set(SourceOptions.names())
        options = [n for n in family.Options.names() if n not in shared]
        print(
            f"{name}: {family.description}\n  presets: {presets}\n  label axes: {', '.join(family.axis_names())}"
            f"\n  options: {', '.join(options) or '-'}"
        )
    return 0


def generate_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, num_videos=1000)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--format", default="mp4", help="mp4 (H.264, CRF --crf) or npy (exact)")
    parser.add_argument("--npy-dtype", default="uint8", help="uint8 or float32, for --format npy")
    parser.add_argument(
        "--crf",
        type=bounded_int(*CRF_RANGE),
        default=DEFAULT_CRF,
        help=f"H.264 quality for mp4, {CRF_RANGE[0]}..{CRF_RANGE[1]} (default %(default)s: visually lossless)",
    )
    parser.add_argument("--shard", default="0/1", help="I/N: write only indices i with i %% N == I (0-based)")
    parser.add_argument("--batch-size", type=bounded_int(1), default=32, help="clips rendered per call")
    parser.add_argument("--workers", type=bounded_int(1), default=2, help="encoder threads")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no log lines but errors")


def run_generate(args: argparse.Namespace) -> int:
    """Render a synthetic clip set to DIR/<class_name>/<index:08d>.<ext> with manifest.csv and dataset.json."""
    from videoperlin.vpn.export import export_dataset, parse_shard

    shard = parse_shard(args.shard)
    ds = dataset_from_args(args)
    summary = export_dataset(
        ds,
        args.out,
        fmt=args.format,
        shard=shard,
        batch_size=args.batch_size,
        npy_dtype=args.npy_dtype,
        crf=args.crf,
        workers=args.workers,
        progress=not args.quiet,
    )
    status = "manifest.csv written" if summary.manifest_written else "manifest.csv pending other shards"
    print(
        f"{args.out}: wrote {summary.written}, kept {summary.skipped} of {summary.shard_size} videos "
        f"in shard {args.shard}; {len(ds.space)} classes; {status}"
    )
    return 0


def preview_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, num_videos=100000)
    parser.add_argument("--out", default="vpn_preview.png", help="grid PNG path (the GIF goes beside it)")
    parser.add_argument("--gif", action="store_true", help="also write an animated GIF of a few classes")
    parser.add_argument("--show-ft", type=bounded_int(1), default=None, help="temporal frequency shown in the grid")
    parser.add_argument("--frame", type=bounded_int(0), default=None, help="frame shown (default: middle)")


def run_preview(args: argparse.Namespace) -> int:
    """Draw the teaser-style class grid (and optionally an animated GIF)."""
    from videoperlin.vpn.preview import preview_gif, preview_grid

    ds = dataset_from_args(args, keep=("num_videos",))  # one clip of every class, whatever the set's size
    grid = preview_grid(ds, args.out, ft=args.show_ft, frame=args.frame)
    print(f"wrote {grid}")
    if args.gif:
        print(f"wrote {preview_gif(ds, grid.with_suffix('.gif'))}")
    return 0
