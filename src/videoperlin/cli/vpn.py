"""``generate`` and ``preview``: VPN datasets to disk and pictures of the label space.

Their VPN flags are generated from :class:`~videoperlin.vpn.labels.LabelChoice` (the label space)
and :class:`~videoperlin.vpn.spec.VPNSpec` (the rendering options), so a new option of either is a
new flag here without an edit.
"""

from __future__ import annotations

import argparse

from videoperlin.utils.fields import add_field_arguments, values_of
from videoperlin.vpn.labels import LabelChoice
from videoperlin.vpn.spec import VPNSpec


def add_vpn_arguments(parser: argparse.ArgumentParser, num_videos: int) -> None:
    """Label space, set size, clip geometry, seed and every :class:`VPNSpec` option."""
    add_field_arguments(parser.add_argument_group("label space (one of: a preset, fx/fy/ft lists, a labels file)"),
                        LabelChoice)
    group = parser.add_argument_group("clips")
    group.add_argument("--num-videos", type=int, default=num_videos, help=f"videos in the set (default {num_videos})")
    group.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    group.add_argument("--size", type=int, default=112, help="frame height and width in pixels (default 112)")
    group.add_argument("--seed", type=int, default=0, help="base seed; sample i is a function of (seed, i)")
    add_field_arguments(parser.add_argument_group("rendering (VPNSpec)"), VPNSpec)


def vpn_dataset_from_args(args: argparse.Namespace):  # -> VPNDataset
    """The VPNDataset described by :func:`add_vpn_arguments` flags."""
    from videoperlin.vpn.dataset import VPNDataset

    space = LabelChoice(**values_of(LabelChoice, args)).label_space()
    return VPNDataset(space, num_videos=args.num_videos, frames=args.frames, size=args.size, seed=args.seed,
                      spec=VPNSpec.from_values(args))


def generate_arguments(parser: argparse.ArgumentParser) -> None:
    add_vpn_arguments(parser, num_videos=1000)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--format", default="mp4", help="mp4 (H.264, CRF --crf) or npy (exact)")
    parser.add_argument("--npy-dtype", default="uint8", help="uint8 or float32, for --format npy")
    parser.add_argument("--crf", type=int, default=10, help="H.264 quality for mp4 (default 10: visually lossless)")
    parser.add_argument("--shard", default="0/1", help="I/N: write only indices i with i %% N == I (0-based)")
    parser.add_argument("--batch-size", type=int, default=32, help="clips rendered per call")
    parser.add_argument("--workers", type=int, default=2, help="encoder threads")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run_generate(args: argparse.Namespace) -> int:
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


def preview_arguments(parser: argparse.ArgumentParser) -> None:
    add_vpn_arguments(parser, num_videos=100000)
    parser.add_argument("--out", default="vpn_preview.png", help="grid PNG path (the GIF goes beside it)")
    parser.add_argument("--gif", action="store_true", help="also write an animated GIF of a few classes")
    parser.add_argument("--show-ft", type=int, default=None, help="temporal frequency shown in the grid")
    parser.add_argument("--frame", type=int, default=None, help="frame shown (default: middle)")


def run_preview(args: argparse.Namespace) -> int:
    """Draw the teaser-style class grid (and optionally an animated GIF)."""
    from videoperlin.vpn.preview import preview_gif, preview_grid

    ds = vpn_dataset_from_args(args)
    grid = preview_grid(ds, args.out, ft=args.show_ft, frame=args.frame)
    print(f"wrote {grid}")
    if args.gif:
        print(f"wrote {preview_gif(ds, grid.with_suffix('.gif'))}")
    return 0
