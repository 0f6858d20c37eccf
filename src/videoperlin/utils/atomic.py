"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A reader (or a resumed run after ``kill -9``) sees either the old file or the complete new one,
never a partial file. Temporary names start with ``.`` and contain ``.tmp-``, so they are easy to
recognise and clean up. :func:`exclusive_lock` keeps a second writer out of a folder (a run, an
export shard, a prepared copy): an advisory ``flock`` the kernel drops when the process dies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import filelock

from videoperlin.errors import ConfigError

TMP_MARKER = ".tmp-"


@contextlib.contextmanager
def exclusive_lock(lock_file: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if needed) for the ``with`` block; if another
    process holds it, a :class:`ConfigError` ``busy`` (which says what is busy and what to do).

    Through ``filelock`` (a dependency of torch): an OS lock on POSIX and Windows alike, released by the
    kernel when its process dies, so a killed run's lock never blocks the next one."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise ConfigError(f"{busy} ({lock_file} is locked)") from None
    try:
        yield
    finally:
        lock.release()


def temp_path_for(path: Path) -> Path:
    """A unique temporary path in the same directory as ``path`` (same filesystem, so rename is atomic)."""
    return path.with_name(f".{path.name}{TMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def is_temp_file(path: Path) -> bool:
    """Whether ``path`` is a temporary file left by :func:`atomic_path`."""
    return path.name.startswith(".") and TMP_MARKER in path.name


def _writer_alive(path: Path) -> bool:
    """Whether the process that is writing temporary file ``path`` (its PID is in the name) still runs."""
    try:
        pid = int(path.name.split(TMP_MARKER, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's live process, or a platform that cannot tell: leave it
    return True


def sweep_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files under ``directory`` whose writer is dead (a kill -9 during a write leaves
    one, as large as the file it was writing); return them. Call it holding the directory's lock."""
    swept = []
    for path in directory.rglob(f"*{TMP_MARKER}*") if directory.is_dir() else []:
        if path.is_file() and is_temp_file(path) and not _writer_alive(path):
            path.unlink(missing_ok=True)
            swept.append(path)
    return swept


#: Write faults by errno, and what to do about each.
WRITE_FAULTS = {
    errno.ENOSPC: ("the disk is full", "free space"),
    errno.EDQUOT: ("the disk quota is used up", "free space or raise the quota"),
    errno.EACCES: ("permission denied", "make the folder writable or choose another --out"),
    errno.EPERM: ("permission denied", "make the folder writable or choose another --out"),
    errno.EROFS: ("the filesystem is read-only", "choose another --out"),
}


def _free_space(path: Path) -> int | None:
    with contextlib.suppress(OSError):
        return shutil.disk_usage(path.parent).free
    return None


def _write_fault(exc: BaseException, free: int | None) -> tuple[str, str] | None:
    """(what went wrong, what to do) when ``exc``, raised while writing where ``free`` bytes are left, is a
    write fault of the filesystem. Not every writer says so with an errno: torch.save raises a RuntimeError
    ("file write failed", "unexpected pos ..."), numpy.save an OSError without errno ("8192 requested and
    3968 written"); those are confirmed by the free space left."""
    if isinstance(exc, OSError) and exc.errno in WRITE_FAULTS:
        return WRITE_FAULTS[exc.errno]
    if isinstance(exc, (OSError, RuntimeError)) and free is not None and free < 2**20:
        return WRITE_FAULTS[errno.ENOSPC]
    return None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is fsynced and renamed to ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched; a full disk becomes
    a :class:`ConfigError` naming the file.
    """
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        free = _free_space(path)
        fault = _write_fault(exc, free)
        if fault is not None:
            room = f", {free / 2**20:,.1f} MiB free" if free is not None else ""
            raise ConfigError(
                f"{fault[0]} while writing {path}{room}; the previous file (if any) is intact: {fault[1]} and "
                f"rerun (finished work is kept; a training run: add --resume)"
            ) from None
        raise


def writable_directory(path: str | Path, flag: str = "--out") -> Path:
    """Create ``path`` if needed and check that files can be written in it (one-line error otherwise)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"{flag} {path} is not writable ({exc.strerror}); choose a directory you can write to"
        ) from None
    return path


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
