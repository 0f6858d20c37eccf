"""Model throughput: training-step and inference clips/s, fp32 vs bf16 autocast + channels_last_3d.

    python benchmarks/models.py [--models r3d18 r2p1d18] [--sizes 112 64] [--batch-size 8] [--steps 4]

Each row is measured in the same run, so the fast/fp32 ratio compares like with like. CUDA is
measured too when present (fp32 vs bf16 autocast + channels_last_3d).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F

from videoperlin.models import create_model


def make_step(model, device: str, fast: bool, train: bool, clips: torch.Tensor, labels: torch.Tensor):
    """One training step (SGD, cross-entropy) or one inference forward."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if train else None
    if fast:
        model = model.to(memory_format=torch.channels_last_3d)
        clips = clips.contiguous(memory_format=torch.channels_last_3d)

    def autocast():
        return torch.autocast(device_type=device, dtype=torch.bfloat16) if fast else contextlib.nullcontext()

    def step() -> None:
        if train:
            with autocast():
                loss = F.cross_entropy(model(clips), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        else:
            with torch.inference_mode(), autocast():
                model(clips)
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def clips_per_second(step, batch: int, steps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def measure(name: str, size: int, device: str, batch: int, steps: int) -> dict[str, float]:
    results = {}
    for train in (True, False):
        for fast in (False, True):
            torch.manual_seed(0)
            model = create_model(name, num_classes=400).to(device).train(train)
            clips = torch.rand(batch, 3, 16, size, size, device=device)
            labels = torch.randint(0, 400, (batch,), device=device)
            key = f"{'train' if train else 'infer'}-{'fast' if fast else 'fp32'}"
            results[key] = clips_per_second(make_step(model, device, fast, train, clips, labels), batch, steps)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["r3d18", "r2p1d18"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[112, 64])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; batch {args.batch_size}, 16-frame clips; "
        f"fast = bf16 autocast + channels_last_3d"
    )
    header = (
        f"{'device':6} {'model':8} {'clip':>10} {'train fp32':>11} {'train fast':>11} {'ratio':>6} "
        f"{'infer fp32':>11} {'infer fast':>11} {'ratio':>6}"
    )
    print(header + "\n" + "-" * len(header))
    for device in devices:
        batch = args.batch_size if device == "cpu" else 4 * args.batch_size
        steps = args.steps if device == "cpu" else 10 * args.steps
        for name in args.models:
            for size in args.sizes:
                r = measure(name, size, device, batch, steps)
                print(
                    f"{device:6} {name:8} {f'16x{size}x{size}':>10} {r['train-fp32']:11.2f} {r['train-fast']:11.2f} "
                    f"{r['train-fast'] / r['train-fp32']:5.2f}x {r['infer-fp32']:11.2f} {r['infer-fast']:11.2f} "
                    f"{r['infer-fast'] / r['infer-fp32']:5.2f}x"
                )
    print("clips/s; train = forward + backward + SGD step")


if __name__ == "__main__":
    main()
