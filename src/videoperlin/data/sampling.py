"""Temporal sampling: which frame indices make a clip.

A clip of ``frames`` frames at temporal ``stride`` spans ``frames * stride`` source frames. Videos
shorter than that are loop-padded (indices wrap around), as in 3D-ResNets-PyTorch.
"""

from __future__ import annotations

import numpy as np


def clip_indices(start: int, num_frames: int, frames: int, stride: int) -> np.ndarray:
    """Indices of a clip starting at ``start``, wrapping around short videos."""
    return (start + np.arange(frames) * stride) % num_frames


def random_clip(num_frames: int, frames: int, stride: int, rng: np.random.Generator) -> np.ndarray:
    """A random temporal crop (training)."""
    span = frames * stride
    start = int(rng.integers(0, num_frames - span + 1)) if num_frames > span else 0
    return clip_indices(start, num_frames, frames, stride)


def sliding_windows(
    num_frames: int, frames: int, stride: int, window_stride: int | None = None, max_windows: int | None = None
) -> list[np.ndarray]:
    """Consecutive windows (evaluation): starts every ``window_stride`` frames (default: one clip span).

    A video shorter than one clip gives one loop-padded window. ``max_windows`` keeps that many,
    evenly spaced over the video.
    """
    span = frames * stride
    step = window_stride or span
    starts = list(range(0, max(num_frames - span, 0) + 1, step))
    if max_windows and len(starts) > max_windows:
        keep = np.linspace(0, len(starts) - 1, max_windows).round().astype(int)
        starts = [starts[i] for i in keep]
    return [clip_indices(s, num_frames, frames, stride) for s in starts]
