"""A toy formula family, written as a plug-in would be: this one file, registered on import (conftest
imports it before the config schema is built). Whole-frame flicker: a uniform gray level oscillating
``cycles`` times per clip with a random phase; the class is the number of cycles."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from videoperlin.config_fields import in_range, option
from videoperlin.vpn.draws import DrawLayout
from videoperlin.vpn.family import Family, LabelSource, SourceOptions, register


@dataclass
class FlickerOptions(SourceOptions):
    flicker_depth: float = option(0.4, "peak-to-peak gray change of the flicker", in_range(0, 1, low_open=True))


@dataclass
class FlickerLabels(LabelSource):
    cycles: list[int] | None = option(None, "flicker cycles per clip, e.g. 1,2,4")


@register
class Flicker(Family):
    name = "toy"
    Options = FlickerOptions
    Labels = FlickerLabels
    presets: ClassVar[dict[str, dict[str, list]]] = {"few": {"cycles": [1, 3]}, "many": {"cycles": [1, 2, 3, 4]}}
    default_preset = "few"
    description = "uniform flicker, class = cycles per clip (a test family)"

    def layout(self) -> DrawLayout:
        return DrawLayout(order=("phase",), slots={"phase": 0})

    def render(self, draws, labels):
        cycles = torch.tensor(
            [self.space.params(k)["cycles"] for k in labels.tolist()], dtype=torch.float64, device=labels.device
        )
        phase = draws.uniform("phase", 1)
        t = torch.arange(self.frames, dtype=torch.float64, device=labels.device) / self.frames
        level = 0.5 + 0.5 * self.options.flicker_depth * torch.sin(2 * math.pi * (cycles[:, None] * t + phase))
        return level.float()[:, None, :, None, None].expand(-1, 1, -1, self.height, self.width).contiguous()
