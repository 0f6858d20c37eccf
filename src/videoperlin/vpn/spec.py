"""VPNSpec: every option of how a VPN clip is rendered, each with its default, type, rule and doc.

A VPN dataset is (label space, number of videos, clip geometry, seed, :class:`VPNSpec`): the first
four say *which* clips exist, the spec says how each one looks. Everything that takes rendering
options derives them from this class: :class:`~videoperlin.vpn.dataset.VPNDataset` (keyword
arguments are forwarded into a spec), the pre-training config's ``vpn`` section (it inherits these
fields), the ``generate``/``preview`` flags (generated from the fields) and ``dataset.json``.

Adding a rendering option is one field here, its use in the renderer and, if it is random, one
draw appended at the *end* of :meth:`VPNDataset.sample_params` (earlier draws keep their order, so
a given (seed, index) renders the same clip as before for every existing option value) and, for
``rng="counter"``, its draw numbers appended to the layout in :func:`videoperlin.vpn.counter.draw_batch`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from videoperlin.utils.fields import Checked, at_least, in_range, option, values_of

#: Training target of a clip: its class, or (a control for transfer studies) a random class.
LabelMode = Literal["frequency", "shuffled"]
#: Where a clip's random numbers come from (:mod:`videoperlin.vpn.counter`).
RNG = Literal["generator", "counter"]


@dataclass
class VPNSpec(Checked):
    """How each VPN clip is rendered (see the module docstring and :mod:`videoperlin.vpn.dataset`)."""

    octaves: int = option(1, "fractal octaves (1: single-frequency noise, the paper's VPN)", at_least(1))
    persistence: float = option(0.5, "amplitude ratio between successive octaves", in_range(0, 1, low_open=True))
    lacunarity: float = option(2.0, "cell-count ratio between successive octaves", at_least(1.0))
    tileable: bool = option(False, "wrap the lattice so the noise loops seamlessly on every axis")
    random_phase: bool = option(True, "offset the lattice by a random fraction of a cell per axis and octave")
    contrast_jitter: float = option(0.25, "contrast drawn from U(1-j, 1+j)", in_range(0, 1, high_open=True))
    brightness_jitter: float = option(0.1, "mean gray level drawn from 0.5 + U(-j, j)", in_range(0, 0.5))
    direction_jitter: float = option(0.0, "motion direction drawn from the class's + U(-j, j) degrees "
                                          "(classes with direction/speed axes)", in_range(0, 180))
    speed_jitter: float = option(0.0, "motion speed drawn from the class's x U(1-j, 1+j)", in_range(0, 1, high_open=True))
    label_mode: LabelMode = option("frequency", "training target: the clip's class, or a random class "
                                                "per clip (shuffled-label control)")
    rng: RNG = option("generator", "random numbers of a clip: 'generator' = its own seeded CPU generator (the "
                                   "original format); 'counter' = a hash of (seed, index, draw) computed for the "
                                   "whole batch on the render device, the same on CPU and GPU (fast on GPUs; "
                                   "other clips than 'generator')")

    @classmethod
    def names(cls) -> list[str]:
        """The option names, in field order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_values(cls, source: Any) -> VPNSpec:
        """The spec read off any object carrying these fields (a config section, an argparse namespace)."""
        return cls(**values_of(cls, source))
