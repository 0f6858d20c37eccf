"""The paper-style conv1 panel: one tile per filter, the middle temporal slice, each filter scaled
to its own range, RGB as colour. The first layer is the architecture's ``stem`` in the model registry:
``conv1``, the spatial ``conv1_s`` of (2+1)D models, a transformer's patch embedding."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from videoperlin.models.registry import stem_of
from videoperlin.utils.plotting import pyplot, save_figure


def conv1_weight(model: nn.Module) -> torch.Tensor:
    """The first convolution's (or patch embedding's) weights (out, in, t, h, w)."""
    return stem_of(model).weight.detach().float().cpu()


def kernel_tiles(weight: torch.Tensor) -> np.ndarray:
    """(N, h, w, 3) tiles in [0, 1]: middle temporal slice of each filter, normalised per filter."""
    middle = weight[:, :, weight.shape[2] // 2]
    if middle.shape[1] != 3:
        middle = middle.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    return _normalise(middle.permute(0, 2, 3, 1).numpy(), axes=(1, 2, 3))


def save_kernel_panel(model: nn.Module, path: str | Path, title: str = "") -> Path:
    """Write the conv1 panel PNG; return its path."""
    plt = pyplot()
    tiles = kernel_tiles(conv1_weight(model))
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    fig, ax = plt.subplots(figsize=(cols * 0.6 + 0.4, rows * 0.6 + 0.6))
    ax.imshow(mosaic(tiles, cols), interpolation="nearest")  # one image: a subplot per filter costs seconds
    ax.axis("off")
    fig.suptitle(title or "conv1 (middle temporal slice)", fontsize=8)
    return save_figure(fig, path)


def _normalise(array: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    low = array.min(axis=axes, keepdims=True)
    high = array.max(axis=axes, keepdims=True)
    return (array - low) / np.maximum(high - low, 1e-12)


def mosaic(tiles: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    """Arrange (N, h, w, 3) tiles in a grid with white padding -> (H, W, 3)."""
    n, h, w, _ = tiles.shape
    rows = math.ceil(n / cols)
    canvas = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), dtype=np.float32)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = tile
    return canvas


def _rgb(weight: torch.Tensor) -> np.ndarray:
    """(out, t, h, w, 3) float array; single-channel filters are shown in gray."""
    w = weight if weight.shape[1] == 3 else weight.mean(1, keepdim=True).expand(-1, 3, -1, -1, -1)
    return w.permute(0, 2, 3, 4, 1).numpy()


def panel_image(weight: torch.Tensor) -> np.ndarray:
    """The paper-style panel: middle temporal slice of every filter, each scaled to its own range."""
    return mosaic(kernel_tiles(weight), math.ceil(math.sqrt(len(weight))))


def spacetime_image(weight: torch.Tensor) -> np.ndarray:
    """Every temporal slice: one row per filter, time left to right, one scale per filter."""
    filters = _normalise(_rgb(weight), axes=(1, 2, 3, 4))  # (out, t, h, w, 3)
    return mosaic(filters.reshape(-1, *filters.shape[2:]), cols=filters.shape[1])


def motion_slices_image(weight: torch.Tensor) -> np.ndarray:
    """x-t and y-t slices through each filter's centre (luminance); tilted stripes reveal motion direction.

    One tile per filter: the x-t slice (time down, x across) beside the y-t slice (time down, y across).
    """
    lum = weight.mean(1).numpy()  # (out, t, h, w)
    cy, cx = lum.shape[2] // 2, lum.shape[3] // 2
    xt, yt = lum[:, :, cy, :], lum[:, :, :, cx]  # (out, t, w), (out, t, h)
    gap = np.full((len(lum), lum.shape[1], 1), np.nan)
    pair = np.concatenate([xt, gap, yt], axis=2)
    pair = np.nan_to_num(_normalise(np.nan_to_num(pair, nan=np.nanmean(pair)), axes=(1, 2)), nan=1.0)
    tiles = np.repeat(pair[..., None], 3, axis=3)
    return mosaic(tiles, math.ceil(math.sqrt(len(lum))))


def save_kernel_figures(models: dict[str, nn.Module], out_dir: str | Path) -> list[Path]:
    """panel.png, spacetime.png and motion_slices.png with one column per named model."""
    plt = pyplot()
    weights = {name: conv1_weight(model) for name, model in models.items()}
    views = {
        "panel": (panel_image, "conv1, middle temporal slice (each filter scaled to its own range)"),
        "spacetime": (spacetime_image, "conv1, every temporal slice (row = filter, time →)"),
        "motion_slices": (motion_slices_image, "conv1 x–t | y–t slices through the centre (time ↓)"),
    }
    paths = []
    for view, (render, title) in views.items():
        images = {name: render(w) for name, w in weights.items()}
        height = max(i.shape[0] for i in images.values()) / 60
        fig, axes = plt.subplots(1, len(images), figsize=(4.2 * len(images), max(3.0, min(height, 24))), squeeze=False)
        for ax, (name, image) in zip(axes[0], images.items()):
            ax.imshow(image, interpolation="nearest", aspect="equal")
            ax.set_title(name, fontsize=9)
            ax.axis("off")
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        paths.append(save_figure(fig, Path(out_dir) / f"{view}.png", dpi=120))
    return paths
