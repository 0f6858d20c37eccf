"""Precision on the CPU: are the weight gradients right, and what does each precision cost?

1. **Gradient table** -- one batch of VPN clips (preset low), r3d18: the relative error of every
   conv weight gradient under bf16 autocast against fp32, before the numerics guard (plain
   autocast) and after it (:func:`videoperlin.train.numerics.choose_precision`: convolutions that
   fail their probe run in fp32). ``--inject-fault`` replaces ``F.conv3d`` with the EPYC fault's
   double (tests/faults.py) to show the fallback on a CPU whose kernel is right.
2. **Cost** -- clips/s of the pre-training step (forward, backward, SGD; VPN clips rendered in the
   loop as the engine does) in fp32, fp32 + channels_last_3d, guarded bf16 (channels_last_3d), and
   bf16 with the fault-shaped convolutions kept in fp32 (what the guard runs on a faulty CPU),
   each the median of ``--repeats`` timed blocks, interleaved across the variants, in one run.

    python benchmarks/precision.py [--widen 0.5] [--size 64] [--batch-size 32] [--steps 6] [--inject-fault]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from videoperlin.models import create_model
from videoperlin.train.numerics import Precision, choose_precision, convolution_inputs, device_description
from videoperlin.vpn import SyntheticDataset, frequency_preset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import faults

CPU = torch.device("cpu")


def weight_grads(model, clips, labels, dtype) -> dict[str, torch.Tensor]:
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
        F.cross_entropy(model(clips).float(), labels).backward()
    return {
        n[: -len(".weight")]: p.grad.clone()
        for n, p in model.named_parameters()
        if p.dim() == 5 and n.endswith("weight")
    }


def gradient_table(args, clips, labels, classes: int) -> list[dict]:
    """Per conv: relative error of its bf16 weight gradient vs fp32, unguarded and guarded."""
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=classes, widen_factor=args.table_widen)
    guarded = create_model(args.model, num_classes=classes, widen_factor=args.table_widen)
    guarded.load_state_dict(model.state_dict())
    precision = choose_precision(guarded, torch.bfloat16, CPU, tuple(clips.shape[1:]), len(clips), False)
    truth = weight_grads(model, clips, labels, None)
    before = weight_grads(model, clips, labels, torch.bfloat16)
    after = weight_grads(guarded, clips, labels, torch.bfloat16)
    shapes = convolution_inputs(model, tuple(clips.shape[1:]), len(clips), False)

    def rel(a, b):
        return float((a - b).norm() / b.norm())

    return [
        {
            "conv": name,
            "input_T": shapes[name].input_shape[2],
            "kernel": "x".join(map(str, shapes[name].kernel)),
            "stride": "x".join(map(str, shapes[name].stride)),
            "before": rel(before[name], truth[name]),
            "after": rel(after[name], truth[name]),
            "fp32": name in precision.fp32_modules,
        }
        for name in truth
    ]


def training_step(model, batch_size: int, dtype, channels_last: bool, dataset):
    """One pre-training step (render a VPN batch, forward, backward, SGD) per call."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    starts = iter(range(0, 10**9, batch_size))

    def step() -> None:
        start = next(starts) % (len(dataset) - batch_size)
        x, y = dataset.batch(range(start, start + batch_size))
        x = x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x.contiguous()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss.detach())

    return step


def cost_table(args, clips, classes: int, dataset) -> dict[str, float]:
    """Median clips/s per variant; the variants' timed blocks interleaved (ABCD ABCD ...) after
    ``args.warmup`` steps each, so drift in the machine's speed hits them alike."""
    shape = tuple(clips.shape[1:])

    def fresh():
        torch.manual_seed(0)
        return create_model(args.model, num_classes=classes, widen_factor=args.widen)

    guarded_model, island_model = fresh(), fresh()
    guarded = choose_precision(guarded_model, torch.bfloat16, CPU, shape, len(clips), True)
    islands = [
        n
        for n, s in convolution_inputs(island_model, shape, len(clips), True).items()
        if s.input_shape[2] == 2 and s.kernel[0] == 3 and s.stride[0] == 1
    ]
    Precision(torch.bfloat16, islands).apply(island_model)
    steps = {
        "fp32": training_step(fresh(), len(clips), None, False, dataset),
        "fp32 + channels_last_3d": training_step(fresh(), len(clips), None, True, dataset),
        f"guarded bf16 + channels_last_3d ({guarded.describe()})": training_step(
            guarded_model, len(clips), torch.bfloat16, True, dataset
        ),
        f"bf16 + channels_last_3d, the {len(islands)} fault-shaped convs in fp32 (fallback on a faulty CPU)": training_step(
            island_model, len(clips), torch.bfloat16, True, dataset
        ),
    }
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            began = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[name].append(args.steps * len(clips) / (time.perf_counter() - began))
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="r3d18")
    parser.add_argument("--widen", type=float, default=0.5, help="width of the cost table's model (main job: 0.5)")
    parser.add_argument("--table-widen", type=float, default=0.25, help="width of the gradient table's model")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant (oneDNN builds its kernels)")
    parser.add_argument("--inject-fault", action="store_true", help="simulate the EPYC bf16 conv3d fault")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.inject_fault:
        # the verdicts of a simulated fault must never reach the real cache, where they would keep
        # healthy layers in fp32 in every later run on this machine: probe into a throw-away one
        os.environ["VIDEOPERLIN_CACHE_DIR"] = tempfile.mkdtemp(prefix="videoperlin-injected-")
        faults.install()
    space = frequency_preset("low")
    dataset = SyntheticDataset(space, num_videos=100_000, frames=16, size=args.size, seed=0)
    clips, labels = dataset.batch(range(args.batch_size))
    print(
        f"{device_description(CPU)}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{args.model}, batch {args.batch_size} of 16x{args.size}x{args.size} VPN low"
        f"{'; INJECTED FAULT (tests/faults.py)' if args.inject_fault else ''}"
    )
    table = gradient_table(args, clips, labels, len(space))
    print(f"\nrelative error of each conv weight gradient, bf16 autocast vs fp32 (width {args.table_widen})")
    print(f"{'conv':18} {'T in':>4} {'kernel':>7} {'stride':>7} {'before':>8} {'after':>8}  guard")
    for row in table:
        print(
            f"{row['conv']:18} {row['input_T']:4d} {row['kernel']:>7} {row['stride']:>7} {row['before']:8.3f} "
            f"{row['after']:8.3f}  {'fp32' if row['fp32'] else 'bf16'}"
        )
    rates = {} if args.skip_cost else cost_table(args, clips, len(space), dataset)
    if rates:
        base = rates["fp32"]
        print(
            f"\npre-training step, clips/s (width {args.widen}; median of {args.repeats} interleaved blocks of "
            f"{args.steps} steps)"
        )
        for name, rate in rates.items():
            print(f"{name:100} {rate:7.1f}  {rate / base:5.2f}x fp32")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "device": device_description(CPU),
                    "torch": torch.__version__,
                    "args": vars(args) | {"json": str(args.json)},
                    "gradients": table,
                    "clips_per_s": rates,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
