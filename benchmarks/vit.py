"""The transformer ladder's steps on this machine: achieved GFLOP/s against the matmul peak, and each
family's share of an MAE step spent making its clips.

Measured in one run, on the ladder's settings (``configs/transfer_vit.yaml``: vit_micro, 16x64x64 clips,
4x8x8 tubelets, MAE at 90% masking with a 64-wide decoder, batch 32; fine-tuning at batch 16):

* the **matmul peak**: a 2048^3 fp32 and bf16 matrix product, the machine's practical limit;
* the **MAE step** and the **fine-tuning step** (forward, backward, AdamW) in fp32 and bf16 autocast:
  FLOPs counted by ``torch.utils.flop_counter`` over one step (forward and backward), divided by its
  time; the ratio to the peak of the same precision;
* the **loader's wait share** of an MAE step per family: ``render / (render + step)``, the clips of a
  batch rendered in the training process as the engine does, timed apart from the bf16 step.

    python benchmarks/vit.py [--steps 6] [--threads 2] [--batch-scale 2] [--out benchmarks/results/vit-steps]

The result is printed and written as JSON (with the machine) to ``--out/steps.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from videoperlin.models import create_model
from videoperlin.train.numerics import device_description
from videoperlin.train.objectives.mae import MAEOptions, MaskedAutoencoder, tube_mask
from videoperlin.vpn import SyntheticDataset, get_family

CLIP, TUBELET, PATCH = (16, 64, 64), 4, 8
MAE_BATCH, FINETUNE_BATCH = 32, 16
FAMILIES = {
    "perlin (low)": ("perlin", {}),
    "shapes": ("shapes", {}),
    "layers-still": ("layers", {"layers_count": 1, "layers_background_speed": 0.0}),
    "textures": ("textures", {}),
}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def timed(fn, steps: int) -> float:
    """Seconds per call of ``fn`` after two warm-up calls (the minimum of ``steps`` timed calls)."""
    fn(), fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(dtype: torch.dtype, steps: int) -> float:
    """GFLOP/s of a 2048^3 matrix product in ``dtype``."""
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    return 2 * 2048**3 / timed(lambda: a @ b, steps) / 1e9


def flops_of(step) -> int:
    """FLOPs of one call of ``step`` (forward and backward), counted by torch's flop counter."""
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def mae_step(dtype: torch.dtype | None, batch: int):
    """(step(clips) -> None, the autoencoder): one MAE training step of the ladder's network."""
    torch.manual_seed(0)
    model = create_model("vit_micro", num_classes=10, tubelet_size=TUBELET, patch_size=PATCH)
    autoencoder = MaskedAutoencoder(model, MAEOptions(norm_target=False))
    optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=1e-4)
    grid = (CLIP[0] // TUBELET, CLIP[1] // PATCH, CLIP[2] // PATCH)
    generator = torch.Generator().manual_seed(0)

    def step(clips: torch.Tensor) -> None:
        masked = tube_mask(grid, 0.9, batch, generator)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = autoencoder(clips, masked).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def finetune_step(dtype: torch.dtype | None, batch: int):
    torch.manual_seed(0)
    model = create_model("vit_micro", num_classes=21, tubelet_size=TUBELET, patch_size=PATCH, drop_path=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    labels = torch.randint(0, 21, (batch,))

    def step(clips: torch.Tensor) -> None:
        autocast = torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            loss = F.cross_entropy(model(clips).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def step_rates(steps: int, peaks: dict[str, float], scale: int) -> dict[str, dict[str, float]]:
    """Clips/s, GFLOP/s and the share of the peak of the MAE and fine-tuning steps per precision, at the
    ladder's batch sizes and at ``scale`` times them."""
    rows = {}
    for name, make, batch in (
        ("mae", mae_step, MAE_BATCH),
        ("finetune", finetune_step, FINETUNE_BATCH),
        ("mae", mae_step, scale * MAE_BATCH),
        ("finetune", finetune_step, scale * FINETUNE_BATCH),
    ):
        clips = torch.randn(batch, 3, *CLIP)
        flops = flops_of(lambda make=make, batch=batch, clips=clips: make(None, batch)(clips))
        for precision, dtype in PRECISIONS.items():
            step = make(dtype, batch)
            seconds = timed(lambda step=step, clips=clips: step(clips), steps)
            rows[f"{name} {precision} batch {batch}"] = {
                "clips_per_s": batch / seconds,
                "gflop_per_step": flops / 1e9,
                "gflop_per_s": flops / seconds / 1e9,
                "share_of_peak": flops / seconds / 1e9 / peaks[precision],
            }
    return rows


def wait_shares(steps: int) -> dict[str, dict[str, float]]:
    """Per family: clips/s of rendering a batch, and its share of render + bf16 MAE step."""
    step = mae_step(torch.bfloat16, MAE_BATCH)
    fixed = torch.randn(MAE_BATCH, 3, *CLIP)
    step_seconds = timed(lambda: step(fixed), steps)
    rows = {}
    for label, (name, options) in FAMILIES.items():
        family = get_family(name)
        dataset = SyntheticDataset(
            family.label_space(family.Labels()), 100_000, CLIP[0], CLIP[1], 0, family=name, **options
        )
        start = [0]

        def render(dataset=dataset, start=start) -> None:
            dataset.batch(range(start[0], start[0] + MAE_BATCH))
            start[0] += MAE_BATCH

        seconds = timed(render, steps)
        rows[label] = {"render_clips_per_s": MAE_BATCH / seconds, "wait_share": seconds / (seconds + step_seconds)}
    return {"mae_step_clips_per_s": {"bf16": MAE_BATCH / step_seconds}, **rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--batch-scale", type=int, default=2, help="also time the steps at this many times the batch")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peaks = {name: matmul_peak(dtype or torch.float32, args.steps) for name, dtype in PRECISIONS.items()}
    result = {
        "machine": f"{device_description(torch.device('cpu'))}, {platform.processor() or platform.machine()}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "matmul_peak_gflop_per_s": peaks,
        "steps": step_rates(args.steps, peaks, args.batch_scale),
        "loader": wait_shares(args.steps),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "steps.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
