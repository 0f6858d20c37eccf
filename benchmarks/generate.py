"""VPN generation throughput: per-voxel reference vs the batched kernel (CPU), and the kernel on CUDA.

CPU table: clips/s at 16x112x112 and 16x224x224 for the low, high and motion presets, the ratio of
the batched CPU kernel to the per-voxel reference, and motion's clips/s as a share of low's.

CUDA table (when a GPU is present): clips/s per preset, size, batch and ``PerlinOptions.rng``
('generator': per-clip draws on the CPU, 'counter': draws on the GPU), with the bytes written per
second as a share of the device's write bandwidth (an ``fill_`` of a 4 GiB buffer, measured in the
same run: the bound, since a clip is written once and read never), the share of time the CPU draws
take for 'generator', and the top CUDA kernels of one counter batch (torch.profiler).

Families table: clips/s of every family (the ladder's rungs among them) at 16x112x112 beside ``low``
in the same run, and of ``layers``' scene planning alone (its textures, masks and draws, ``plan()``,
without the warp and composite): the ceiling of any faster warp. The process keeps freed memory for reuse as the ``videoperlin`` command does
(:mod:`videoperlin.utils.memory`; not with ``VIDEOPERLIN_ALLOCATOR=default``); ``--allocator-baseline`` also
times each round in a child process with glibc's allocator as it is, interleaved, for the speed-up.

    python benchmarks/generate.py [--batch-size 32] [--seconds 3] [--threads N] [--cuda-batches 32 128 512]
                                  [--json FILE] [--skip-cpu] [--families-only] [--allocator-baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_perlin import reference_perlin

from videoperlin.utils.memory import ENVIRONMENT, configure_allocator
from videoperlin.vpn import SyntheticDataset, frequency_preset

PRESETS = ("low", "high", "motion")
SIZES = (112, 224)


def rate(step, clips_per_step: int, seconds: float, sync=lambda: None) -> float:
    """Clips per second of ``step`` over at least ``seconds`` (after one warm-up call; ``sync`` waits for the device)."""
    step(0)
    sync()
    done, start, calls = 0, time.perf_counter(), 1
    while time.perf_counter() - start < seconds:
        step(calls)
        calls += 1
        done += clips_per_step
    sync()
    return done / (time.perf_counter() - start)


def reference_step(ds: SyntheticDataset):
    """One clip the per-voxel way: same parameters and intensity mapping as the dataset."""

    def step(call: int) -> None:
        p = ds.sample_params(call % len(ds))
        noise = sum(
            reference_perlin(
                g.double().numpy(),
                (ds.frames, ds.height, ds.width),
                c,
                tuple(p.phases[o].tolist()),
                ds.options.tileable,
                p.drift[o],
            )
            for o, (g, c) in enumerate(zip(p.gradients, p.cells))
        )
        gray = 0.5 + p.brightness + p.contrast * ds.family.intensity_scale * noise
        np.clip(gray, 0.0, 1.0, out=gray)

    return step


def batch_step(ds: SyntheticDataset, batch: int, device: str):
    def step(call: int) -> None:
        start = (call * batch) % (len(ds) - batch)
        ds.batch(range(start, start + batch), device=device)

    return step


def plan_step(ds: SyntheticDataset, batch: int):
    """A batch's scene planning only (a family with ``plan``: its canvases and draws, no warp or composite)."""

    def step(call: int) -> None:
        start = (call * batch) % (len(ds) - batch)
        index = torch.arange(start, start + batch)
        ds.family.plan(ds.draws(index), index % len(ds.space))

    return step


def cpu_table(args) -> list[dict]:
    print(f"CPU: torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch_size}")
    header = f"{'preset':6} {'clip':>10} {'per-voxel':>10} {'batch CPU':>10} {'CPU/ref':>8}"
    print(header + "\n" + "-" * len(header))
    rows = []
    for preset in PRESETS:
        for size in SIZES:
            ds = SyntheticDataset(frequency_preset(preset), num_videos=1_000_000, frames=16, size=size, seed=0)
            ref = rate(reference_step(ds), 1, max(1.0, args.seconds / 2))
            cpu = rate(batch_step(ds, args.batch_size, "cpu"), args.batch_size, args.seconds)
            rows.append(
                {
                    "device": "cpu",
                    "preset": preset,
                    "size": size,
                    "batch": args.batch_size,
                    "rng": "generator",
                    "clips_per_s": cpu,
                    "reference_clips_per_s": ref,
                }
            )
            print(f"{preset:6} {f'16x{size}x{size}':>10} {ref:10.1f} {cpu:10.0f} {cpu / ref:7.0f}x")
    by = {(r["preset"], r["size"]): r["clips_per_s"] for r in rows}
    for size in SIZES:
        print(f"motion / low at 16x{size}x{size} (CPU): {by['motion', size] / by['low', size]:.0%}")
    print("clips/s; per-voxel = float64 numpy 8-corner gather (tests/reference_perlin.py) on one clip at a time")
    return rows


#: The family rows: (name, family, options), each rendered at 16x112x112 on the CPU beside ``low`` (the paper's
#: VPN) in the same run, the ladder's rungs among them.
FAMILY_ROWS = (
    ("low", "perlin", {"preset": "low"}),
    ("low-colour", "perlin", {"preset": "low", "colour": 0.8}),
    ("motion", "perlin", {"preset": "motion"}),
    ("shapes", "shapes", {}),
    ("shapes+2", "shapes", {"shapes_distractors": 2}),
    ("layers", "layers", {}),
    ("layers-camera", "layers", {"layers_acceleration": 0.5, "layers_zoom": 0.2, "layers_rotation": 15}),
    ("layers plan", "layers", {}),  # plan() alone: what any warp and composite would add to
)


def family_sets() -> dict:
    """The family rows' datasets at 16x112x112, built once for every round."""
    from videoperlin.geometry import ClipGeometry
    from videoperlin.vpn.source import ClipSource

    return {
        name: ClipSource(family=family, **options).dataset(ClipGeometry(16, 112), 0, 1_000_000)
        for name, family, options in FAMILY_ROWS
    }


def family_rates(sets: dict, args) -> dict[str, float]:
    """CPU clips/s of each family in this process, one interleaved round."""

    def step(name: str, ds: SyntheticDataset):
        return plan_step(ds, args.batch_size) if name.endswith(" plan") else batch_step(ds, args.batch_size, "cpu")

    return {name: rate(step(name, ds), args.batch_size, args.seconds / 2) for name, ds in sets.items()}


def default_allocator_round(args) -> dict[str, float]:
    """One round of :func:`family_rates` in a child process that leaves glibc's allocator as it is
    (``VIDEOPERLIN_ALLOCATOR=default``, read by :func:`configure_allocator` there)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "round.json"
        command = [sys.executable, __file__, "--families-only", "--repeats", "1", "--json", str(out)]
        command += ["--seconds", str(args.seconds), "--batch-size", str(args.batch_size)]
        command += ["--threads", str(args.threads)] if args.threads else []
        env = {**os.environ, ENVIRONMENT: "default"}
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        return {row["row"]: row["clips_per_s"] for row in json.loads(out.read_text())}


def family_table(args) -> list[dict]:
    """CPU clips/s of each family at 16x112x112 and its share of ``low``'s, the rows interleaved so drift
    in the machine's speed hits them alike (median of ``args.repeats`` rounds). With
    ``--allocator-baseline`` each round also runs in a child process with glibc's allocator as it is,
    interleaved with this process's rounds: the speed-up of :func:`reuse_freed_memory` in the same run."""
    sets, rounds, baseline = family_sets(), [], []
    for _ in range(args.repeats):
        rounds.append(family_rates(sets, args))
        if args.allocator_baseline:
            baseline.append(default_allocator_round(args))
    print(
        f"\nfamilies at 16x112x112 on the CPU, batch {args.batch_size} (median of {args.repeats} interleaved "
        f"rounds; allocator: {args.allocator_in_effect})"
    )
    median = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    before = {name: statistics.median(r[name] for r in baseline) for name in rounds[0]} if baseline else {}
    rows = []
    for name, family, options in FAMILY_ROWS:
        clips, low = median[name], median["low"]
        row = {"device": "cpu", "row": name, "family": family, "options": options, "size": 112}
        row.update(
            batch=args.batch_size, allocator=args.allocator_in_effect, clips_per_s=clips, share_of_low=clips / low
        )
        line = f"{name:14} {clips:8.0f} clips/s  {clips / low:6.1%} of low"
        if before:
            share, speedup = before[name] / before["low"], clips / before[name]
            row.update(default_allocator_clips_per_s=before[name], default_allocator_share=share)
            line += f"   default allocator {before[name]:6.0f} ({share:5.1%})  {speedup:4.2f}x"
        rows.append(row)
        print(line)
    return rows


def write_bandwidth(seconds: float = 1.0) -> float:
    """Bytes/s that ``fill_`` writes into a 4 GiB CUDA buffer: the ceiling for a kernel that only writes."""
    buffer = torch.empty(2**30, device="cuda")
    return rate(lambda _: buffer.fill_(1.0), buffer.numel() * 4, seconds, torch.cuda.synchronize)


def draw_share(ds: SyntheticDataset, batch: int, seconds: float) -> float:
    """Share of a 'generator' CUDA batch spent drawing its parameters on the CPU (one clip at a time)."""
    drawn = rate(lambda call: [ds.sample_params(call * batch + i) for i in range(batch)], batch, seconds / 2)
    whole = rate(batch_step(ds, batch, "cuda"), batch, seconds / 2, torch.cuda.synchronize)
    return whole / drawn


def cuda_table(args) -> list[dict]:
    bound = write_bandwidth()
    print(
        f"\nCUDA: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}; "
        f"write bandwidth (fill_) {bound / 1e12:.2f} TB/s"
    )
    header = (
        f"{'preset':6} {'clip':>10} {'rng':>9} {'batch':>6} {'clips/s':>10} {'TB/s':>6} {'of bound':>8} "
        f"{'CPU draws':>9}"
    )
    print(header + "\n" + "-" * len(header))
    rows = []
    for preset in PRESETS:
        for size in SIZES:
            for rng in ("generator", "counter"):
                ds = SyntheticDataset(
                    frequency_preset(preset), num_videos=10_000_000, frames=16, size=size, seed=0, rng=rng
                )
                for batch in args.cuda_batches:
                    clips = rate(batch_step(ds, batch, "cuda"), batch, args.seconds, torch.cuda.synchronize)
                    written = clips * 16 * size * size * 4
                    share = draw_share(ds, batch, args.seconds) if rng == "generator" else 0.0
                    rows.append(
                        {
                            "device": torch.cuda.get_device_name(),
                            "preset": preset,
                            "size": size,
                            "rng": rng,
                            "batch": batch,
                            "clips_per_s": clips,
                            "bytes_per_s": written,
                            "share_of_write_bound": written / bound,
                            "cpu_draw_share": share,
                        }
                    )
                    print(
                        f"{preset:6} {f'16x{size}x{size}':>10} {rng:>9} {batch:6d} {clips:10.0f} "
                        f"{written / 1e12:6.2f} {written / bound:8.1%} {share:9.0%}"
                    )
                torch.cuda.empty_cache()
    print(
        "clips/s of float32 (B, 3, 16, H, W) batches (3 channels = an expand view of one written channel); "
        "CPU draws = share of a generator batch's time spent in per-clip CPU draws"
    )
    profile_counter_batch(max(args.cuda_batches))
    return rows


def profile_counter_batch(batch: int) -> None:
    """The CUDA kernels of one counter-rng low batch at 16x112x112, by total time."""
    from torch.profiler import ProfilerActivity, profile

    ds = SyntheticDataset(frequency_preset("low"), num_videos=10_000_000, frames=16, size=112, seed=0, rng="counter")
    ds.batch(range(batch), device="cuda")
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for n in range(5):
            ds.batch(range(n * batch, (n + 1) * batch), device="cuda")
        torch.cuda.synchronize()
    print(f"\nprofile: 5 counter batches of {batch} (low, 16x112x112)")
    for key in ("device_time_total", "cuda_time_total"):  # renamed across torch versions
        try:
            print(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=60))
            return
        except (AttributeError, KeyError, ValueError):
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32, help="CPU batch size")
    parser.add_argument("--cuda-batches", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds of the family table")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--skip-cpu", action="store_true", help="only the CUDA table")
    parser.add_argument("--families-only", action="store_true", help="of the CPU tables, only the families'")
    parser.add_argument("--json", type=Path, default=None, help="also write every row to this JSON file")
    parser.add_argument(
        "--allocator-baseline", action="store_true", help="also time the families with glibc's allocator as it is"
    )
    args = parser.parse_args()
    args.allocator_in_effect = configure_allocator()  # as the videoperlin command: $VIDEOPERLIN_ALLOCATOR decides
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [] if args.skip_cpu or args.families_only else cpu_table(args)
    if not args.skip_cpu:
        rows += family_table(args)
    if torch.cuda.is_available():
        rows += cuda_table(args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
