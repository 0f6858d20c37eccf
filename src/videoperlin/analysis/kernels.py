"""The paper-style conv1 panel: one tile per filter, the middle temporal slice, each filter scaled
to its own range, RGB as colour. For (2+1)D models the spatial ``conv1_s`` filters are shown."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from videoperlin.utils.plotting import pyplot, save_figure


def conv1_weight(model: nn.Module) -> torch.Tensor:
    """The first convolution's weights (out, in, t, h, w)."""
    for name in ("conv1", "conv1_s"):
        module = getattr(model, name, None)
        if module is not None and hasattr(module, "weight"):
            return module.weight.detach().float().cpu()
    raise ValueError("model has no conv1 or conv1_s")


def kernel_tiles(weight: torch.Tensor) -> np.ndarray:
    """(N, h, w, 3) tiles in [0, 1]: middle temporal slice of each filter, normalised per filter."""
    middle = weight[:, :, weight.shape[2] // 2]
    if middle.shape[1] != 3:
        middle = middle.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    low = middle.amin(dim=(1, 2, 3), keepdim=True)
    high = middle.amax(dim=(1, 2, 3), keepdim=True)
    return ((middle - low) / (high - low).clamp_min(1e-12)).permute(0, 2, 3, 1).numpy()


def save_kernel_panel(model: nn.Module, path: str | Path, title: str = "") -> Path:
    """Write the conv1 panel PNG; return its path."""
    plt = pyplot()
    tiles = kernel_tiles(conv1_weight(model))
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.6 + 0.4, rows * 0.6 + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, tile in zip(axes.flat, tiles):
        ax.imshow(tile, interpolation="nearest")
    fig.suptitle(title or "conv1 (middle temporal slice)", fontsize=8)
    return save_figure(fig, path)
