"""VPN generation throughput: per-voxel reference vs the batched kernel (CPU, and CUDA when present).

Prints clips/s at 16x112x112 and 16x224x224 for the low, high and motion presets, the ratio of the
batched CPU kernel to the per-voxel reference, and motion's clips/s as a share of low's, all
measured in the same run.

    python benchmarks/generate.py [--batch-size 32] [--seconds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_perlin import reference_perlin  # noqa: E402  (the per-voxel reference lives with the tests)

from videoperlin.vpn import LabelSpace, VPNDataset  # noqa: E402


def rate(step, clips_per_step: int, seconds: float) -> float:
    """Clips per second of ``step`` over at least ``seconds`` (after one warm-up call)."""
    step(0)
    done, start, calls = 0, time.perf_counter(), 1
    while time.perf_counter() - start < seconds:
        step(calls)
        calls += 1
        done += clips_per_step
    return done / (time.perf_counter() - start)


def reference_step(ds: VPNDataset):
    """One clip the per-voxel way: same parameters and intensity mapping as the dataset."""
    def step(call: int) -> None:
        p = ds.sample_params(call % len(ds))
        noise = sum(reference_perlin(g.double().numpy(), (ds.frames, ds.height, ds.width), c,
                                     tuple(p.phases[o].tolist()), ds.spec.tileable, p.drift[o])
                    for o, (g, c) in enumerate(zip(p.gradients, p.cells)))
        gray = 0.5 + p.brightness + p.contrast * ds._intensity_scale * noise
        np.clip(gray, 0.0, 1.0, out=gray)
    return step


def batch_step(ds: VPNDataset, batch: int, device: str):
    def step(call: int) -> None:
        start = (call * batch) % (len(ds) - batch)
        clips, _ = ds.batch(range(start, start + batch), device=device)
        if device == "cuda":
            torch.cuda.synchronize()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"CUDA: {torch.cuda.get_device_name() if cuda else 'none'}; batch {args.batch_size}")
    header = f"{'preset':6} {'clip':>10} {'per-voxel':>10} {'batch CPU':>10} {'CPU/ref':>8} {'batch CUDA':>11}"
    print(header + "\n" + "-" * len(header))
    cpu_rates = {}
    for preset in ("low", "high", "motion"):
        for size in (112, 224):
            ds = VPNDataset(LabelSpace.preset(preset), num_videos=1_000_000, frames=16, size=size, seed=0)
            ref = rate(reference_step(ds), 1, max(1.0, args.seconds / 2))
            cpu = cpu_rates[preset, size] = rate(batch_step(ds, args.batch_size, "cpu"), args.batch_size, args.seconds)
            gpu = rate(batch_step(ds, args.batch_size, "cuda"), args.batch_size, args.seconds) if cuda else None
            gpu_text = f"{gpu:11.0f}" if gpu else f"{'-':>11}"
            print(f"{preset:6} {f'16x{size}x{size}':>10} {ref:10.1f} {cpu:10.0f} {cpu / ref:7.0f}x {gpu_text}")
    for size in (112, 224):
        print(f"motion / low at 16x{size}x{size} (CPU): {cpu_rates['motion', size] / cpu_rates['low', size]:.0%}")
    print("clips/s; per-voxel = float64 numpy 8-corner gather (tests/reference_perlin.py) on one clip at a time")


if __name__ == "__main__":
    main()
