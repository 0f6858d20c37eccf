"""``visualize kernels|samples``, ``tuning``, ``predictors`` and ``plot curves``: looking inside networks and runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from videoperlin.config_fields import add_field_arguments, bounded_int
from videoperlin.errors import ConfigError
from videoperlin.geometry import ClipGeometry

if TYPE_CHECKING:
    from torch import nn


def load_named_models(specs: list[str], names: str | None):
    """Models from checkpoint paths (or ``random:NAME[,option=value...]`` for a fresh initialisation)."""
    import torch
    import yaml

    from videoperlin.models import create_model
    from videoperlin.models.pretrained import load_model

    labels = names.split(",") if names else [Path(s).parent.parent.name if s.endswith(".pt") else s for s in specs]
    if len(labels) != len(specs):
        raise ConfigError(f"--names gives {len(labels)} names for {len(specs)} checkpoints")
    models: dict[str, nn.Module] = {}
    for label, spec in zip(labels, specs):
        if spec.startswith("random:"):
            name, *options = spec[len("random:") :].split(",")
            kwargs = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in options)}
            torch.manual_seed(0)
            models[label] = create_model(name, **kwargs).eval()
        else:
            models[label] = load_model(spec).eval()
    return models


def run_kernels(args: argparse.Namespace) -> int:
    """conv1 panels (paper style), full space-time views and x-t / y-t slices, checkpoints side by side."""
    from videoperlin.models.kernels import save_kernel_figures

    for path in save_kernel_figures(load_named_models(args.checkpoints, args.names), args.out):
        print(f"wrote {path}")
    return 0


def run_samples(args: argparse.Namespace) -> int:
    """A real clip next to VPN clips of chosen classes, as an animated GIF."""
    from videoperlin.analysis.samples import real_and_vpn_gif
    from videoperlin.vpn import frequency_preset

    classes = [int(c) for c in args.classes.split(",")] if args.classes else None
    path = real_and_vpn_gif(
        args.data, args.dataset, args.video, frequency_preset(args.preset), classes, args.frames, args.size, args.out
    )
    print(f"wrote {path}")
    return 0


def run_tuning(args: argparse.Namespace) -> int:
    """Orientation/direction/SF/TF tuning with drifting gratings: DSI/OSI per channel, the fraction of
    channels significantly direction selective (temporal-permutation null), CSVs, summaries and figures."""
    from videoperlin.analysis.tuning import (
        direction_p_values,
        input_kernels,
        measure_tuning,
        motion_asymmetry,
        plot_tuning,
        summary,
        write_tuning_csv,
    )
    from videoperlin.utils.atomic import atomic_write_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, summaries, p_values = {}, {}, {}
    for name, model in load_named_models(args.checkpoints, args.names).items():
        result = measure_tuning(model, args.layer, frames=args.frames, size=args.size)
        asymmetry = None
        if args.permutations:
            kernels = input_kernels(model, args.layer)
            p_values[name], asymmetry = direction_p_values(kernels, args.permutations), motion_asymmetry(kernels)
        results[name], summaries[name] = result, summary(result, p_values.get(name), args.alpha)
        summaries[name]["permutations"] = args.permutations
        write_tuning_csv(result, out / f"tuning_{name}.csv", p_values.get(name), asymmetry)
    plot_tuning(results, out, p_values=p_values)
    atomic_write_text(out / "summary.json", json.dumps(summaries, indent=2) + "\n")
    print(
        f"{'checkpoint':24} {'channels':>8} {'mean DSI':>9} {'mean OSI':>9} {'DSI>0.3':>8} {'OSI>0.3':>8} "
        f"{'p<' + str(args.alpha):>7} {'selective':>9}"
    )
    for name, s in summaries.items():
        tested = [
            f"{s[k]:{w}.2f}" if k in s else f"{'-':>{w}}"
            for k, w in (("frac_direction_significant", 7), ("frac_direction_selective", 9))
        ]
        print(
            f"{name:24} {s['channels']:8d} {s['mean_dsi']:9.3f} {s['mean_osi']:9.3f} "
            f"{s['frac_dsi_gt_0.3']:8.2f} {s['frac_osi_gt_0.3']:8.2f} {' '.join(tested)}"
        )
    return 0


def run_predictors(args: argparse.Namespace) -> int:
    """Across a published transfer study's pre-trained arms (one point per arm, its pre-training seeds
    averaged): Spearman's rank correlation of the VPN held-out accuracy and conv1's direction selectivity
    with each dataset's mean paired difference to scratch, and a permutation p-value (exact up to 9 arms)."""
    from videoperlin.analysis.predictors import predictor_report
    from videoperlin.utils.atomic import atomic_write_text

    command = f"videoperlin predictors {args.study} --tuning {' '.join(args.tuning)}"
    text = predictor_report(
        Path(args.study), [Path(t) for t in args.tuning], command + (f" --out {args.out}" if args.out else "")
    )
    if args.out is None:
        print(text)
        return 0
    Path(args.out).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out) / "README.md", text)
    print(f"wrote {Path(args.out) / 'README.md'}")
    return 0


def run_curves(args: argparse.Namespace) -> int:
    """Accuracy (or any metric) vs epoch for several runs, from their metrics.jsonl."""
    from videoperlin.train.curves import plot_groups

    names = args.names.split(",") if args.names else [Path(r).name for r in args.runs]
    if len(names) != len(args.runs):
        raise ConfigError(f"--names gives {len(names)} names for {len(args.runs)} runs")
    print(f"wrote {plot_groups({n: [r] for n, r in zip(names, args.runs)}, args.metric, args.out)}")
    return 0


def _checkpoints_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", nargs="+", help="checkpoints, saved models, or random:r3d18[,widen_factor=0.5]")
    parser.add_argument("--names", default=None, help="comma-separated labels")


def kernels_arguments(parser: argparse.ArgumentParser) -> None:
    _checkpoints_arguments(parser)
    parser.add_argument("--out", required=True, help="output directory")


def samples_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True)
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--video", type=bounded_int(0), default=0, help="index of the real video")
    parser.add_argument("--preset", default="low")
    parser.add_argument("--classes", default=None, help="VPN class indices, e.g. 0,53,107 (default: spread)")
    add_field_arguments(parser, ClipGeometry)
    parser.add_argument("--out", required=True, help="GIF path")


def tuning_arguments(parser: argparse.ArgumentParser) -> None:
    _checkpoints_arguments(parser)
    parser.add_argument("--layer", default=None, help="module to probe (default conv1; e.g. layer1.0.conv2)")
    add_field_arguments(parser, ClipGeometry, defaults={"size": 64})  # gratings: 64 px resolve conv1's tuning
    parser.add_argument(
        "--permutations",
        type=bounded_int(0),
        default=200,
        help="temporal permutations per channel for the direction-selectivity test of conv1 (0: skip)",
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of that test")
    parser.add_argument("--out", required=True)


def predictors_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="a published transfer study: its report.md and results.csv")
    parser.add_argument("--tuning", nargs="+", required=True, help="`videoperlin tuning --out` folders, seed 0 first")
    parser.add_argument("--out", default=None, help="write README.md here (default: print)")


def curves_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("--metric", default="val_acc")
    parser.add_argument("--names", default=None)
    parser.add_argument("--out", required=True, help="PNG path")
