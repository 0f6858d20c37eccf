"""Decoding videos to uint8 frame arrays with PyAV, with an on-disk cache of small decoded copies.

``decode_video(path, short_side=128)`` returns (T, H, W, 3) uint8 RGB frames, resized by FFmpeg's
scaler so the short side is ``short_side`` (aspect kept, even sizes) and turned upright as the
stream's display matrix says (a phone's portrait video is stored as landscape frames). Exported VPN ``.npy`` files
((T, H, W) grayscale, uint8 or float in [0, 1]) decode the same way. Every failure -- missing,
zero-byte, not a video, no decodable frame -- raises :class:`VideoDecodeError` naming the file.

:class:`FrameCache` keeps decoded arrays as ``.npy`` files keyed by the source's path, size, mtime
and short side, so CPU epochs after the first skip decoding entirely. Writes are atomic; a corrupt
cache entry is decoded again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

import av
import numpy as np
import torch

from videoperlin.errors import ConfigError, VideoperlinError
from videoperlin.utils.atomic import atomic_path
from videoperlin.utils.memory import available_memory, gib

log = logging.getLogger(__name__)

#: A video yielding fewer than this share of the frames its header declares is warned about.
SHORT_DECODE = 0.5

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v", ".npy")


class VideoDecodeError(VideoperlinError):
    """A video could not be read; the message names the file and the reason."""


def _scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    if not short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _refuse_unless_it_fits(path: Path, need: int, doing: str, fix: str) -> None:
    """Refuse (:class:`VideoDecodeError`, naming ``path``) ``doing`` what needs ``need`` bytes (a lower bound)
    when the memory free now is less."""
    free = available_memory(torch.device("cpu"))
    if need > free:
        raise VideoDecodeError(f"{path}: {doing} needs {gib(need)} but {gib(free)} is available; {fix}")


def _decode_npy(path: Path, short_side: int | None) -> np.ndarray:
    _refuse_unless_it_fits(path, path.stat().st_size, "loading it", "cut the clip into shorter files")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise VideoDecodeError(f"{path}: not a readable .npy clip ({exc})") from None
    if array.ndim == 3:
        array = np.repeat(array[..., None], 3, axis=3)
    if array.ndim != 4 or array.shape[3] != 3 or array.shape[0] == 0:
        raise VideoDecodeError(f"{path}: .npy clip must be (T, H, W) or (T, H, W, 3), got {array.shape}")
    if array.dtype != np.uint8:
        array = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    if short_side and min(array.shape[1:3]) != short_side:
        import torch.nn.functional as F

        width, height = _scaled_size(array.shape[2], array.shape[1], short_side)
        frames = torch.from_numpy(array).permute(0, 3, 1, 2).float()
        frames = F.interpolate(frames, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        array = frames.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(array)


def _header_frames(container, stream) -> int:
    """The frames a stream's header declares: its frame count, else duration x frame rate; 0 when unknown."""
    if stream.frames:
        return int(stream.frames)
    if container.duration and stream.average_rate:
        return round(container.duration / 1e6 * float(stream.average_rate))
    return 0


def declared_frames(path: str | Path) -> int:
    """The frames a video's header declares (its frame count, else duration x frame rate); 0 for ``.npy``
    clips and when the header says nothing. Reads the header only."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return 0
    try:
        with av.open(str(path)) as container:
            return _header_frames(container, container.streams.video[0]) if container.streams.video else 0
    except (av.FFmpegError, ValueError, OSError):
        return 0


def _check_decode_memory(path: Path, frames: int, width: int, height: int, short_side: int | None) -> None:
    """Refuse a video whose decoded frames cannot fit in the memory free now: the frames as decoded and their
    stacked copy, 2 x T x H x W x 3 bytes at the decoded size."""
    width, height = _scaled_size(width, height, short_side)
    doing = f"decoding its {frames:,} frames at {width}x{height}"
    fix = "lower data.short_side or cut the video into shorter files"
    _refuse_unless_it_fits(path, 2 * frames * width * height * 3, doing, fix)


def decode_video(path: str | Path, short_side: int | None = 128) -> np.ndarray:
    """All frames of a video as (T, H, W, 3) uint8 RGB, short side resized to ``short_side``; a video whose
    frames cannot fit in the memory free now is refused before decoding (:class:`VideoDecodeError`)."""
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"{path}: file does not exist")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: file is empty (0 bytes)")
    if path.suffix.lower() == ".npy":
        return _decode_npy(path, short_side)
    frames: list[np.ndarray] = []
    declared = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            declared = stream.frames
            width, height = stream.codec_context.width, stream.codec_context.height
            _check_decode_memory(path, _header_frames(container, stream), width, height, short_side)
            for frame in container.decode(stream):
                width, height = _scaled_size(frame.width, frame.height, short_side)
                frames.append(upright(frame.to_ndarray(format="rgb24", width=width, height=height), frame.rotation))
    except VideoDecodeError:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        if not frames:
            raise VideoDecodeError(f"{path}: cannot be decoded as video ({exc})") from None
        log.warning("%s: decoding stopped after %d frames (%s); using those", path, len(frames), exc)
    if not frames:
        raise VideoDecodeError(f"{path}: contains no decodable frames")
    if declared and len(frames) < SHORT_DECODE * declared:
        log.warning(
            "%s: decoded %d frames but its header declares %d (truncated or damaged?); using those",
            path,
            len(frames),
            declared,
        )
    return np.stack(frames)


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """An (H, W, 3) frame turned as its display matrix says it is shown (``rotation``: degrees
    counter-clockwise, PyAV's ``VideoFrame.rotation``; phones record portrait video as landscape
    frames with a matrix of -90). Only quarter turns exist in practice; others are rounded to one."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


class FrameCache:
    """Decoded-frame cache: ``.npy`` files under ``directory`` (None: decode every time), at most
    ``limit_bytes`` of them (0: no limit).

    Beyond the limit the least recently used videos are evicted (an entry's modification time is set on
    every read), down to :attr:`LOW_WATER` of the limit so that eviction scans are rare. Several processes
    (DataLoader workers, runs) may share a cache: each keeps an estimate of its size, an eviction rescans
    the directory, and an entry that another process evicted between the check and the read is decoded
    again without a word."""

    #: After an eviction the cache holds at most this share of its limit.
    LOW_WATER = 0.9

    def __init__(self, directory: str | Path | None, short_side: int | None = 128, limit_bytes: int = 0) -> None:
        self.directory = Path(directory) if directory else None
        self.short_side = short_side
        self.limit = limit_bytes
        self._size: int | None = None  # estimate; scanned on first need
        self.failed = False  # a write fault stopped the caching
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)

    def _key(self, path: Path) -> Path:
        stat = path.stat()
        digest = hashlib.sha1(
            f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.short_side}".encode()
        ).hexdigest()
        return self.directory / digest[:2] / f"{digest}.npy"  # type: ignore[operator]

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes, path) of every entry, oldest first."""
        found = []
        for entry in self.directory.glob("*/*.npy") if self.directory else []:
            with contextlib.suppress(FileNotFoundError):
                stat = entry.stat()
                found.append((stat.st_mtime, stat.st_size, entry))
        return sorted(found)

    def size(self) -> int:
        """Bytes the cache holds now (a scan of its directory)."""
        self._size = sum(size for _, size, _ in self.entries())
        return self._size

    def describe(self) -> str:
        """``DIR: 3.2 GiB of 20.0 GiB`` (the run log's line)."""
        if self.directory is None:
            return "no frame cache (videos are decoded every time)"
        limit = f"{self.limit / 2**30:.1f} GiB" if self.limit else "no limit"
        return f"frame cache {self.directory}: {self.size() / 2**30:.2f} GiB of {limit}"

    def _evict(self, keep: Path) -> None:
        """Delete least recently used entries (never ``keep``) until the cache is below its low-water mark."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        target = self.LOW_WATER * self.limit
        for _, size, entry in entries:
            if total <= target:
                break
            if entry != keep:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    total -= size
        self._size = total

    def _store(self, entry: Path, frames: np.ndarray) -> bool:
        """Write a cache entry; on a write fault (a full disk, no permission) warn once, stop caching and go on:
        the cache only saves time, the run does not need it."""
        if self.failed:
            return False
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(entry) as tmp:
                with open(tmp, "wb") as handle:
                    np.save(handle, frames)
            return True
        except (ConfigError, OSError) as exc:
            self.failed = True
            fault = str(exc).split(";")[0]  # "the disk is full while writing ENTRY, 0.3 MiB free"
            log.warning(
                "frame cache: %s; videos not cached yet are decoded every time from now on (free space, "
                "lower data.cache_limit_gb or point data.cache_dir elsewhere)",
                fault,
            )
            return False

    def load(self, path: str | Path) -> np.ndarray:
        """Frames of ``path`` from the cache, decoding (and storing) them on a miss."""
        path = Path(path)
        if self.directory is None or not path.is_file():
            return decode_video(path, self.short_side)
        entry = self._key(path)
        if entry.exists():
            try:
                frames = np.load(entry, allow_pickle=False)
                with contextlib.suppress(FileNotFoundError):
                    os.utime(entry)  # used now: the last to be evicted
                return frames
            except FileNotFoundError:
                pass  # evicted by another process since the check: decode again
            except (ValueError, OSError, EOFError):
                log.warning("cache entry %s for %s is corrupt; decoding again", entry, path)
        frames = decode_video(path, self.short_side)
        if not self._store(entry, frames):
            return frames
        if self.limit:
            self._size = (self.size() if self._size is None else self._size) + entry.stat().st_size
            if self._size > self.limit:
                self._evict(keep=entry)
        return frames


def video_fps(path: str | Path) -> float | None:
    """Average frame rate of a video's first video stream (None for .npy clips or when unknown)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return None
    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else None
    except (av.FFmpegError, IndexError, OSError):
        return None
