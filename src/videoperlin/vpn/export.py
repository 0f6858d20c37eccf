"""Render a VPN dataset to disk: ``DIR/<class_name>/<index:08d>.<ext>``, ``manifest.csv``, ``dataset.json``.

Resumable and shardable:

* every video is written to a temporary file and renamed into place, so a file that exists is
  complete; a rerun (also after ``kill -9``) skips existing files, removes stale temporaries of
  the indices it owns and writes the rest, with no duplicates;
* ``shard=(I, N)`` owns indices ``i`` with ``i % N == I`` (interleaved, so every shard holds every
  class); N processes or machines writing into one shared ``DIR`` build one dataset;
* ``dataset.json`` records the full spec; a rerun with different settings into the same ``DIR``
  is refused instead of mixing two datasets;
* ``manifest.csv`` is written (atomically, and identically by whichever shard gets there) once
  every video of the whole dataset exists.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import videoperlin
from videoperlin.data.encode import DEFAULT_CRF, DEFAULT_FPS, check_crf, encode_video
from videoperlin.errors import ConfigError
from videoperlin.utils.atomic import atomic_path, atomic_write_text, exclusive_lock, is_temp_file, writable_directory
from videoperlin.utils.progress import progress_bar
from videoperlin.vpn.dataset import SyntheticDataset

log = logging.getLogger(__name__)

FORMATS = ("mp4", "npy")
NPY_DTYPES = ("uint8", "float32")


def manifest_columns(space) -> tuple[str, ...]:
    """manifest.csv's columns: one per label axis of ``space`` between the class name and the file."""
    axes = tuple(space.params(0))
    return ("index", "label", "class_name", *axes, "file")


@dataclass
class ExportSummary:
    """What one export call did."""

    written: int
    skipped: int
    shard_size: int
    manifest_written: bool


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"I/N"`` (0-based shard I of N) with a clear error for anything else."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ConfigError(f"--shard {text!r} must look like I/N, e.g. 0/4 (shard I of N, counting from 0)") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard {text}: I must be in 0..N-1 and N >= 1 (e.g. 0/{max(count, 1)})")
    return index, count


def relative_file(ds: SyntheticDataset, index: int, fmt: str) -> str:
    """Path of video ``index`` relative to the export root."""
    return f"{ds.space.name(ds.label(index))}/{index:08d}.{fmt}"


def _record_spec(ds: SyntheticDataset, out: Path, fmt: str, npy_dtype: str, crf: int) -> None:
    """Write dataset.json, or check that an existing one describes the same dataset.

    The existing record is read back through :meth:`SyntheticDataset.from_dict`, so a ``dataset.json``
    written before an option existed compares equal when this run uses the option's default.
    """
    record = {
        "format": fmt,
        "npy_dtype": npy_dtype if fmt == "npy" else None,
        "crf": crf if fmt == "mp4" else None,
        "fps": DEFAULT_FPS if fmt == "mp4" else None,
        "layout": "<class_name>/<index:08d>.<ext>",
        "class_names": ds.space.names(),
    }
    path = out / "dataset.json"
    if path.exists():
        old = read_dataset_json(path)
        old["synthetic"] = SyntheticDataset.from_dict(old["synthetic"]).to_dict()
        new = {"synthetic": ds.to_dict(), **record}
        if old != new:
            raise ConfigError(
                f"{out} already holds a different VPN dataset (differs in {', '.join(_differing_fields(old, new))}); "
                f"rerun with the same settings to resume, or choose a new --out"
            )
        return
    text = json.dumps({"synthetic": ds.to_dict(), **record, "videoperlin_version": videoperlin.__version__}, indent=2)
    atomic_write_text(path, text + "\n")


def read_dataset_json(path: str | Path) -> dict:
    """An export's ``dataset.json`` (without the version stamp; the clip record under ``synthetic``, as files
    before 0.4 wrote it under ``vpn``); errors name the file."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError:
        raise ConfigError(f"{path} is not valid JSON; delete it (the videos are kept) and rerun") from None
    if isinstance(record, dict) and "synthetic" not in record and isinstance(record.get("vpn"), dict):
        record["synthetic"] = record.pop("vpn")
    if not isinstance(record, dict) or not isinstance(record.get("synthetic"), dict):
        raise ConfigError(f"{path} holds no 'synthetic' record; it was not written by videoperlin generate")
    record.pop("videoperlin_version", None)
    return record


def load_exported_dataset(root: str | Path) -> SyntheticDataset:
    """The :class:`SyntheticDataset` an export directory (or its ``dataset.json``) was rendered from."""
    path = Path(root)
    return SyntheticDataset.from_dict(read_dataset_json(path / "dataset.json" if path.is_dir() else path)["synthetic"])


def _differing_fields(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two nested dicts."""
    fields = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            fields += _differing_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            fields.append(f"{prefix}{key} {a!r} -> {b!r}" if not isinstance(a, (list, dict)) else f"{prefix}{key}")
    return fields


def _write_video(path: Path, gray: np.ndarray, fmt: str, npy_dtype: str, crf: int) -> None:
    """Write one grayscale clip (T, H, W) float32 in [0, 1] atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if fmt == "mp4":
            encode_video(tmp, _to_uint8(gray), crf=crf)
        elif npy_dtype == "uint8":
            with open(tmp, "wb") as handle:
                np.save(handle, _to_uint8(gray))
        else:
            with open(tmp, "wb") as handle:
                np.save(handle, gray.astype(np.float32, copy=False))


def _to_uint8(gray: np.ndarray) -> np.ndarray:
    return np.rint(gray * 255.0).astype(np.uint8)


def _remove_stale_temporaries(ds: SyntheticDataset, out: Path, shard: tuple[int, int], fmt: str) -> None:
    """Delete temporary files left (e.g. by kill -9) for indices of this shard (matched by index, so
    nothing per video of the whole set is held in memory; other shards' files are left alone)."""
    for class_dir in (out / name for name in ds.space.names()):
        if not class_dir.is_dir():
            continue
        for entry in class_dir.iterdir():
            stem = entry.name[1:].split(".")[0]
            if (
                is_temp_file(entry)
                and f".{fmt}.tmp-" in entry.name
                and stem.isdigit()
                and int(stem) % shard[1] == shard[0]
            ):
                entry.unlink(missing_ok=True)


def _missing_batches(
    ds: SyntheticDataset, out: Path, indices: range, fmt: str, size: int
) -> Iterator[tuple[list[int], int]]:
    """Batches of ``indices`` whose file does not exist yet, each with the number of present files skipped
    since the previous batch (found lazily: no list of the whole set is built)."""
    batch, skipped = [], 0
    for index in indices:
        if (out / relative_file(ds, index, fmt)).exists():
            skipped += 1
            continue
        batch.append(index)
        if len(batch) == size:
            yield batch, skipped
            batch, skipped = [], 0
    if batch or skipped:
        yield batch, skipped


#: Bytes one exported video takes, per voxel: exact for npy; for mp4 (CRF 10, smooth noise) an upper
#: bound of what was measured (tests/test_export.py exports check nothing larger).
BYTES_PER_VOXEL = {("npy", "uint8"): 1.0, ("npy", "float32"): 4.0, ("mp4", "uint8"): 0.5}


def _check_free_space(ds: SyntheticDataset, out: Path, fmt: str, npy_dtype: str, videos: int) -> None:
    """Refuse up front when ``videos`` more videos would not fit on the disk holding ``out``."""
    per_video = BYTES_PER_VOXEL[fmt, npy_dtype if fmt == "npy" else "uint8"] * ds.frames * ds.height * ds.width + 512
    need, free = int(per_video * videos), shutil.disk_usage(out).free
    if need > free:
        raise ConfigError(
            f"{out} has {free / 2**20:.1f} MiB free but {videos} {fmt} videos need about "
            f"{need / 2**20:.1f} MiB ({per_video / 2**10:.1f} KiB each); free space or write fewer "
            f"(--num-videos, --shard)"
        )


@contextlib.contextmanager
def _shard_lock(out: Path, shard: tuple[int, int]) -> Iterator[None]:
    """Hold a lock on this shard of ``out``: two processes on one shard would delete each other's temporaries.
    (Different shards may fill one folder together; the kernel releases the lock if the process dies.)"""
    with exclusive_lock(
        out / f".generate-shard-{shard[0]}-of-{shard[1]}.lock",
        f"another process is already writing shard {shard[0]}/{shard[1]} into {out}; "
        f"wait for it, or give each process its own --shard I/N",
    ):
        yield


def manifest_text(ds: SyntheticDataset, fmt: str) -> str:
    """The full manifest.csv of an export (deterministic from the spec)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(manifest_columns(ds.space))
    for index in range(len(ds)):
        label = ds.label(index)
        axes = ds.space.params(label).values()
        writer.writerow([index, label, ds.space.name(label), *axes, relative_file(ds, index, fmt)])
    return buffer.getvalue()


def _finish_manifest(ds: SyntheticDataset, out: Path, fmt: str) -> bool:
    missing = sum(not (out / relative_file(ds, i, fmt)).exists() for i in range(len(ds)))
    if missing:
        log.info(
            "%d videos of other shards are still missing; manifest.csv is written when all exist "
            "(rerun any shard to write it)",
            missing,
        )
        return False
    atomic_write_text(out / "manifest.csv", manifest_text(ds, fmt))
    return True


def export_dataset(
    ds: SyntheticDataset,
    out: str | Path,
    fmt: str = "mp4",
    shard: tuple[int, int] = (0, 1),
    batch_size: int = 32,
    npy_dtype: str = "uint8",
    crf: int = DEFAULT_CRF,
    workers: int = 2,
    progress: bool = True,
) -> ExportSummary:
    """Render the videos of ``shard`` of ``ds`` into ``out`` (see the module docstring)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not supported; choose one of {', '.join(FORMATS)}")
    if fmt == "mp4":
        check_crf(crf)
    if npy_dtype not in NPY_DTYPES:
        raise ConfigError(f"--npy-dtype {npy_dtype!r} is not supported; choose one of {', '.join(NPY_DTYPES)}")
    if fmt == "mp4" and (ds.height % 2 or ds.width % 2):
        raise ConfigError(f"--size {ds.height}x{ds.width} is odd; H.264 mp4 needs even sizes (or use --format npy)")
    out = writable_directory(out)
    mine = range(shard[0], len(ds), shard[1])
    with _shard_lock(out, shard):
        if mine:  # a batch that cannot be rendered is the first fault to name, before the disk it would fill
            ds.check_render_memory(min(batch_size, len(mine)))
        if not (out / "dataset.json").exists():
            _check_free_space(ds, out, fmt, npy_dtype, len(mine))
        _record_spec(ds, out, fmt, npy_dtype, crf)
        _remove_stale_temporaries(ds, out, shard, fmt)
        written, present = _write_missing(ds, out, mine, fmt, npy_dtype, crf, batch_size, workers, progress)
        log.info("shard %d/%d: %d videos, %d were present, %d written", *shard, len(mine), present, written)
        manifest_written = _finish_manifest(ds, out, fmt)
    return ExportSummary(written, present, len(mine), manifest_written)


def _write_missing(
    ds: SyntheticDataset,
    out: Path,
    indices: range,
    fmt: str,
    npy_dtype: str,
    crf: int,
    batch_size: int,
    workers: int,
    progress: bool,
) -> tuple[int, int]:
    """Render and write every video of ``indices`` whose file is missing; (written, already present)."""
    written = present = 0
    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        progress_bar(total=len(indices), desc=f"generate {out.name}", unit="video", show=progress) as bar,
    ):
        for batch, skipped in _missing_batches(ds, out, indices, fmt, batch_size):
            present += skipped
            bar.update(skipped)
            if not batch:
                continue
            _check_free_space(ds, out, fmt, npy_dtype, len(batch))
            gray = ds.batch(batch)[0][:, 0].numpy()
            jobs = [
                pool.submit(_write_video, out / relative_file(ds, i, fmt), gray[k], fmt, npy_dtype, crf)
                for k, i in enumerate(batch)
            ]
            for job in jobs:
                job.result()
                bar.update(1)
            written += len(batch)
    return written, present
