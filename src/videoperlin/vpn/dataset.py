"""VPNDataset: Video Perlin Noise clips rendered on the fly, deterministic per (seed, index).

Sample ``index`` has class ``index % len(space)`` (balanced to within one clip per class) and
every random choice about it comes from a generator seeded by ``splitmix64(seed, index)``, drawn
on the CPU in a fixed order (``rng="generator"``, the default), or from a counter-based hash of
(seed, index, draw) computed for a whole batch on the render device (``rng="counter"``, for GPU
throughput: :mod:`videoperlin.vpn.counter`). Nothing depends on global RNG state, on the worker, on the order of
access or on which other samples share a batch, so ``ds[i]`` is the same clip in any process, any
DataLoader worker count and any device (up to float rounding on GPUs).

Intra-class variety (all switchable; every option is a field of :class:`~videoperlin.vpn.spec.VPNSpec`):

* gradients: a fresh random unit gradient on every lattice node (always; this *is* the noise);
* ``random_phase``: a random lattice offset in [0, 1) cell per axis and octave, so the grid never
  lines up with the pixel grid the same way twice;
* ``contrast_jitter`` j: contrast drawn from U(1 - j, 1 + j);
* ``brightness_jitter`` j: mean gray level drawn from 0.5 + U(-j, j).

``label_mode="shuffled"`` is a control for transfer studies: the clips are exactly those of the
frequency-labelled set, but each clip's *target* is a class drawn at random from (seed, index),
so the target carries no information about the clip.

Intensity is ``gray = 0.5 + brightness + contrast * noise / (6 * sigma)`` clamped to [0, 1], with
``sigma`` the analytic standard deviation of the (fractal) noise, so a unit-contrast clip has a
std of about 0.16 and almost never clips. Random draws happen even when an option is off, so
switching one option never changes the others' values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from videoperlin.errors import ConfigError
from videoperlin.noise import (
    AXES,
    Octave,
    drift_nodes,
    fractal_std,
    lattice_nodes,
    octave_cells,
    random_unit_gradients,
    render_octaves,
    validate_cells,
)
from videoperlin.utils.fields import to_dict
from videoperlin.vpn.counter import CounterLayout, draw_batch
from videoperlin.vpn.labels import LabelSpace
from videoperlin.vpn.spec import VPNSpec

_MASK64 = (1 << 64) - 1
_SHUFFLE_SALT = 0x5EED5A17


def splitmix64(seed: int, index: int) -> int:
    """Mix (seed, index) into a well-spread 63-bit generator seed (SplitMix64 finaliser)."""
    z = (seed * 0x9E3779B97F4A7C15 + index + 0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


@dataclass
class SampleParams:
    """Everything random about one clip (from its own CPU generator, or its counter-based draws)."""

    label: int
    cells: list[tuple[int, int, int]]  # per octave, (ft, fy, fx)
    phases: Tensor  # (octaves, 3) float64, ordered (t, y, x)
    gradients: list[Tensor]  # per octave, (3, Lt, Ly, Lx) float32, amplitude folded in
    contrast: float
    brightness: float
    drift: list[tuple[float, float]] = field(default_factory=list)  # per octave, (y, x) displacement in cells


def _as_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        return size, size
    if isinstance(size, Sequence) and len(size) == 2 and all(isinstance(s, int) for s in size):
        return int(size[0]), int(size[1])
    raise ConfigError(f"size {size!r} must be an int or a (height, width) pair of ints")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _make_spec(spec: VPNSpec | None, options: dict[str, Any]) -> VPNSpec:
    """The given spec, or one built from keyword options (never both)."""
    unknown = sorted(set(options) - set(VPNSpec.names()))
    _require(not unknown, f"unknown VPN option(s) {', '.join(unknown)}; options are {', '.join(VPNSpec.names())}")
    _require(spec is None or not options, "give spec=VPNSpec(...) or the options as keywords, not both")
    return spec if spec is not None else VPNSpec(**options)


class VPNDataset(Dataset):
    """Map-style dataset of VPN clips: ``ds[i] -> (clip (3, T, H, W) float32 in [0, 1], label)``.

    ``VPNDataset(space, num_videos, frames, size, seed, spec=VPNSpec(...))``, or the spec's options
    as keyword arguments (``octaves=2, contrast_jitter=0.3``), which are forwarded into a
    :class:`~videoperlin.vpn.spec.VPNSpec`. The three channels are one grayscale clip repeated as a
    zero-copy ``expand`` view. :meth:`batch` renders many clips in one call on any device.
    """

    def __init__(
        self,
        space: LabelSpace,
        num_videos: int = 1000,
        frames: int = 16,
        size: int | Sequence[int] = 112,
        seed: int = 0,
        *,
        spec: VPNSpec | None = None,
        **options: Any,
    ) -> None:
        _require(isinstance(space, LabelSpace), f"space must be a LabelSpace, got {type(space).__name__}")
        _require(isinstance(num_videos, int) and num_videos >= 1, f"num_videos {num_videos!r} must be a positive integer")
        _require(isinstance(frames, int) and frames >= 1, f"frames {frames!r} must be a positive integer")
        _require(isinstance(seed, int) and seed >= 0, f"seed {seed!r} must be a non-negative integer")
        self.spec = _make_spec(spec, options)
        self.space = space
        self.num_videos = num_videos
        self.frames = frames
        self.height, self.width = _as_size(size)
        _require(self.height >= 1 and self.width >= 1, f"size {size!r} must be positive")
        self.seed = seed
        self._check_frequencies_fit()
        self._intensity_scale = 1.0 / (6.0 * fractal_std(self.spec.octaves, self.spec.persistence))
        self._counter_layouts: dict[torch.device, CounterLayout] = {}

    def _check_frequencies_fit(self) -> None:
        fx, fy, ft = self.space.max_frequencies()
        octaves = self.spec.octaves
        for axis, base, samples in (("fx", fx, self.width), ("fy", fy, self.height), ("ft", ft, self.frames)):
            top = octave_cells(base, octaves - 1, self.spec.lacunarity)
            where = f" at octave {octaves}" if octaves > 1 else ""
            try:
                validate_cells(top, samples, axis)
            except ConfigError:
                unit = "frames" if axis == "ft" else "pixels"
                raise ConfigError(
                    f"{axis} {base}{where} means {top} lattice cells on an axis of {samples} {unit}; "
                    f"use frequencies <= {samples}, fewer octaves or a larger clip"
                ) from None

    @property
    def num_classes(self) -> int:
        return len(self.space)

    def __len__(self) -> int:
        return self.num_videos

    def label(self, index: int) -> int:
        """Frequency class of sample ``index`` (round-robin over classes, so the set is balanced)."""
        return index % len(self.space)

    def target(self, index: int) -> int:
        """Training target of sample ``index``: its class, or a random class with ``label_mode="shuffled"``."""
        if self.spec.label_mode == "shuffled":
            return splitmix64(self.seed ^ _SHUFFLE_SALT, index) % len(self.space)
        return self.label(index)

    def _check_index(self, index: int) -> int:
        if isinstance(index, Tensor):
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"VPNDataset index must be an int, got {type(index).__name__}")
        if index < 0:
            index += self.num_videos
        if not 0 <= index < self.num_videos:
            raise IndexError(f"VPNDataset index {index} out of range for {self.num_videos} videos")
        return index

    def sample_params(self, index: int) -> SampleParams:
        """Draw every random quantity of sample ``index`` from its own seeded CPU generator.

        The order of the draws is part of the data format: phases, jitter, gradients per octave,
        then the motion jitter. A new option's draws go after all of these, so existing clips stay
        the same. A drifting axis needs extra lattice nodes (:func:`~videoperlin.noise.drift_nodes`),
        sized from the largest drift the class and the jitter allow.
        """
        index = self._check_index(index)
        if self.spec.rng == "counter":
            return self._counter_params(index)
        spec = self.spec
        label = self.label(index)
        gen = torch.Generator().manual_seed(splitmix64(self.seed, index))
        phases = torch.rand((spec.octaves, 3), generator=gen, dtype=torch.float64)
        jitter = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
        if not spec.random_phase:
            phases.zero_()
        contrast = 1.0 + spec.contrast_jitter * (2.0 * jitter[0] - 1.0)
        brightness = spec.brightness_jitter * (2.0 * jitter[1] - 1.0)
        lattice = self.class_lattice(label)
        cells = [c for c, _ in lattice]
        gradients = []
        for octave, (_, nodes) in enumerate(lattice):
            grads = random_unit_gradients(nodes, gen)
            if octave:
                grads.mul_(spec.persistence**octave)
            gradients.append(grads)
        motion_jitter = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
        vx, vy = self.velocity(label, motion_jitter)
        drift = [(-vy * cy / self.height, vx * cx / self.width) for _, cy, cx in cells]
        return SampleParams(label, cells, phases, gradients, contrast, brightness, drift)

    def class_lattice(self, label: int) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
        """Per octave, the (ft, fy, fx) cell counts of class ``label`` and the (Lt, Ly, Lx) gradient-lattice
        nodes its clips draw, with room for the largest drift the class and the jitter allow."""
        fx, fy, ft = self.space.frequencies(label)
        spec, lattice = self.spec, []
        for octave in range(spec.octaves):
            ct, cy, cx = (octave_cells(f, octave, spec.lacunarity) for f in (ft, fy, fx))
            dy, dx = self._drift_bound(label, cy, cx)
            nodes = (lattice_nodes(ct, spec.tileable), drift_nodes(cy, dy, spec.tileable), drift_nodes(cx, dx, spec.tileable))
            lattice.append(((ct, cy, cx), nodes))
        return lattice

    def velocity(self, label: int, jitter: Sequence[float] = (0.5, 0.5)) -> tuple[float, float]:
        """(v_x, v_y) of class ``label``: its displacement over the clip in pixels, +x right, +y up.

        The label's speed counts lattice cells (of the class's fx, fy) crossed along the direction
        (:mod:`videoperlin.vpn.labels`); ``jitter`` are the two uniform draws that perturb direction and
        speed by ``spec.direction_jitter`` / ``spec.speed_jitter``.
        """
        direction, speed = self.space.motion(label)
        if speed == 0:
            return 0.0, 0.0
        fx, fy, _ = self.space.frequencies(label)
        angle = math.radians(direction + self.spec.direction_jitter * (2.0 * jitter[0] - 1.0))
        speed *= 1.0 + self.spec.speed_jitter * (2.0 * jitter[1] - 1.0)
        ux, uy = (0.0 if abs(u) < 1e-12 else u for u in (math.cos(angle), math.sin(angle)))  # cos(90 deg) is 6e-17
        pixels = speed / math.hypot(ux * fx / self.width, uy * fy / self.height)  # cells crossed -> pixels
        return pixels * ux, pixels * uy

    def _drift_bound(self, label: int, cells_y: int, cells_x: int) -> tuple[float, float]:
        """Largest |drift| in cells (y, x) a clip of ``label`` can have at these cell counts, to size its lattice."""
        fx, fy, _ = self.space.frequencies(label)
        if not (self.spec.direction_jitter or self.spec.speed_jitter):
            vx, vy = self.velocity(label)
            return abs(vy) * cells_y / self.height, abs(vx) * cells_x / self.width
        fastest = self.space.motion(label)[1] * (1.0 + self.spec.speed_jitter)  # |drift| <= speed along each axis
        return fastest * cells_y / fy, fastest * cells_x / fx

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        clips, labels = self.batch([index])
        return clips[0], int(labels[0])

    def batch(self, indices: Iterable[int], device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Render many clips at once: ``(clips (B, 3, T, H, W), labels (B,))`` on ``device``.

        Agrees with ``ds[i]`` to float tolerance; the 3 channels are an ``expand`` view.
        """
        indices = [self._check_index(i) for i in indices]
        if not indices:
            raise ValueError("VPNDataset.batch needs at least one index")
        device = torch.device(device) if device is not None else torch.device("cpu")
        if self.spec.rng == "counter":
            gray = self._render_counter(torch.tensor(indices, dtype=torch.long, device=device))
        else:
            gray = self.render([self.sample_params(i) for i in indices], device)
        labels = torch.tensor([self.target(i) for i in indices], dtype=torch.long, device=device)
        return gray[:, None].expand(-1, 3, -1, -1, -1), labels

    def _counter_layout(self, device: torch.device) -> CounterLayout:
        if device not in self._counter_layouts:
            base = self._counter_layouts.get(torch.device("cpu")) or CounterLayout.of(self)
            self._counter_layouts[device] = base.to(device)
        return self._counter_layouts[device]

    def _render_counter(self, indices: Tensor) -> Tensor:
        """``rng="counter"``: draw and render the whole batch on ``indices``' device (:mod:`~videoperlin.vpn.counter`)."""
        octaves, scale, bias, _ = draw_batch(self, self._counter_layout(indices.device), indices)
        size = (self.frames, self.height, self.width)
        return render_octaves(octaves, size, scale, bias, clamp=(0.0, 1.0))

    def _counter_params(self, index: int) -> SampleParams:
        """One clip's ``rng="counter"`` draws as :class:`SampleParams` (lattices cut to the class's own nodes)."""
        octaves, scale, bias, labels = draw_batch(self, self._counter_layout(torch.device("cpu")), torch.tensor([index]))
        label = int(labels[0])
        cells = [tuple(int(c) for c in o.cells[0]) for o in octaves]
        gradients, drift = [], []
        for o, (ct, cy, cx) in zip(octaves, cells):
            d = o.drift[0].tolist() if o.drift is not None else [0.0, 0.0]
            nodes = (lattice_nodes(ct, self.spec.tileable), drift_nodes(cy, d[0], self.spec.tileable),
                     drift_nodes(cx, d[1], self.spec.tileable))
            gradients.append(o.gradients[0, :, : nodes[0], : nodes[1], : nodes[2]].clone())
            drift.append((d[0], d[1]))
        phases = torch.stack([o.phase[0] for o in octaves])
        contrast = float(scale[0]) / self._intensity_scale
        return SampleParams(label, cells, phases, gradients, contrast, float(bias[0]) - 0.5, drift)

    def render(self, params: list[SampleParams], device: torch.device) -> Tensor:
        """Grayscale clips (B, T, H, W) in [0, 1] for the given sample parameters."""
        octaves = []
        for octave in range(self.spec.octaves):
            grads = [p.gradients[octave] for p in params]
            nodes = [max(g.shape[1 + axis] for g in grads) for axis in range(3)]
            lattice = torch.zeros((len(params), 3, *nodes), dtype=torch.float32)
            for b, g in enumerate(grads):
                lattice[b, :, : g.shape[1], : g.shape[2], : g.shape[3]] = g
            cells = torch.tensor([p.cells[octave] for p in params], dtype=torch.long)
            phase = torch.stack([p.phases[octave] for p in params])
            drift = torch.tensor([p.drift[octave] for p in params], dtype=torch.float64)
            octaves.append(Octave(lattice.to(device), cells.to(device), phase.to(device), self.spec.tileable,
                                  drift.to(device) if drift.any() else None))
        scale = torch.tensor([p.contrast * self._intensity_scale for p in params], dtype=torch.float32)
        bias = torch.tensor([0.5 + p.brightness for p in params], dtype=torch.float32)
        size = (self.frames, self.height, self.width)
        return render_octaves(octaves, size, scale.to(device), bias.to(device), clamp=(0.0, 1.0))

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this dataset exactly (JSON-serialisable; ``dataset.json``'s ``vpn``)."""
        return {"label_space": self.space.to_dict(), "num_videos": self.num_videos, "frames": self.frames,
                "size": [self.height, self.width], "seed": self.seed, **to_dict(self.spec)}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> VPNDataset:
        """Inverse of :meth:`to_dict`; also reads records written before an option existed (its default applies)."""
        record = dict(record)
        try:
            space = LabelSpace.from_dict(record.pop("label_space"))
            geometry = {key: record.pop(key) for key in ("num_videos", "frames", "size", "seed")}
        except KeyError as exc:
            raise ConfigError(f"VPN dataset record lacks {exc.args[0]!r}; it was not written by VPNDataset.to_dict") from None
        size = geometry.pop("size")
        return cls(space, size=tuple(size) if isinstance(size, list) else size, **geometry, **record)


__all__ = ["VPNDataset", "SampleParams", "splitmix64", "AXES"]
