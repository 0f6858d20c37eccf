"""Counter-based random draws: every random number of a batch of clips in a few tensor operations.

With ``VPNSpec.rng = "generator"`` (the original format) each clip's random numbers come from its
own seeded ``torch.Generator`` on the CPU, one clip at a time: 100-300 µs of Python per clip, which
caps a GPU at a few thousand clips/s however fast its kernel is. With ``rng = "counter"`` draw ``d``
of clip ``i`` is a pure function of ``(seed, i, d)``:

    u(seed, i, d) = h(h(h(key) ^ d) + GOLDEN) / 2^32,    key = h(seed_lo ^ h(i_hi ^ h(i_lo + seed_hi)))

with ``h`` a 32-bit integer finaliser (xor-shift-multiply, "lowbias32"). Integer arithmetic is exact,
so the numbers are identical on the CPU and any GPU, for any batch composition and order, and they
are computed on the device that renders, for the whole batch at once. (32-bit draws: phases and
jitters resolve 2^-32 of their range, far below a pixel.) Why hand-written: torch's own device
generators (Philox on CUDA, Mersenne Twister on the CPU) give different streams per device and one
stream per call, not a value per (clip, draw); we need the latter.

The draws of a clip are numbered in a fixed layout that depends only on the dataset, never on the
batch: 0-1 contrast and brightness jitter, 2-3 motion jitter, 4-15 free for future per-clip options
(a new option takes the next free numbers, so existing clips stay the same), from 16 the phases (3
per octave), and from 2^24 per octave a block of two draws per node of the largest lattice any class
needs. A gradient is uniform on the unit sphere: ``z = 2u - 1``, azimuth ``2 pi u'`` (Archimedes:
z is uniform for a uniform point on S^2). Clips differ from ``rng = "generator"`` clips of the same
(seed, index) but follow the same distribution (tests/test_counter.py checks both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from videoperlin.noise import Octave

_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9
#: Draw numbers of the layout (module docstring).
JITTER, MOTION_JITTER, PHASES, GRADIENTS = 0, 2, 16, 2**24


def hash32(x: Tensor) -> Tensor:
    """lowbias32 finaliser on int64 tensors holding uint32 values (products wrap mod 2^64; the low
    32 bits, which are all we keep, are exact on every device)."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def clip_keys(seed: int, indices: Tensor) -> Tensor:
    """One 32-bit key per clip from (seed, index); indices are int64 (B,)."""
    low, high = indices & _MASK32, (indices >> 32) & _MASK32
    return hash32((seed & _MASK32) ^ hash32(high ^ hash32(low + (seed >> 32))))


def uniform(keys: Tensor, draws: Tensor) -> Tensor:
    """Float64 uniforms in [0, 1): keys (B, 1, ...) broadcast against draw numbers ``draws``."""
    return hash32(hash32(hash32(keys) ^ draws) + _GOLDEN).double() / 2.0**32


@dataclass
class CounterLayout:
    """Per-class tables and the fixed draw layout of one dataset (built once; moved to the device)."""

    cells: Tensor  # (classes, octaves, 3) long: (ft, fy, fx) cells per octave
    direction: Tensor  # (classes,) float64 degrees
    speed: Tensor  # (classes,) float64 lattice cells crossed along the direction
    nodes: list[tuple[int, int, int]]  # per octave, the largest (Lt, Ly, Lx) any class needs
    gradient_base: list[int]  # per octave, the draw number of its first gradient draw

    @classmethod
    def of(cls, dataset) -> CounterLayout:
        space = dataset.space
        lattices = [dataset.class_lattice(label) for label in range(len(space))]
        cells = [[c for c, _ in lattice] for lattice in lattices]
        nodes = [tuple(max(lattice[octave][1][axis] for lattice in lattices) for axis in range(3))
                 for octave in range(dataset.spec.octaves)]  # the largest lattice any class needs
        motion = [space.motion(label) for label in range(len(space))]
        base, bases = GRADIENTS, []
        for lt, ly, lx in nodes:
            bases.append(base)
            base += 2 * lt * ly * lx
        return cls(torch.tensor(cells, dtype=torch.long), torch.tensor([m[0] for m in motion], dtype=torch.float64),
                   torch.tensor([float(m[1]) for m in motion], dtype=torch.float64), nodes, bases)

    def to(self, device: torch.device) -> CounterLayout:
        return CounterLayout(self.cells.to(device), self.direction.to(device), self.speed.to(device),
                             self.nodes, self.gradient_base)


def unit_gradients(keys: Tensor, base: int, nodes: tuple[int, int, int]) -> Tensor:
    """(B, 3, Lt, Ly, Lx) float32 unit vectors, components (t, y, x), uniform on the sphere."""
    count = math.prod(nodes)
    draws = base + 2 * torch.arange(count, device=keys.device)
    z = 2.0 * uniform(keys[:, None], draws) - 1.0
    azimuth = 2.0 * math.pi * uniform(keys[:, None], draws + 1)
    ring = (1.0 - z * z).clamp_min(0.0).sqrt()
    vectors = torch.stack([z, ring * torch.cos(azimuth), ring * torch.sin(azimuth)], dim=1)
    return vectors.float().view(len(keys), 3, *nodes)


def velocities(dataset, layout: CounterLayout, labels: Tensor, jitter: Tensor) -> tuple[Tensor, Tensor]:
    """(v_x, v_y) in pixels over the clip, float64 (B,): :meth:`VPNDataset.velocity` for a batch."""
    spec = dataset.spec
    fx, fy = layout.cells[labels, 0, 2].double(), layout.cells[labels, 0, 1].double()
    angle = torch.deg2rad(layout.direction[labels] + spec.direction_jitter * (2.0 * jitter[:, 0] - 1.0))
    speed = layout.speed[labels] * (1.0 + spec.speed_jitter * (2.0 * jitter[:, 1] - 1.0))
    ux, uy = torch.cos(angle), torch.sin(angle)
    ux, uy = (torch.where(u.abs() < 1e-12, torch.zeros_like(u), u) for u in (ux, uy))
    pixels = speed / torch.hypot(ux * fx / dataset.width, uy * fy / dataset.height)
    moving = speed != 0
    zero = torch.zeros_like(speed)
    return torch.where(moving, pixels * ux, zero), torch.where(moving, pixels * uy, zero)


def draw_batch(dataset, layout: CounterLayout, indices: Tensor) -> tuple[list[Octave], Tensor, Tensor, Tensor]:
    """Everything random about clips ``indices`` (int64 (B,) on the render device): the octaves,
    per-clip intensity scale and bias (float64 (B,)), and the labels, in the module docstring's draw layout."""
    spec = dataset.spec
    keys = clip_keys(dataset.seed, indices)
    labels = indices % len(dataset.space)  # VPNDataset.label's round-robin rule, on the device

    def draws(first: int, count: int) -> Tensor:
        return uniform(keys[:, None], torch.arange(first, first + count, device=indices.device))

    jitter, motion_jitter = draws(JITTER, 2), draws(MOTION_JITTER, 2)
    phases = draws(PHASES, 3 * spec.octaves).view(-1, spec.octaves, 3)
    if not spec.random_phase:
        phases = torch.zeros_like(phases)
    scale = (1.0 + spec.contrast_jitter * (2.0 * jitter[:, 0] - 1.0)) * dataset._intensity_scale
    bias = 0.5 + spec.brightness_jitter * (2.0 * jitter[:, 1] - 1.0)
    vx, vy = velocities(dataset, layout, labels, motion_jitter)
    octaves = []
    for o in range(spec.octaves):
        cells = layout.cells[labels, o]
        grads = unit_gradients(keys, layout.gradient_base[o], layout.nodes[o])
        if o:
            grads.mul_(spec.persistence**o)
        drift = torch.stack([-vy * cells[:, 1] / dataset.height, vx * cells[:, 2] / dataset.width], dim=1)
        octaves.append(Octave(grads, cells, phases[:, o].contiguous(), spec.tileable,
                              drift if bool(drift.any()) else None))
    return octaves, scale, bias, labels


__all__ = ["hash32", "clip_keys", "uniform", "CounterLayout", "unit_gradients", "velocities", "draw_batch"]
