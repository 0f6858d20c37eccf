"""Analysis: tuning recovers the preferences of hand-built filters; kernel figures; curves."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from videoperlin.analysis.tuning import measure_tuning
from videoperlin.models import create_model


def drifting_kernel(sf: float, tf: float, direction_deg: float, size: int = 7, sigma: float = 2.5) -> torch.Tensor:
    """A space-time oriented kernel matched to a grating drifting in ``direction_deg`` (y up)."""
    a = math.radians(direction_deg)
    tau = torch.arange(size, dtype=torch.float64)[:, None, None]
    i = torch.arange(size, dtype=torch.float64)[None, :, None]
    j = torch.arange(size, dtype=torch.float64)[None, None, :]
    c = (size - 1) / 2
    envelope = torch.exp(-((i - c) ** 2 + (j - c) ** 2) / (2 * sigma**2))
    return (torch.cos(2 * math.pi * (sf * (j * math.cos(a) - i * math.sin(a)) - tf * tau)) * envelope).float()


@pytest.fixture(scope="module")
def probe_model():
    model = create_model("r3d10", num_classes=2, widen_factor=0.25)
    with torch.no_grad():
        weight = torch.zeros_like(model.conv1.weight)  # (16, 3, 7, 7, 7)
        weight[0] = drifting_kernel(0.125, 0.125, 0)[None] / 3  # rightward
        weight[1] = drifting_kernel(0.125, 0.0, 0)[None] / 3  # static vertical bars: motion-blind
        weight[2] = drifting_kernel(0.18, 0.25, 90)[None] / 3  # upward, finer and faster
        weight[3] = drifting_kernel(0.125, 0.125, 210)[None] / 3  # down-left
        model.conv1.weight.copy_(weight)
    return model


def test_tuning_recovers_hand_built_preferences(probe_model):
    result = measure_tuning(probe_model, "conv1")
    idx = result.indices()
    assert result.responses.shape == (16, 12, 5, 4)
    assert (idx["pref_direction"][0], idx["pref_sf"][0], idx["pref_tf"][0]) == (0, 0.125, 0.125)
    assert idx["pref_orientation"][0] == 0 and idx["dsi"][0] > 0.6
    assert (idx["pref_direction"][2], idx["pref_sf"][2], idx["pref_tf"][2]) == (90, 0.18, 0.25)
    assert idx["dsi"][2] > 0.6 and idx["pref_orientation"][2] == 90
    assert idx["pref_direction"][3] == 210 and idx["pref_orientation"][3] == 30 and idx["dsi"][3] > 0.6
    assert idx["dsi"][1] < 0.05  # a static filter cannot tell left from right
    assert idx["osi"][1] > 0.5 and idx["pref_orientation"][1] == 0  # but it is orientation selective
