"""Random numbers of a batch of synthetic clips: one interface, two back-ends.

Every random number of a clip is a pure function of (seed, clip index, what is drawn): never of
the batch it is rendered in, the worker, the order of access or the device. A family's renderer
asks for its numbers by name through :class:`ClipDraws`:

* ``uniform(name, count)`` -- ``count`` uniforms in [0, 1) per clip: (B, count) float64;
* ``unit_vectors(name, nodes)`` -- a random unit 3-vector, uniform on the sphere, per node of each
  clip's lattice (``nodes``: one (Lt, Ly, Lx) per clip, as lattices differ by class): (B, 3, L...)
  float32, zero beyond a clip's own lattice.

A family declares what it draws in a :class:`DrawLayout`. The two back-ends (``rng``):

``generator`` (:class:`GeneratorDraws`, the original format). Clip ``i`` owns a CPU
``torch.Generator`` seeded with ``splitmix64(seed, i)``; each call draws from it in turn, so the
order of the calls *is* the format: :attr:`DrawLayout.order` lists it, a call out of order is an
error, and a new draw goes last (existing clips stay the same). Python per clip: slow on a GPU.

``counter`` (:class:`CounterDraws`). Draw ``d`` of clip ``i`` is

    u(seed, i, d) = h(h(h(key) ^ d) + GOLDEN) / 2^32,    key = h(seed_lo ^ h(i_hi ^ h(i_lo + seed_hi)))

with ``h`` a 32-bit integer finaliser (xor-shift-multiply, "lowbias32"). Integer arithmetic is
exact, so the numbers are identical on the CPU and any GPU for any batch, and they are computed for
the whole batch on the device that renders. Draw numbers come from the layout: a uniform's first
number is its slot (:attr:`DrawLayout.slots`); unit-vector blocks follow from 2^24 in layout order,
two draws (z = 2u - 1, azimuth 2πu': uniform on the sphere by Archimedes) per node of the largest
lattice any class needs (:attr:`DrawLayout.blocks`). 32-bit draws resolve 2^-32 of a range, far
below a pixel. Why hand-written: torch's device generators (Philox on CUDA, Mersenne Twister on
the CPU) give different streams per device and one stream per call, not a value per (clip, draw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from videoperlin.noise import random_unit_gradients

_MASK32, _MASK64, _GOLDEN = 0xFFFFFFFF, (1 << 64) - 1, 0x9E3779B9
#: First draw number of the counter back-end's unit-vector blocks.
BLOCKS_START = 2**24


def splitmix64(seed: int, index: int) -> int:
    """Mix (seed, index) into a well-spread 63-bit generator seed (SplitMix64 finaliser)."""
    z = (seed * 0x9E3779B97F4A7C15 + index + 0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


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


@dataclass(frozen=True)
class DrawLayout:
    """What a family draws per clip (module docstring): the generator's call order, the counter's
    slot of each uniform draw, and the largest lattice (Lt, Ly, Lx) of each unit-vector block."""

    order: tuple[str, ...]
    slots: dict[str, int]
    blocks: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.order) != set(self.slots) | set(self.blocks) or set(self.slots) & set(self.blocks):
            raise ValueError(
                f"draw layout: order {self.order} must name each slot {sorted(self.slots)} and block "
                f"{sorted(self.blocks)} once"
            )
        if any(first >= BLOCKS_START for first in self.slots.values()):
            raise ValueError(f"draw layout: uniform slots must lie below {BLOCKS_START} (blocks start there)")

    def block_starts(self) -> dict[str, int]:
        """First draw number of each unit-vector block (two draws per node, in layout order)."""
        starts, first = {}, BLOCKS_START
        for name, nodes in self.blocks.items():
            starts[name] = first
            first += 2 * math.prod(nodes)
        return starts


class ClipDraws:
    """The random numbers of clips ``indices`` (module docstring); rendered on ``device``."""

    def __init__(self, seed: int, indices: Tensor, layout: DrawLayout) -> None:
        self.seed, self.indices, self.layout, self.device = seed, indices, layout, indices.device

    def uniform(self, name: str, count: int) -> Tensor:
        raise NotImplementedError

    def unit_vectors(self, name: str, nodes: list[tuple[int, int, int]]) -> Tensor:
        raise NotImplementedError


class GeneratorDraws(ClipDraws):
    """One seeded CPU generator per clip, drawn in the layout's order (the original format)."""

    def __init__(self, seed: int, indices: Tensor, layout: DrawLayout) -> None:
        super().__init__(seed, indices, layout)
        self.generators = [torch.Generator().manual_seed(splitmix64(seed, int(i))) for i in indices.tolist()]
        self.position = 0

    def _next(self, name: str) -> None:
        expected = self.layout.order[self.position] if self.position < len(self.layout.order) else None
        if name != expected:
            raise RuntimeError(
                f"draw {name!r} out of order: the generator format draws {expected!r} next (order {self.layout.order})"
            )
        self.position += 1

    def uniform(self, name: str, count: int) -> Tensor:
        self._next(name)
        values = [torch.rand(count, generator=g, dtype=torch.float64) for g in self.generators]
        return torch.stack(values).to(self.device)

    def unit_vectors(self, name: str, nodes: list[tuple[int, int, int]]) -> Tensor:
        self._next(name)
        largest = [max(n[axis] for n in nodes) for axis in range(3)]
        lattice = torch.zeros((len(nodes), 3, *largest), dtype=torch.float32)
        for b, (g, (lt, ly, lx)) in enumerate(zip(self.generators, nodes)):
            lattice[b, :, :lt, :ly, :lx] = random_unit_gradients((lt, ly, lx), g)
        return lattice.to(self.device)


class CounterDraws(ClipDraws):
    """Hashed (seed, index, draw) numbers for the whole batch on its device."""

    def __init__(self, seed: int, indices: Tensor, layout: DrawLayout) -> None:
        super().__init__(seed, indices, layout)
        self.keys = clip_keys(seed, indices)
        self.starts = layout.block_starts()

    def uniform(self, name: str, count: int) -> Tensor:
        first = self.layout.slots[name]
        return uniform(self.keys[:, None], torch.arange(first, first + count, device=self.device))

    def unit_vectors(self, name: str, nodes: list[tuple[int, int, int]]) -> Tensor:
        """The block's largest lattice for every clip (a clip reads only its own nodes of it)."""
        largest = self.layout.blocks[name]
        draws = self.starts[name] + 2 * torch.arange(math.prod(largest), device=self.device)
        z = 2.0 * uniform(self.keys[:, None], draws) - 1.0
        azimuth = 2.0 * math.pi * uniform(self.keys[:, None], draws + 1)
        ring = (1.0 - z * z).clamp_min(0.0).sqrt()
        vectors = torch.stack([z, ring * torch.cos(azimuth), ring * torch.sin(azimuth)], dim=1)
        return vectors.float().view(len(self.keys), 3, *largest)


#: The back-ends by the name a source's ``rng`` option uses.
BACKENDS: dict[str, type[ClipDraws]] = {"generator": GeneratorDraws, "counter": CounterDraws}
