"""Small synthetic action videos encoded with PyAV, in the layouts the loaders read.

Three easy classes: ``down`` (horizontal bars moving down), ``right`` (vertical bars moving
right) and ``flicker`` (a uniform field flickering in time), with random phase, speed and
brightness per video, so a small 3D CNN separates them quickly and chance is 1/3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videoperlin.data.encode import encode_video

CLASSES = ("down", "flicker", "right")


def pattern_video(kind: str, seed: int, frames: int = 24, height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None]
    y = np.arange(height)[None, :, None]
    x = np.arange(width)[None, None, :]
    period, speed, phase = rng.uniform(10, 16), rng.uniform(1.5, 3.0), rng.uniform(0, 2 * np.pi)
    if kind == "down":
        field = np.sin(2 * np.pi * (y - speed * t) / period + phase) + 0 * x
    elif kind == "right":
        field = np.sin(2 * np.pi * (x - speed * t) / period + phase) + 0 * y
    else:
        field = np.sin(2 * np.pi * t / rng.uniform(3, 5) + phase) + 0 * x + 0 * y
    gray = 0.5 + 0.35 * field + rng.normal(0, 0.03, (frames, height, width))
    rgb = np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=3) * rng.uniform(0.7, 1.0, 3)
    return np.rint(rgb * 255).astype(np.uint8)


def write_class_folders(root: Path, per_class: int = 8, frames: int = 24) -> list[Path]:
    """root/<class>/<class>_<i>.mp4; returns the paths."""
    paths = []
    for k, kind in enumerate(CLASSES):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = root / kind / f"{kind}_{i:02d}.mp4"
            encode_video(path, pattern_video(kind, seed=100 * k + i, frames=frames))
            paths.append(path)
    return paths


def write_ucf_splits(root: Path, per_class: int = 8, test_every: int = 4) -> None:
    """UCF-101-style classInd.txt, trainlist01.txt and testlist01.txt over a class-folder tree."""
    (root / "classInd.txt").write_text("".join(f"{k + 1} {c}\n" for k, c in enumerate(CLASSES)))
    train, test = [], []
    for k, kind in enumerate(CLASSES):
        for i in range(per_class):
            name = f"{kind}/{kind}_{i:02d}.mp4"
            (test if i % test_every == 0 else train).append((name, k + 1))
    (root / "trainlist01.txt").write_text("".join(f"{n} {k}\n" for n, k in train))
    (root / "testlist01.txt").write_text("".join(f"{n}\n" for n, _ in test))
