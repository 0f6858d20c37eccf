"""Checkpoint cost: epoch time with ``last.pt`` written every epoch (``train.save_every 1``) against
written at the end only (``train.save_every 0``), in one run, interleaved.

Short epochs of a big model are where per-epoch writes dominate: a full-width r3d18 checkpoint holds
the weights and the SGD momentum (~270 MB). The run here: ``videoperlin train`` on the Weizmann
manifest (fold 0: 40 training videos), r3d18 at ``--widen`` width, 8x64x64 clips, batch 8, no
validation until the last epoch, frames cached before timing. Reported: seconds per epoch (the
run's wall time over its epochs, median of ``--repeats`` runs of each variant) and the size of
``last.pt``.

    python benchmarks/checkpoints.py [--data ../shared/data/manifest.csv] [--widen 1.0] [--epochs 6] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from videoperlin.train.config import load_config
from videoperlin.train.engine import Trainer

ROOT = Path(__file__).resolve().parents[1]


def run_config(args, out: Path, save_every: int, cache: Path):
    overrides = {
        "data.path": str(args.data),
        "data.dataset": "weizmann",
        "data.folds": 3,
        "data.short_side": 80,
        "data.size": 64,
        "data.frames": 8,
        "data.workers": 0,
        "data.cache_dir": str(cache),
        "model.name": "r3d18",
        "model.widen_factor": args.widen,
        "train.epochs": args.epochs,
        "train.val_every": args.epochs,
        "train.batch_size": 8,
        "train.amp": "off",
        "optim.schedule": "cosine",
        "train.progress": False,
        "train.save_every": save_every,
        "train.out": str(out),
    }
    return load_config(None, overrides, task="train")


def timed_run(args, out: Path, save_every: int, cache: Path) -> float:
    """Seconds per epoch of one run (wall time of ``fit`` over its epochs)."""
    trainer = Trainer(run_config(args, out, save_every, cache))
    began = time.perf_counter()
    trainer.fit()
    return (time.perf_counter() - began) / args.epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "manifest.csv")
    parser.add_argument("--widen", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(2)
    seconds: dict[int, list[float]] = {1: [], 0: []}
    with tempfile.TemporaryDirectory(dir=ROOT / "runs" if (ROOT / "runs").is_dir() else None) as tmp:
        cache = Path(tmp) / "frames"
        timed_run(args, Path(tmp) / "warm", 0, cache)  # fills the frame cache
        for repeat in range(args.repeats):
            for every in (1, 0):
                seconds[every].append(timed_run(args, Path(tmp) / f"run-{every}-{repeat}", every, cache))
        size = (Path(tmp) / "run-1-0" / "checkpoints" / "last.pt").stat().st_size
    per_epoch = {every: statistics.median(values) for every, values in seconds.items()}
    print(f"r3d18 width {args.widen}, last.pt {size / 2**20:.0f} MiB, {args.epochs} epochs, median of {args.repeats}")
    print("| last.pt written | s per epoch | vs end only |\n|---|---|---|")
    print(f"| every epoch (save_every 1) | {per_epoch[1]:.2f} | {per_epoch[1] / per_epoch[0]:.2f}x |")
    print(f"| at the end only (save_every 0) | {per_epoch[0]:.2f} | 1.00x |")


if __name__ == "__main__":
    main()
