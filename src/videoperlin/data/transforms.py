"""Spatial transforms. Crops are taken on uint8 (T, H, W, 3) frames (cheap), then converted to a
float (C, T, H, W) tensor in [0, 1] and resized; normalisation happens on the batch in the engine.

Training: random resized crop (area scale 0.25-1, aspect 3/4-4/3, as 3D-ResNets-PyTorch; the
same crop for every frame of a clip) to ``size`` x ``size`` and a horizontal flip with p = 0.5.
Evaluation: short side to ``size``, centre crop ``size`` x ``size``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from videoperlin.data.config import KINETICS_MEAN, KINETICS_STD


def to_clip_tensor(frames: np.ndarray, size: tuple[int, int], flip: bool = False) -> Tensor:
    """uint8 (T, h, w, 3) -> float (3, T, H, W) in [0, 1], resized to ``size`` (antialiased bilinear),
    mirrored left-right if ``flip``.

    The resize runs on the uint8 frames (a crop is read in place, not copied), then the small result
    is flipped and becomes float: torch's uint8 antialiased kernel (channels-last, as the frames are
    laid out) took 1.3 ms for 16 frames of 100x130 -> 112x112 on one core where the float resize took
    12.3 ms, and its output is within 1.1 gray levels of the float one (a quarter on average: the
    rounding to uint8). Flipping after the resize gives the same bits as before it (the kernel is
    symmetric), and the whole transform went from 14.8 to 2.3 ms a clip. Before 0.3 clips were
    resized in float: fine-tuning results of earlier versions reproduce to that rounding, not bit for bit.
    """
    if any(stride < 0 for stride in frames.strides):
        frames = np.ascontiguousarray(frames)
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2)  # uint8 (T, 3, h, w), channels-last
    if tuple(clip.shape[2:]) != tuple(size):
        clip = F.interpolate(clip, size=size, mode="bilinear", antialias=True, align_corners=False)
    if flip:
        clip = clip.flip(3)
    # one pass to float and to (3, T, H, W) order (.float().contiguous() made two: 4.9 -> 2.5 ms a clip)
    return clip.permute(1, 0, 2, 3).to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)


def random_resized_crop_box(
    height: int, width: int, rng: np.random.Generator, scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop with the given area scale and aspect ratio range."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    side = min(height, width)  # fallback: central square
    return (height - side) // 2, (width - side) // 2, side, side


def train_transform(
    frames: np.ndarray, size: int, rng: np.random.Generator, scale=(0.25, 1.0), flip: bool = True
) -> Tensor:
    """Random resized crop + flip of uint8 (T, H, W, 3) frames -> (3, T, size, size)."""
    top, left, h, w = random_resized_crop_box(frames.shape[1], frames.shape[2], rng, scale)
    crop = frames[:, top : top + h, left : left + w]
    return to_clip_tensor(crop, (size, size), flip=flip and rng.random() < 0.5)


def eval_transform(frames: np.ndarray, size: int) -> Tensor:
    """Short side to ``size`` and centre crop -> (3, T, size, size)."""
    height, width = frames.shape[1:3]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return to_clip_tensor(frames[:, top : top + side, left : left + side], (size, size))


def normalize(clips: Tensor, mean=KINETICS_MEAN, std=KINETICS_STD) -> Tensor:
    """(B, 3, T, H, W) -> (x - mean) / std per channel."""
    mean_t = torch.tensor(mean, dtype=clips.dtype, device=clips.device).view(1, -1, 1, 1, 1)
    std_t = torch.tensor(std, dtype=clips.dtype, device=clips.device).view(1, -1, 1, 1, 1)
    return (clips - mean_t) / std_t
