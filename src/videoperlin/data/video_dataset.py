"""Datasets over real videos: random training clips and evaluation windows.

Randomness (temporal crop, spatial crop, flip) comes from a generator seeded by
(seed, epoch, index), never from global state, so a run is reproducible across worker counts and
an interrupted run resumes exactly. A video that cannot be decoded yields ``None`` with
``on_bad_video="skip"`` (the collate functions drop it and count it) or raises with ``"fail"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import get_args

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from videoperlin.data.config import BadVideoPolicy
from videoperlin.data.decode import FrameCache, VideoDecodeError, video_fps
from videoperlin.data.sampling import random_clip, sliding_windows
from videoperlin.data.sources import VideoRecord
from videoperlin.data.transforms import eval_transform, train_transform
from videoperlin.errors import ConfigError, DataError
from videoperlin.utils.memory import available_memory, gib

log = logging.getLogger(__name__)


class _VideoBase(Dataset):
    def __init__(
        self,
        records: list[VideoRecord],
        cache: FrameCache,
        frames: int,
        size: int,
        stride: int = 1,
        on_bad_video: BadVideoPolicy = "skip",
    ) -> None:
        if on_bad_video not in get_args(BadVideoPolicy):
            raise ConfigError(f"on_bad_video {on_bad_video!r} must be one of {', '.join(get_args(BadVideoPolicy))}")
        if not records:
            raise DataError("the dataset split is empty; check --data, --dataset, --split or the fold settings")
        self.records, self.cache = records, cache
        self.frames, self.size, self.stride = frames, size, stride
        self.on_bad_video = on_bad_video

    def __len__(self) -> int:
        return len(self.records)

    def load_frames(self, record: VideoRecord) -> np.ndarray | None:
        """Decoded frames (segment-trimmed), or None for a bad video under the skip policy."""
        try:
            frames = self.cache.load(record.path)
        except VideoDecodeError as exc:
            if self.on_bad_video == "fail":
                raise VideoDecodeError(f"{exc} (use --on-bad-video skip to skip such files)") from None
            log.warning("skipping bad video: %s", exc)
            return None
        if record.segment is not None:
            fps = video_fps(record.path)
            if fps:
                start, end = (round(t * fps) for t in record.segment)
                trimmed = frames[max(0, start) : max(start + 1, end)]
                frames = trimmed if len(trimmed) else frames
        return frames


class ClipDataset(_VideoBase):
    """Training: ``ds[i] -> (clip (3, T, size, size) in [0, 1], label)`` or None for a skipped video."""

    def __init__(self, *args, seed: int = 0, scale: tuple[float, float] = (0.25, 1.0), flip: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed, self.scale, self.flip, self.epoch = seed, scale, flip, 0

    def set_epoch(self, epoch: int) -> None:
        """Use the random stream of ``epoch`` (call before iterating)."""
        self.epoch = epoch

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Tensor, int] | None:
        """``ds[index]`` (the epoch of :meth:`set_epoch`) or ``ds[epoch, index]``."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        record = self.records[index]
        frames = self.load_frames(record)
        if frames is None:
            return None
        rng = np.random.default_rng([self.seed, epoch, index])
        indices = random_clip(len(frames), self.frames, self.stride, rng)
        return train_transform(frames[indices], self.size, rng, self.scale, self.flip), record.label


class WindowDataset(_VideoBase):
    """Evaluation: ``ds[i] -> (windows (N, 3, T, size, size), label, i)``: consecutive windows of a video."""

    def __init__(self, *args, window_stride: int | None = None, max_windows: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.window_stride, self.max_windows = window_stride, max_windows
        if max_windows:
            self.check_window_memory(max_windows, "every video")

    def check_window_memory(self, windows: int, what: str) -> None:
        """Refuse (:class:`ConfigError`) ``windows`` float32 clips of one video, held twice (the video's stack and
        the batch's), when they cannot fit in the memory free now."""
        need = 2 * windows * 3 * self.frames * self.size * self.size * 4
        free = available_memory(torch.device("cpu"))
        if need > free:
            raise ConfigError(
                f"{what}: {windows:,} evaluation windows of {self.frames}x{self.size}x{self.size} need "
                f"{gib(need)} but {gib(free)} is available; lower data.max_windows "
                f"(evaluate --max-windows) or data.size, or raise data.window_stride"
            )

    def __getitem__(self, index: int) -> tuple[Tensor, int, int] | None:
        record = self.records[index]
        frames = self.load_frames(record)
        if frames is None:
            return None
        windows = sliding_windows(len(frames), self.frames, self.stride, self.window_stride, self.max_windows)
        if not self.max_windows:
            self.check_window_memory(len(windows), str(record.path))
        clips = torch.stack([eval_transform(frames[w], self.size) for w in windows])
        return clips, record.label, index


@dataclass
class Batch:
    """What a batch source hands the engine: clips (B, 3, T, H, W) in [0, 1] and labels (B,); for
    validation the video each clip belongs to (``videos``), so scores average per video;
    ``bad_videos`` counts the videos dropped from this batch because they could not be decoded."""

    clips: Tensor
    labels: Tensor
    videos: Tensor | None = None
    bad_videos: int = 0


def collate_clips(batch: list) -> Batch:
    """Stack training clips, dropping (and counting) skipped videos."""
    good = [item for item in batch if item is not None]
    if not good:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), bad_videos=len(batch))
    return Batch(
        torch.stack([c for c, _ in good]), torch.tensor([label for _, label in good]), bad_videos=len(batch) - len(good)
    )


def collate_windows(batch: list) -> Batch:
    """Concatenate the windows of several videos, each window tagged with its video's index."""
    good = [item for item in batch if item is not None]
    if not good:
        empty = torch.empty(0, dtype=torch.long)
        return Batch(torch.empty(0), empty, empty, bad_videos=len(batch))
    windows = torch.cat([w for w, _, _ in good])
    labels = torch.cat([torch.full((len(w),), label) for w, label, _ in good])
    videos = torch.cat([torch.full((len(w),), index) for w, _, index in good])
    return Batch(windows, labels, videos, bad_videos=len(batch) - len(good))
