"""Per-voxel (8-corner gather) Perlin noise in float64 numpy: the reference the fast kernel is
checked against (and the baseline of benchmarks/generate.py). Deliberately written the plain way:
for every voxel, find its cell, gather the 8 corner gradients, dot them with the offsets and blend.

With a drift (d_y, d_x) -- the field's displacement over the clip in cells -- voxel (t, y, x) is
sampled at the moved lattice position ``p = i f / n + phase + offset - d t / T`` on the y and x
axes, i.e. ``n(t, y, x) = P(t, y - v_y t, x - v_x t)``; ``offset = ceil(d)`` for d > 0 keeps
positions non-negative (0 on a tileable lattice, which wraps)."""

from __future__ import annotations

import itertools

import numpy as np


def _fade(s: np.ndarray) -> np.ndarray:
    return 6 * s**5 - 15 * s**4 + 10 * s**3


def reference_perlin(
    gradients: np.ndarray,
    size: tuple[int, int, int],
    cells: tuple[int, int, int],
    phase: tuple[float, float, float] = (0.0, 0.0, 0.0),
    tileable: bool = False,
    drift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Noise of one clip, (T, H, W) float64. ``gradients`` is (3, Lt, Ly, Lx), components (t, y, x)."""
    coords = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in size], indexing="ij")
    position = [c * (f / n) + ph for c, f, n, ph in zip(coords, cells, size, phase)]
    time = coords[0] / size[0]
    for axis, d in ((1, drift[0]), (2, drift[1])):
        offset = 0.0 if tileable else max(0.0, float(np.ceil(d)))
        position[axis] = position[axis] + offset - d * time
    corner = [np.floor(p).astype(np.int64) for p in position]
    offset = [p - a for p, a in zip(position, corner)]
    weight = [_fade(s) for s in offset]
    out = np.zeros(size, dtype=np.float64)
    for c in itertools.product((0, 1), repeat=3):
        node = [a + ci for a, ci in zip(corner, c)]
        if tileable:
            node = [n % f for n, f in zip(node, cells)]
        g = gradients[:, node[0], node[1], node[2]]  # (3, T, H, W)
        dot = sum(g[k] * (offset[k] - c[k]) for k in range(3))
        blend = np.ones(size)
        for k in range(3):
            blend = blend * (weight[k] if c[k] else 1.0 - weight[k])
        out += blend * dot
    return out
