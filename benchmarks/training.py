"""Training throughput and the data's share of a VPN pre-training step, on CUDA (or the CPU).

For each model: clips/s of a training step (forward, backward, SGD) on one fixed batch in fp32,
bf16 autocast and fp16 autocast with a grad scaler, each with channels_last_3d; then the bf16 step
with fresh VPN batches (:data:`VPN_VARIANTS`).
The data share is ``1 - (clips/s with VPN) / (clips/s on the fixed batch)``: the time the step
loses to making its data, measured in the same run.

    python benchmarks/training.py [--models r3d18 r2p1d18] [--size 112] [--batch-size 64] [--steps 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from videoperlin.models import create_model
from videoperlin.train.batch_sources import render_ahead
from videoperlin.vpn import SyntheticDataset, frequency_preset

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def training_step(model, device: torch.device, dtype: torch.dtype | None):
    """A step function ``step(clips, labels)``: autocast forward, (scaled) backward, SGD."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None

    def step(clips: torch.Tensor, labels: torch.Tensor) -> None:
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
        autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            loss = F.cross_entropy(model(clips).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        float(loss.detach())  # the engine reads the loss every step: the same host sync

    return step


def clips_per_second(step, make_batch, batch: int, steps: int, device: torch.device) -> float:
    for _ in range(3):
        step(*make_batch())
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step(*make_batch())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


#: VPN batch variants: per-clip CPU draws, draws on the device, and draws on the device rendered
#: ``CUDA_RENDER_CLIPS`` at a time as the engine does (videoperlin.train.batch_sources.render_ahead).
VPN_VARIANTS = ("generator", "counter", "counter-ahead")


def vpn_batches(variant: str, args, device: torch.device):
    """An endless iterator of (clips, labels) VPN batches (preset motion) made the ``variant`` way."""
    rng = variant.split("-")[0]
    ds = SyntheticDataset(frequency_preset("motion"), num_videos=10_000_000, frames=16, size=args.size, rng=rng)
    indices = ([*range(start, start + args.batch_size)] for start in range(0, 10_000_000, args.batch_size))
    if variant.endswith("-ahead"):
        return ((b.clips, b.labels) for b in render_ahead(ds, indices, device))
    return (ds.batch(i, device=device) for i in indices)


def measure(name: str, args, device: torch.device) -> dict[str, float]:
    results = {}
    fixed = (
        torch.rand(args.batch_size, 3, 16, args.size, args.size, device=device),
        torch.randint(0, 153, (args.batch_size,), device=device),
    )
    precisions = [p for p in PRECISIONS if device.type == "cuda" or p != "fp16"]
    for precision in precisions:
        torch.manual_seed(0)
        model = create_model(name, num_classes=153).to(device).to(memory_format=torch.channels_last_3d)
        step = training_step(model, device, PRECISIONS[precision])
        results[precision] = clips_per_second(step, lambda: fixed, args.batch_size, args.steps, device)
        if precision == "bf16":
            for variant in VPN_VARIANTS:
                batches = vpn_batches(variant, args, device)
                results[f"bf16+vpn-{variant}"] = clips_per_second(
                    step, lambda batches=batches: next(batches), args.batch_size, args.steps, device
                )
        del model, step
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["r3d18", "r2p1d18"])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"{where}; torch {torch.__version__}, CUDA {torch.version.cuda}; batch {args.batch_size} of "
        f"16x{args.size}x{args.size}, channels_last_3d; VPN preset motion (153 classes)"
    )
    header = f"{'model':8} {'fp32':>8} {'bf16':>8} {'fp16':>8} {'bf16/fp32':>9}" + "".join(
        f" {'+' + v:>14} {'data':>5}" for v in VPN_VARIANTS
    )
    print(header + "\n" + "-" * len(header))
    records = {}
    for name in args.models:
        r = records[name] = measure(name, args, device)
        vpn = [r[f"bf16+vpn-{v}"] for v in VPN_VARIANTS]
        print(
            f"{name:8} {r['fp32']:8.1f} {r['bf16']:8.1f} {r.get('fp16', float('nan')):8.1f} "
            f"{r['bf16'] / r['fp32']:8.2f}x" + "".join(f" {v:14.1f} {1 - v / r['bf16']:5.1%}" for v in vpn)
        )
    print(
        "clips/s of training steps (forward + backward + SGD); data = share of the bf16 step lost to rendering VPN "
        "(generator: CPU draws; counter: draws on the device; -ahead: 512 clips per render, as the engine does)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "device": where,
                    "torch": torch.__version__,
                    "cuda": torch.version.cuda,
                    "batch": args.batch_size,
                    "size": args.size,
                    "results": records,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
