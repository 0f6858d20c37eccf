"""FLOP counts by shape propagation on the meta device (no memory, no compute)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from videoperlin.models.registry import create_model


def count_flops(name: str, input_size: tuple[int, int, int], num_classes: int = 400, **options) -> int:
    """Forward FLOPs (2 x multiply-accumulates) of one (3, T, H, W) clip through model ``name``."""
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, **options)
        clip = torch.empty(1, options.get("in_channels", 3), *input_size)
    with FlopCounterMode(display=False) as counter:
        model(clip)
    return int(counter.get_total_flops())
