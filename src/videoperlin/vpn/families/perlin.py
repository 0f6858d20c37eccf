"""Family ``perlin``: the paper's Video Perlin Noise, and our coherent drift (motion classes).

A class is a frequency triple (fx, fy, ft) in lattice cells per clip extent, optionally with a
motion (direction, speed) (:mod:`videoperlin.vpn.labels`). A clip is (fractal) 3D Perlin noise on
a lattice of those cell counts (:mod:`videoperlin.noise`), drifting ``(v_x, v_y)`` pixels over the
clip when the class moves, shown as

    gray = clamp(0.5 + brightness + contrast * noise / (6 sigma), 0, 1)

with ``sigma`` the analytic standard deviation of the (fractal) noise, so a unit-contrast clip
has a std of about 0.16 and almost never clips.

Intra-class variety (every option a field of :class:`PerlinOptions`): a fresh random unit gradient on
every lattice node (this *is* the noise); ``random_phase`` (a random lattice offset in [0, 1) cell
per axis and octave); ``contrast_jitter`` j (contrast from U(1 - j, 1 + j)); ``brightness_jitter``
j (mean gray 0.5 + U(-j, j)); ``direction_jitter`` / ``speed_jitter`` (moving classes).

What a clip draws, in the generator format's order (:meth:`PerlinFamily.layout`, :mod:`videoperlin.vpn.draws`):
phases (3 per octave), the contrast/brightness jitter (2), the gradients of each octave, the motion
jitter (2), the colour (hue and saturation, 2; ``colour > 0`` tints the gray clip, :func:`~videoperlin.vpn.scene.tint`). Draws happen even when an option is off, so switching one option never changes the
others' values. :meth:`PerlinFamily.clip_parameters` assembles a batch's parameters from those
draws once, for both back-ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from videoperlin.config_fields import at_least, in_range, option
from videoperlin.errors import ConfigError
from videoperlin.noise import (
    Octave,
    drift_nodes,
    fractal_std,
    lattice_nodes,
    octave_cells,
    render_octaves,
    validate_cells,
)
from videoperlin.vpn.draws import BACKENDS, DrawLayout
from videoperlin.vpn.family import ColourOption, Family, LabelSource, SourceOptions, register
from videoperlin.vpn.labels import DEFAULT_PRESET, PRESETS, LabelSpace, frequency_space_from_dict
from videoperlin.vpn.scene import tint

#: Counter back-end draw numbers of the uniform draws (gradient blocks follow from 2^24).
COUNTER_SLOTS = {"jitter": 0, "motion_jitter": 2, "colour": 4, "phases": 16}


@dataclass
class PerlinOptions(ColourOption, SourceOptions):
    """How each Perlin clip is rendered (module docstring). Adding an option: a field here, its use in
    :meth:`PerlinFamily.clip_parameters`, and, if it is random, a draw appended *last* to the
    layout (:meth:`PerlinFamily.layout`), so every existing clip stays the same."""

    octaves: int = option(1, "fractal octaves (1: single-frequency noise, the paper's VPN)", at_least(1))
    persistence: float = option(0.5, "amplitude ratio between successive octaves", in_range(0, 1, low_open=True))
    lacunarity: float = option(2.0, "cell-count ratio between successive octaves", at_least(1.0))
    tileable: bool = option(False, "wrap the lattice so the noise loops seamlessly on every axis")
    random_phase: bool = option(True, "offset the lattice by a random fraction of a cell per axis and octave")
    contrast_jitter: float = option(0.25, "contrast drawn from U(1-j, 1+j)", in_range(0, 1, high_open=True))
    brightness_jitter: float = option(0.1, "mean gray level drawn from 0.5 + U(-j, j)", in_range(0, 0.5))
    direction_jitter: float = option(
        0.0,
        "motion direction drawn from the class's + U(-j, j) degrees (classes with direction/speed axes)",
        in_range(0, 180),
    )
    speed_jitter: float = option(
        0.0, "motion speed drawn from the class's x U(1-j, 1+j)", in_range(0, 1, high_open=True)
    )


@dataclass
class PerlinLabels(LabelSource):
    """The perlin label axes (:mod:`videoperlin.vpn.labels`): frequencies, and optionally motion."""

    fx: list[int] | None = option(None, "x frequencies in cells per frame width, e.g. 1,2,4,8")
    fy: list[int] | None = option(None, "y frequencies in cells per frame height")
    ft: list[int] | None = option(None, "t frequencies in cells per clip length")
    direction: list[int] | None = option(None, "motion directions in degrees (0 right, 90 up), with speed and fx/fy/ft")
    speed: list[float] | None = option(None, "motion speeds in lattice cells per clip (0 static), with direction")


@dataclass
class SampleParams:
    """Everything random about one clip (for tests and analysis; rendering works on whole batches)."""

    label: int
    cells: list[tuple[int, ...]]  # per octave, (ft, fy, fx)
    phases: Tensor  # (octaves, 3) float64, ordered (t, y, x)
    gradients: list[Tensor]  # per octave, (3, Lt, Ly, Lx) float32 cut to the class's lattice, amplitude folded in
    contrast: float
    brightness: float
    drift: list[tuple[float, float]] = field(default_factory=list)  # per octave, (y, x) displacement in cells


@register
class PerlinFamily(Family):
    """Video Perlin Noise (module docstring)."""

    name = "perlin"
    render_bytes_per_pixel = 5  # at the defaults, measured by benchmarks/render_memory.py
    Options = PerlinOptions
    Labels = PerlinLabels
    presets = PRESETS
    default_preset = DEFAULT_PRESET
    description = "3D Perlin noise whose class is its (fx, fy, ft) frequency, optionally drifting (the paper's VPN)"

    def __init__(self, space: LabelSpace, options: PerlinOptions, frames: int, height: int, width: int) -> None:
        super().__init__(space, options, frames, height, width)
        self.intensity_scale = 1.0 / (6.0 * fractal_std(options.octaves, options.persistence))
        self._tables: dict[tuple[str, torch.device], Tensor] = {}
        self.lattices = [self.class_lattice(label) for label in range(len(space))]

    @classmethod
    def space_from_dict(cls, axes: dict) -> LabelSpace:
        return frequency_space_from_dict(axes)

    def frequencies(self, label: int) -> tuple[int, int, int]:
        """The (fx, fy, ft) of class ``label``."""
        p = self.space.params(label)
        return p["fx"], p["fy"], p["ft"]

    def motion(self, label: int) -> tuple[int, float]:
        """The (direction in degrees, speed in cells per clip) of class ``label``; (0, 0.0) in a still space."""
        p = self.space.params(label)
        return p.get("direction", 0), p.get("speed", 0.0)

    def check(self) -> None:
        fx, fy, ft = (max(self.space.axes[a]) for a in ("fx", "fy", "ft"))
        octaves = self.options.octaves
        for axis, base, samples in (("fx", fx, self.width), ("fy", fy, self.height), ("ft", ft, self.frames)):
            top = octave_cells(base, octaves - 1, self.options.lacunarity)
            where = f" at octave {octaves}" if octaves > 1 else ""
            try:
                validate_cells(top, samples, axis)
            except ConfigError:
                unit = "frames" if axis == "ft" else "pixels"
                raise ConfigError(
                    f"{axis} {base}{where} means {top} lattice cells on an axis of {samples} {unit}; "
                    f"use frequencies <= {samples}, fewer octaves or a larger clip"
                ) from None

    # ---- per class -------------------------------------------------------------------------------

    def class_lattice(self, label: int) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
        """Per octave, the (ft, fy, fx) cell counts of class ``label`` and the (Lt, Ly, Lx) gradient-lattice
        nodes its clips draw, with room for the largest drift the class and the jitter allow."""
        fx, fy, ft = self.frequencies(label)
        spec, lattice = self.options, []
        for octave in range(spec.octaves):
            ct, cy, cx = (octave_cells(f, octave, spec.lacunarity) for f in (ft, fy, fx))
            dy, dx = self._drift_bound(label, cy, cx)
            nodes = (
                lattice_nodes(ct, spec.tileable),
                drift_nodes(cy, dy, spec.tileable),
                drift_nodes(cx, dx, spec.tileable),
            )
            lattice.append(((ct, cy, cx), nodes))
        return lattice

    def velocity(self, label: int, jitter: tuple[float, float] = (0.5, 0.5)) -> tuple[float, float]:
        """(v_x, v_y) of class ``label``: its displacement over the clip in pixels, +x right, +y up
        (:meth:`velocities` for one clip; ``jitter`` are its two motion draws)."""
        vx, vy = self.velocities(torch.tensor([label]), torch.tensor([jitter], dtype=torch.float64))
        return float(vx[0]), float(vy[0])

    def _drift_bound(self, label: int, cells_y: int, cells_x: int) -> tuple[float, float]:
        """Largest |drift| in cells (y, x) a clip of ``label`` can have at these cell counts, to size its lattice."""
        fx, fy, _ = self.frequencies(label)
        if not (self.options.direction_jitter or self.options.speed_jitter):
            vx, vy = self.velocity(label)
            return abs(vy) * cells_y / self.height, abs(vx) * cells_x / self.width
        fastest = self.motion(label)[1] * (1.0 + self.options.speed_jitter)  # |drift| <= speed along each axis
        return fastest * cells_y / fy, fastest * cells_x / fx

    def table(self, name: str, device: torch.device) -> Tensor:
        """A per-class table on ``device``: ``cells`` (classes, octaves, 3) long, ``fxy`` (classes, 2) float64,
        ``direction`` (classes,) degrees, ``speed`` (classes,) cells per clip."""
        if (name, device) not in self._tables:
            classes = range(len(self.space))
            values = {
                "cells": lambda: [[c for c, _ in self.lattices[k]] for k in classes],
                "fxy": lambda: [self.frequencies(k)[:2] for k in classes],
                "direction": lambda: [self.motion(k)[0] for k in classes],
                "speed": lambda: [float(self.motion(k)[1]) for k in classes],
            }[name]()
            dtype = torch.long if name == "cells" else torch.float64
            self._tables[name, device] = torch.tensor(values, dtype=dtype, device=device)
        return self._tables[name, device]

    # ---- a batch ---------------------------------------------------------------------------------

    def layout(self) -> DrawLayout:
        """Phases, jitter, the gradients per octave, the motion jitter (in that order for the
        generator); the counter's gradient blocks hold the largest lattice any class needs."""
        octaves = range(self.options.octaves)
        largest = {
            f"gradients{o}": tuple(max(lattice[o][1][axis] for lattice in self.lattices) for axis in range(3))
            for o in octaves
        }
        return DrawLayout(("phases", "jitter", *largest, "motion_jitter", "colour"), COUNTER_SLOTS, largest)

    def velocities(self, labels: Tensor, jitter: Tensor) -> tuple[Tensor, Tensor]:
        """(v_x, v_y) in pixels over the clip, float64 (B,). The label's speed counts lattice cells
        (of the class's fx, fy) crossed along the direction; ``jitter`` (B, 2) perturbs direction and
        speed by ``direction_jitter`` / ``speed_jitter``."""
        o, device = self.options, labels.device
        fx, fy = self.table("fxy", device)[labels].unbind(1)
        angle = torch.deg2rad(self.table("direction", device)[labels] + o.direction_jitter * (2.0 * jitter[:, 0] - 1.0))
        speed = self.table("speed", device)[labels] * (1.0 + o.speed_jitter * (2.0 * jitter[:, 1] - 1.0))
        ux, uy = torch.cos(angle), torch.sin(angle)
        ux, uy = (torch.where(u.abs() < 1e-12, torch.zeros_like(u), u) for u in (ux, uy))  # cos(90 deg) is 6e-17
        pixels = speed / torch.hypot(ux * fx / self.width, uy * fy / self.height)  # cells crossed -> pixels
        zero, moving = torch.zeros_like(speed), speed != 0
        return torch.where(moving, pixels * ux, zero), torch.where(moving, pixels * uy, zero)

    def clip_parameters(self, draws, labels: Tensor) -> tuple[list[Octave], Tensor, Tensor]:
        """Everything random about a batch, from its draws: the octaves (cells, phases, gradients with
        the octave's amplitude, drift in cells), the contrast and the brightness (float64 (B,))."""
        o, batch = self.options, len(labels)
        phases = draws.uniform("phases", 3 * o.octaves).view(batch, o.octaves, 3)
        if not o.random_phase:
            phases = torch.zeros_like(phases)
        jitter = draws.uniform("jitter", 2)
        contrast = 1.0 + o.contrast_jitter * (2.0 * jitter[:, 0] - 1.0)
        brightness = o.brightness_jitter * (2.0 * jitter[:, 1] - 1.0)
        classes = labels.tolist() if isinstance(draws, BACKENDS["generator"]) else []
        gradients = []
        for octave in range(o.octaves):
            nodes = [self.lattices[label][octave][1] for label in classes]
            gradients.append(draws.unit_vectors(f"gradients{octave}", nodes))
            if octave:
                gradients[-1].mul_(o.persistence**octave)
        vx, vy = self.velocities(labels, draws.uniform("motion_jitter", 2))
        cells = self.table("cells", labels.device)[labels]
        octaves = []
        for octave, grads in enumerate(gradients):
            c = cells[:, octave]
            drift = torch.stack([-vy * c[:, 1] / self.height, vx * c[:, 2] / self.width], dim=1)
            octaves.append(
                Octave(grads, c, phases[:, octave].contiguous(), o.tileable, drift if bool(drift.any()) else None)
            )
        return octaves, contrast, brightness

    def render(self, draws, labels: Tensor) -> Tensor:
        octaves, contrast, brightness = self.clip_parameters(draws, labels)
        gray = render_octaves(
            octaves,
            (self.frames, self.height, self.width),
            contrast * self.intensity_scale,
            0.5 + brightness,
            clamp=(0.0, 1.0),
        )[:, None]
        hue, saturation = draws.uniform("colour", 2).unbind(1)
        return tint(gray, hue, saturation * self.options.colour) if self.options.colour else gray

    def sample_params(self, draws, label: int) -> SampleParams:
        """One clip's parameters (``draws`` of that clip alone), lattices cut to its class's nodes."""
        octaves, contrast, brightness = self.clip_parameters(draws, torch.tensor([label], device=draws.device))
        cells = [tuple(int(c) for c in o.cells[0]) for o in octaves]
        gradients, drift = [], []
        for o, (_, nodes) in zip(octaves, self.lattices[label]):
            gradients.append(o.gradients[0, :, : nodes[0], : nodes[1], : nodes[2]].cpu().clone())
            drift.append(tuple(o.drift[0].tolist()) if o.drift is not None else (0.0, 0.0))
        phases = torch.stack([o.phase[0] for o in octaves]).cpu()
        return SampleParams(label, cells, phases, gradients, float(contrast[0]), float(brightness[0]), drift)


__all__ = ["PerlinFamily", "PerlinLabels", "PerlinOptions", "SampleParams"]
