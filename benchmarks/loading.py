"""Loader throughput: does the training loader keep up with decoding, and what does a prepared copy buy?

For one set of training videos (JHMDB split 1 by default), in one process with one torch thread (as a
loader worker runs),
each the median of ``--repeats`` passes interleaved across variants, in one run:

* **raw decode** -- :func:`videoperlin.data.decode.decode_video` (PyAV) of every video at the run's
  short side: the frames the loader needs, decoded with the same decoder, nothing else;
* **raw decode, decord2** -- the same frames by decord2's ``VideoReader`` (when it imports);
* **loader** -- ``ClipDataset[i]`` without a frame cache: decode, sample a clip, random resized crop,
  flip, to a tensor (what a worker does per clip of the first epoch);
* **loader, warm cache** -- the same with the frame cache filled (every later epoch);

on the original files and on a copy made by ``videoperlin prepare`` at the same short side (made
here, timed, unless ``--prepared`` names one). Rates are clips/s (one clip per video, as an epoch
draws); the ratio is the loader's rate over raw decode's on the same files.

    python benchmarks/loading.py [--data ../shared/data/jhmdb] [--splits-dir ../shared/data/annotations/hmdb51]
        [--videos 150] [--short-side 128] [--frames 16] [--size 112] [--repeats 3] [--prepared DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from videoperlin.data.decode import FrameCache, decode_video
from videoperlin.data.prepare import PrepareSettings, prepare_dataset
from videoperlin.data.sources import load_catalog
from videoperlin.data.video_dataset import ClipDataset

ROOT = Path(__file__).resolve().parents[1]


def decord_decoder():
    """decord2's whole-video decode at a short side, or None when it does not import."""
    try:
        import decord
    except ImportError:
        return None

    def decode(path: Path, short_side: int) -> np.ndarray:
        probe = decord.VideoReader(str(path))
        height, width = probe[0].shape[:2]
        scale = short_side / min(width, height)
        reader = decord.VideoReader(
            str(path), width=max(2, round(width * scale / 2) * 2), height=max(2, round(height * scale / 2) * 2)
        )
        return reader.get_batch(list(range(len(reader)))).asnumpy()

    return decode


def variants(records, args, cache_dir: Path) -> dict:
    """name -> a function that runs one pass over the videos."""
    loader = ClipDataset(records, FrameCache(None, args.short_side), args.frames, args.size)
    cached = ClipDataset(records, FrameCache(cache_dir, args.short_side), args.frames, args.size)
    for i in range(len(cached)):  # fill the cache (the first epoch's work)
        cached[i]
    passes = {
        "raw decode (PyAV)": lambda: [decode_video(r.path, args.short_side) for r in records],
        "loader": lambda: [loader[i] for i in range(len(loader))],
        "loader, warm cache": lambda: [cached[i] for i in range(len(cached))],
    }
    decord = decord_decoder()
    if decord is not None:
        passes["raw decode (decord2)"] = lambda: [decord(r.path, args.short_side) for r in records]
    return passes


def measure(records, args, cache_dir: Path) -> dict[str, float]:
    """clips/s of each variant: the median of ``args.repeats`` passes, interleaved."""
    passes, seconds = variants(records, args, cache_dir), {}
    for _ in range(args.repeats):
        for name, run in passes.items():
            began = time.perf_counter()
            run()
            seconds.setdefault(name, []).append(time.perf_counter() - began)
    return {name: len(records) / statistics.median(times) for name, times in seconds.items()}


def training_records(data: Path, splits_dir: Path | None, count: int):
    catalog = load_catalog(data, split=1, splits_dir=splits_dir)
    records = sorted(catalog.subset("train"), key=lambda r: str(r.path))
    return records[:: max(1, len(records) // count)][:count]


def on_copy(records, data: Path, copy: Path):
    """The same records, their paths moved to the prepared copy."""
    return [type(r)(**{**r.__dict__, "path": copy / Path(r.path).relative_to(data)}) for r in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "jhmdb")
    parser.add_argument("--splits-dir", type=Path, default=ROOT.parent / "shared" / "data" / "annotations" / "hmdb51")
    parser.add_argument("--videos", type=int, default=150)
    parser.add_argument("--short-side", type=int, default=128)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prepared", type=Path, default=None, help="a prepared copy of --data at --short-side")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers here as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker (torch gives each one thread)
    records = training_records(args.data, args.splits_dir, args.videos)
    result: dict = {"videos": len(records), "cpu_threads": os.cpu_count(), "settings": vars(args) | {}}
    with tempfile.TemporaryDirectory() as tmp:
        copy = args.prepared
        if copy is None:
            copy = Path(tmp) / "prepared"
            summary = prepare_dataset(args.data, copy, PrepareSettings(args.short_side), workers=os.cpu_count() or 1)
            result["prepare"] = {
                "seconds": summary.seconds,
                "mib_before": summary.bytes_before / 2**20,
                "mib_after": summary.bytes_after / 2**20,
                "videos": summary.videos,
            }
            print(f"prepare: {summary.line()}")
        for source, rows in (("original", records), ("prepared", on_copy(records, args.data, copy))):
            result[source] = measure(rows, args, Path(tmp) / f"cache-{source}")
    print_table(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str))


def print_table(result: dict) -> None:
    names = list(result["original"])
    print(
        f"\n{result['videos']} JHMDB training videos, one process; clips/s (ratio to raw PyAV decode of the same files)\n"
    )
    print("| files | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for source in ("original", "prepared"):
        rates = result[source]
        raw = rates["raw decode (PyAV)"]
        cells = [f"{rates[n]:.1f} ({rates[n] / raw:.2f}x)" for n in names]
        print(f"| {source} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
