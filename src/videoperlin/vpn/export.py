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

import csv
import io
import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import videoperlin
from videoperlin.data.encode import DEFAULT_CRF, DEFAULT_FPS, encode_video
from videoperlin.errors import ConfigError
from videoperlin.utils.atomic import atomic_path, atomic_write_text, is_temp_file
from videoperlin.vpn.dataset import VPNDataset

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


def relative_file(ds: VPNDataset, index: int, fmt: str) -> str:
    """Path of video ``index`` relative to the export root."""
    return f"{ds.space.name(ds.label(index))}/{index:08d}.{fmt}"


def _prepare_root(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {out} is not writable ({exc.strerror}); choose a directory you can write to") from None


def _record_spec(ds: VPNDataset, out: Path, fmt: str, npy_dtype: str, crf: int) -> None:
    """Write dataset.json, or check that an existing one describes the same dataset.

    The existing record is read back through :meth:`VPNDataset.from_dict`, so a ``dataset.json``
    written before an option existed compares equal when this run uses the option's default.
    """
    record = {"format": fmt, "npy_dtype": npy_dtype if fmt == "npy" else None,
              "crf": crf if fmt == "mp4" else None, "fps": DEFAULT_FPS if fmt == "mp4" else None,
              "layout": "<class_name>/<index:08d>.<ext>", "class_names": ds.space.names()}
    path = out / "dataset.json"
    if path.exists():
        old = read_dataset_json(path)
        old["vpn"] = VPNDataset.from_dict(old["vpn"]).to_dict()
        new = {"vpn": ds.to_dict(), **record}
        if old != new:
            raise ConfigError(
                f"{out} already holds a different VPN dataset (differs in {', '.join(_differing_fields(old, new))}); "
                f"rerun with the same settings to resume, or choose a new --out"
            )
        return
    text = json.dumps({"vpn": ds.to_dict(), **record, "videoperlin_version": videoperlin.__version__}, indent=2)
    atomic_write_text(path, text + "\n")


def read_dataset_json(path: str | Path) -> dict:
    """An export's ``dataset.json`` (without the version stamp); errors name the file."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError:
        raise ConfigError(f"{path} is not valid JSON; delete it (the videos are kept) and rerun") from None
    if not isinstance(record, dict) or not isinstance(record.get("vpn"), dict):
        raise ConfigError(f"{path} holds no 'vpn' record; it was not written by videoperlin generate")
    record.pop("videoperlin_version", None)
    return record


def load_exported_dataset(root: str | Path) -> VPNDataset:
    """The :class:`VPNDataset` an export directory (or its ``dataset.json``) was rendered from."""
    path = Path(root)
    return VPNDataset.from_dict(read_dataset_json(path / "dataset.json" if path.is_dir() else path)["vpn"])


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


def _remove_stale_temporaries(ds: VPNDataset, out: Path, todo: list[int], fmt: str) -> None:
    """Delete temporary files left (e.g. by kill -9) for the indices this call will write."""
    wanted = {Path(relative_file(ds, i, fmt)).name for i in todo}
    for class_dir in {out / ds.space.name(ds.label(i)) for i in todo}:
        if not class_dir.is_dir():
            continue
        for entry in class_dir.iterdir():
            if is_temp_file(entry) and entry.name[1:].split(".tmp-")[0] in wanted:
                entry.unlink(missing_ok=True)


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def manifest_text(ds: VPNDataset, fmt: str) -> str:
    """The full manifest.csv of an export (deterministic from the spec)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(manifest_columns(ds.space))
    for index in range(len(ds)):
        label = ds.label(index)
        axes = ds.space.params(label).values()
        writer.writerow([index, label, ds.space.name(label), *axes, relative_file(ds, index, fmt)])
    return buffer.getvalue()


def _finish_manifest(ds: VPNDataset, out: Path, fmt: str) -> bool:
    missing = sum(not (out / relative_file(ds, i, fmt)).exists() for i in range(len(ds)))
    if missing:
        log.info("%d videos of other shards are still missing; manifest.csv is written when all exist "
                 "(rerun any shard to write it)", missing)
        return False
    atomic_write_text(out / "manifest.csv", manifest_text(ds, fmt))
    return True


def export_dataset(
    ds: VPNDataset,
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
    if npy_dtype not in NPY_DTYPES:
        raise ConfigError(f"--npy-dtype {npy_dtype!r} is not supported; choose one of {', '.join(NPY_DTYPES)}")
    if fmt == "mp4" and (ds.height % 2 or ds.width % 2):
        raise ConfigError(f"--size {ds.height}x{ds.width} is odd; H.264 mp4 needs even sizes (or use --format npy)")
    shard_index, shard_count = shard
    out = Path(out)
    _prepare_root(out)
    _record_spec(ds, out, fmt, npy_dtype, crf)
    mine = list(range(shard_index, len(ds), shard_count))
    todo = [i for i in mine if not (out / relative_file(ds, i, fmt)).exists()]
    _remove_stale_temporaries(ds, out, todo, fmt)
    log.info("shard %d/%d: %d videos, %d already present, %d to write", shard_index, shard_count,
             len(mine), len(mine) - len(todo), len(todo))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(todo), desc=f"generate {out.name}", unit="video", disable=not progress) as bar:
        for indices in _batches(todo, batch_size):
            clips, _ = ds.batch(indices)
            gray = clips[:, 0].numpy()
            jobs = [pool.submit(_write_video, out / relative_file(ds, i, fmt), gray[k], fmt, npy_dtype, crf)
                    for k, i in enumerate(indices)]
            for job in jobs:
                job.result()
                bar.update(1)
    manifest_written = _finish_manifest(ds, out, fmt)
    return ExportSummary(len(todo), len(mine) - len(todo), len(mine), manifest_written)
