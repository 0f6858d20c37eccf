"""``videoperlin prepare``: a copy of a dataset re-encoded at its training resolution.

Real video is stored far larger than a 3D CNN reads it: JHMDB is 320x240 and a CPU run decodes it
at a short side of 80 to 128. Decoding the originals every epoch (or caching their decoded frames)
is what makes video loading slow; mmaction2 ships a resize tool for that reason. ``prepare`` writes
the copy once:

* **Layout kept.** Given a folder, every video under it is re-encoded to the same relative path and
  name (split files and manifests name files; the container follows the suffix,
  :data:`~videoperlin.data.encode.CONTAINERS`), and every other file (split files, manifests, JSON)
  is copied as it is, so every reader works on the copy unchanged. Given a CSV manifest, the videos
  it lists are prepared beside a copy of it; a ``sha1`` column is rewritten with the new files' digests.
* **Frames.** Decoded with :func:`~videoperlin.data.decode.decode_video` (turned upright by the
  display matrix), resized so the short side is ``short_side`` (never enlarged; aspect kept, even
  sizes), optionally thinned to at most ``fps`` frames a second (frames nearest to the new times),
  and encoded as H.264 (CRF ``crf``, one thread per file: files are encoded in parallel instead).
* **Safe to stop.** Each file is written atomically, so a file in the copy is complete; a rerun
  skips those and does the rest. ``prepare.json`` records the settings (a rerun with other settings
  is refused: the copy would mix resolutions) and the summary; one process writes a copy at a time.
* **Bad input.** An unreadable video is reported (a warning naming it, and the list in
  ``prepare.json``) and left out of the copy, as ``check-data`` reports it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import multiprocessing
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from videoperlin.data.decode import VideoDecodeError, decode_video
from videoperlin.data.encode import CONTAINERS, check_crf
from videoperlin.data.encode import encode_video as _encode
from videoperlin.errors import ConfigError
from videoperlin.utils.atomic import (
    atomic_path,
    atomic_write_text,
    exclusive_lock,
    is_temp_file,
    sweep_temporaries,
    writable_directory,
)
from videoperlin.utils.progress import progress_bar
from videoperlin.utils.text import read_csv_rows

log = logging.getLogger(__name__)

#: The record of a prepared copy, in its root.
RECORD_FILE = "prepare.json"
#: x264's own default quality: visually transparent at these sizes, and what resize tools use.
DEFAULT_CRF = 23


@dataclass(frozen=True)
class PrepareSettings:
    """What a prepared copy was made with (a rerun must use the same)."""

    short_side: int
    fps: float | None = None
    crf: int = DEFAULT_CRF

    def check(self) -> None:
        if self.short_side < 2:
            raise ConfigError(f"--short-side {self.short_side} must be at least 2 (even frame sizes)")
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"--fps {self.fps} must be a positive number of frames a second")
        check_crf(self.crf)


@dataclass
class PrepareSummary:
    """Counts and sizes of one ``prepare`` (``bytes_before``/``bytes_after``: every video of the copy)."""

    videos: int = 0
    prepared: int = 0
    reused: int = 0
    unreadable: list[str] = field(default_factory=list)
    other_files: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        ratio = self.bytes_after / self.bytes_before if self.bytes_before else float("nan")
        return (
            f"{self.videos} videos ({self.prepared} prepared now, {self.reused} already there, "
            f"{len(self.unreadable)} unreadable and left out), {self.other_files} other files copied; "
            f"{self.bytes_before / 2**20:.1f} MiB -> {self.bytes_after / 2**20:.1f} MiB ({ratio:.1%}) in {self.seconds:.0f} s"
        )


# ---- what to prepare ---------------------------------------------------------------------------


def _is_video(path: Path) -> bool:
    """A video ``prepare`` re-encodes: one whose container it can write (others, e.g. ``.mpg`` or
    ``.npy`` clips, are copied as they are)."""
    return path.suffix.lower() in CONTAINERS


def tree_files(root: Path) -> list[Path]:
    """The files under ``root`` (relative to it, sorted, hidden ones left out), following links to
    folders as the readers do (``my_videos/walk -> /data/weizmann/walk``); a link back up is walked once."""
    found, seen = [], set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        here = Path(folder)
        found += [(here / n).relative_to(root) for n in names if not n.startswith(".") and (here / n).is_file()]
    return sorted(found)


def dataset_files(source: Path) -> tuple[Path, list[Path], list[Path]]:
    """(root, videos, other files) of ``source``, paths relative to the root: a folder's whole tree,
    or a CSV manifest's listed videos and the manifest itself."""
    if source.is_dir():
        files = [p for p in tree_files(source) if not is_temp_file(source / p)]
        videos = [p for p in files if _is_video(p)]
        if not videos:
            raise ConfigError(f"prepare {source}: no videos in the folder's tree (containers {', '.join(CONTAINERS)})")
        return source, videos, [p for p in files if not _is_video(p)]
    if source.suffix.lower() != ".csv":
        raise ConfigError(f"prepare {source}: give a dataset folder or a CSV manifest (path,label[,...])")
    rows = read_csv_rows(source, "manifest")
    if not rows or "path" not in rows[0]:
        raise ConfigError(f"{source} has no 'path' column; prepare needs a manifest with a header path,label[,...]")
    videos = []
    for line, row in enumerate(rows, start=2):
        path = Path(row["path"].strip())
        if path.is_absolute() or ".." in path.parts:
            raise ConfigError(
                f"{source}:{line}: {path} is not inside the manifest's folder; prepare the folder that holds the videos"
            )
        videos.append(path)
    return source.parent, sorted(set(videos)), [Path(source.name)]


# ---- one video ---------------------------------------------------------------------------------


def _frame_times(frames: int, rate: float, cap: float | None) -> tuple[np.ndarray, float]:
    """Indices of the frames kept and the new frame rate: all at ``rate``, or those nearest to
    multiples of ``1 / cap`` when ``rate`` exceeds ``cap``."""
    if cap is None or rate <= cap:
        return np.arange(frames), rate
    kept = np.unique(np.minimum(np.rint(np.arange(0, frames / rate, 1 / cap) * rate), frames - 1).astype(int))
    return kept, cap


def _source_geometry(path: Path) -> tuple[int, int, float]:
    """(width, height, frames a second) of the first video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate) if stream.average_rate else 25.0
        return stream.codec_context.width, stream.codec_context.height, rate


def prepare_video(source: Path, target: Path, settings: PrepareSettings) -> None:
    """Re-encode ``source`` as ``target`` (atomically); :class:`VideoDecodeError` when it cannot be read."""
    try:
        width, height, rate = _source_geometry(source)
    except (av.FFmpegError, IndexError, OSError, ValueError) as exc:
        raise VideoDecodeError(f"{source}: cannot be read as video ({exc})") from None
    frames = decode_video(source, settings.short_side if min(width, height) > settings.short_side else None)
    frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]  # yuv420p: even sizes
    kept, fps = _frame_times(len(frames), rate, settings.fps)
    container, codec = CONTAINERS[target.suffix.lower()]
    options = {"preset": "medium", "threads": "1"} if codec == "libx264" else {"b": "0", "threads": "1"}
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        _encode(tmp, frames[kept], Fraction(fps).limit_denominator(1001), settings.crf, container, codec, options)


def _prepare_one(job: tuple[Path, Path, PrepareSettings]) -> tuple[Path, str | None]:
    source, target, settings = job
    try:
        prepare_video(source, target, settings)
        return target, None
    except VideoDecodeError as exc:
        return target, str(exc)


# ---- the copy ----------------------------------------------------------------------------------


def _check_record(out: Path, root: Path, settings: PrepareSettings) -> None:
    """Refuse to add to a copy made from another source or with other settings."""
    record_file = out / RECORD_FILE
    if not record_file.exists():
        return
    record = json.loads(record_file.read_text())
    if record.get("settings") != asdict(settings) or record.get("source") != str(root.resolve()):
        raise ConfigError(
            f"{out} is a copy of {record.get('source')} with {record.get('settings')}, not of {root.resolve()} "
            f"with {asdict(settings)}; prepare into another --out (a copy must not mix resolutions)"
        )


def _copy_other_files(root: Path, out: Path, others: list[Path]) -> None:
    for relative in others:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            shutil.copyfile(root / relative, tmp)


def _rewrite_manifest_digests(out: Path, manifest: Path) -> None:
    """A copied manifest's ``sha1`` column, recomputed for the files of the copy (rows of missing files kept)."""
    rows = read_csv_rows(out / manifest, "manifest")
    if not rows or "sha1" not in rows[0]:
        return
    for row in rows:
        video = out / row["path"].strip()
        if video.exists():
            row["sha1"] = hashlib.sha1(video.read_bytes()).hexdigest()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / manifest, buffer.getvalue())


def prepare_dataset(
    source: str | Path, out: str | Path, settings: PrepareSettings, workers: int = 0, progress: bool = True
) -> PrepareSummary:
    """Prepare ``source`` (a folder or a CSV manifest) into ``out``; the summary (also in ``out/prepare.json``)."""
    settings.check()
    source, out = Path(source), Path(out)
    if not source.exists():
        raise ConfigError(f"prepare: {source} does not exist; give a dataset folder or a CSV manifest")
    root, videos, others = dataset_files(source)
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
        raise ConfigError(f"--out {out} is inside the source {root}; prepare into a folder outside it")
    writable_directory(out)
    with exclusive_lock(out / ".prepare.lock", f"another prepare is writing {out}; wait for it"):
        for stale in sweep_temporaries(out):
            log.info("removed %s, left by a prepare that was killed", stale)
        _check_record(out, root, settings)
        began, summary = time.perf_counter(), PrepareSummary(videos=len(videos), other_files=len(others))
        _copy_other_files(root, out, others)
        todo = [(root / v, out / v, settings) for v in videos if not (out / v).exists()]
        summary.reused = len(videos) - len(todo)
        atomic_write_text(out / RECORD_FILE, json.dumps({"source": str(root.resolve()), "settings": asdict(settings)}))
        for target, error in _run_jobs(todo, workers, progress):
            if error is None:
                summary.prepared += 1
            else:
                summary.unreadable.append(str(target.relative_to(out)))
                log.warning("%s; left out of the copy", error)
        if source.is_file():
            _rewrite_manifest_digests(out, Path(source.name))
        summary.bytes_before = sum((root / v).stat().st_size for v in videos if (root / v).exists())
        summary.bytes_after = sum((out / v).stat().st_size for v in videos if (out / v).exists())
        summary.seconds = time.perf_counter() - began
        record: dict[str, Any] = {
            "source": str(root.resolve()),
            "settings": asdict(settings),
            "summary": asdict(summary),
        }
        atomic_write_text(out / RECORD_FILE, json.dumps(record, indent=1))
    return summary


def _run_jobs(jobs: list, workers: int, progress: bool):
    """Results of :func:`_prepare_one` over ``jobs``, in ``workers`` processes (0: in this one)."""
    bar = progress_bar(total=len(jobs), desc="prepare", unit="video", show=progress)
    try:
        if workers == 0 or len(jobs) < 2:
            for job in jobs:
                yield _prepare_one(job)
                bar.update()
            return
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for result in pool.imap_unordered(_prepare_one, jobs, chunksize=4):
                yield result
                bar.update()
    finally:
        bar.close()
