"""Batched 3D Perlin noise over (t, y, x) as three separable tensor contractions.

For an axis with ``n`` samples and ``f`` lattice cells, sample ``i`` sits at lattice coordinate
``p = i * f / n + phase`` (``phase`` is a fraction of a cell in [0, 1)), in cell ``a = floor(p)``
at offset ``s = p - a``. With the quintic fade ``w(s) = 6s^5 - 15s^4 + 10s^3`` and a random unit
gradient ``g`` on every lattice node, Perlin noise is

    n(p) = sum over corners c in {0,1}^3 of  prod_axes W_axis(c) * g_c . (s - c)

with ``W(0) = 1 - w(s)`` and ``W(1) = w(s)``. Since ``g . (s - c) = sum_k g_k (s_k - c_k)`` this
splits into three separable terms. Per axis we build two (n, L) matrices over the L lattice
nodes: ``W`` (interpolation weights) and ``D = W * (s - c)`` (weighted offsets). With ``G_k`` the
lattice of gradient component k,

    noise = G_t x_t D_T x_y W_Y x_x W_X + G_y x_t W_T x_y D_Y x_x W_X + G_x x_t W_T x_y W_Y x_x D_X

(``x_a`` is the mode-a product). The contraction is done x first, then y, then t, and the last
step is one batched matmul that writes the output once (with per-sample scale and bias folded in),
so the cost is dominated by a single pass over the (B, T, H, W) result. It runs on any torch
device and matches the per-voxel (8-corner gather) form to float32 rounding.

**Drift (coherent motion).** A clip may translate: ``n(t, y, x) = P(t, y - v_y t, x - v_x t)``,
the whole field moving at velocity v while it still evolves along its own time axis. An octave's
``drift`` is the displacement over the clip length in cells of that octave, (d_y, d_x); frame t
samples lattice position ``i * f / n + phase + offset - d * t / T`` on a drifting axis. Within one
frame the coordinates stay separable, so the contraction is done per frame with per-frame
sampling matrices ``W_Y[t]``, ``D_Y[t]``, ``W_X[t]``, ``D_X[t]``, time first:

    A_t = sum_a D_T[t, a] G_t[a],   B_t = sum_a W_T[t, a] G_y[a],   C_t = sum_a W_T[t, a] G_x[a]
    noise[t] = [W_Y[t] | D_Y[t]] @ [[A_t W_X[t]^T + C_t D_X[t]^T], [B_t W_X[t]^T]]

(the right factor is ``[A_t | C_t] @ [W_X[t] | D_X[t]]^T`` stacked over ``B_t @ W_X[t]^T``). The
y-stage costs 2 L_y H W per frame, about what the static y- and t-stages cost together. A drifting
axis needs ``ceil(|d|)`` extra lattice nodes (none when tileable: the motion wraps), and the lattice
is offset by ``ceil(d)`` for positive d so positions stay non-negative (:func:`drift_nodes`,
:func:`drift_offset`). Batches without drift take the static path, bit for bit as before.

Samples in a batch may have different cell counts: lattices are zero-padded to the largest one,
and padded nodes get zero weight. A *tileable* lattice wraps node ``f`` onto node 0, so the noise
loops seamlessly along that axis (useful for looping videos). Fractal noise sums octaves whose
cell counts grow by ``lacunarity`` and amplitudes shrink by ``persistence``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from torch import Tensor

from videoperlin.errors import ConfigError

AXES = ("t", "y", "x")


def fade(s: Tensor) -> Tensor:
    """Perlin's quintic fade ``6s^5 - 15s^4 + 10s^3`` (C2-continuous interpolation weight)."""
    return s * s * s * (s * (s * 6.0 - 15.0) + 10.0)


@cache
def noise_std() -> float:
    """Standard deviation of single-octave Perlin noise with uniform random unit gradients.

    For independent unit gradients ``E[(g.v)^2] = |v|^2 / 3``, so the variance at offset ``s``
    is ``sum_c W_c(s)^2 |s - c|^2 / 3``, which is separable over axes. Averaged over a cell it is
    ``A^2 * B`` with ``A = E[(1-w)^2 + w^2]`` and ``B = E[(1-w)^2 s^2 + w^2 (s-1)^2]``; both are
    polynomial integrals, computed exactly by Gauss-Legendre quadrature (about 0.191).
    """
    nodes, weights = np.polynomial.legendre.leggauss(16)
    s = (nodes + 1.0) / 2.0
    weights = weights / 2.0
    w = 6 * s**5 - 15 * s**4 + 10 * s**3
    a = float(np.sum(weights * ((1 - w) ** 2 + w**2)))
    b = float(np.sum(weights * ((1 - w) ** 2 * s**2 + w**2 * (s - 1) ** 2)))
    return math.sqrt(a * a * b)


def lattice_nodes(cells: int, tileable: bool) -> int:
    """Number of lattice nodes an axis with ``cells`` cells needs.

    A non-tileable axis needs ``cells + 2`` nodes: with a phase in [0, 1) the last sample can
    fall in cell ``cells``, whose upper corner is node ``cells + 1``. A tileable axis has
    ``cells`` nodes (node ``cells`` is node 0).
    """
    return cells if tileable else cells + 2


def validate_cells(cells: int, samples: int, axis: str) -> None:
    """Raise a :class:`ConfigError` unless 1 <= cells <= samples along ``axis``."""
    if isinstance(cells, bool) or not isinstance(cells, (int, np.integer)):
        raise ConfigError(f"frequency {cells!r} on axis {axis} must be a positive integer (cells per clip extent)")
    if cells < 1:
        raise ConfigError(f"frequency {cells} on axis {axis} must be >= 1 cell per clip extent")
    if cells > samples:
        raise ConfigError(
            f"frequency {cells} on axis {axis} has more lattice cells than the {samples} samples on that axis; "
            f"use a frequency <= {samples} or a larger clip"
        )


def interpolation_matrices(position: Tensor, cells: Tensor, nodes: int, tileable: bool) -> Tensor:
    """``[W | D]`` (..., N, 2 * nodes) float32 for float64 lattice positions (..., N); ``cells``
    broadcasts against position's leading dimensions (used to wrap a tileable lattice).

    Each sample has two non-zero entries in ``W`` and two in ``D``, at its cell's lower and upper
    node, computed in float64 and rounded once. (On a tileable axis of one cell both nodes are
    node 0 and the two contributions are added in float64 first.)
    """
    corner = position.floor()
    offset = position - corner
    weight = fade(offset)
    lower = corner.long()
    upper = lower + 1
    if tileable:
        lower = lower % cells
        upper = upper % cells
    entries = (
        (lower, 1.0 - weight),
        (upper, weight),
        (lower + nodes, (1.0 - weight) * offset),
        (upper + nodes, weight * (offset - 1.0)),
    )
    pair = torch.zeros(
        (*position.shape, 2 * nodes), device=position.device, dtype=torch.float64 if tileable else torch.float32
    )
    for index, value in entries:
        if tileable:
            pair.scatter_add_(-1, index[..., None], value[..., None])
        else:  # distinct nodes: each entry is written once
            pair.scatter_(-1, index[..., None], value.float()[..., None])
    return pair.float()


def axis_factors(
    samples: int, cells: Tensor, phase: Tensor, nodes: int, tileable: bool = False
) -> tuple[Tensor, Tensor]:
    """Interpolation matrix ``W`` and offset matrix ``D`` of one axis, each (B, samples, nodes).

    ``cells`` (B,) holds each sample's cell count and ``phase`` (B,) its offset in cells.
    Built in float64 (they are tiny) and returned in float32 on ``cells``' device.
    """
    cells64 = cells.to(torch.float64)
    position = torch.arange(samples, device=cells.device, dtype=torch.float64)[None, :] * (cells64[:, None] / samples)
    position = position + phase.to(torch.float64)[:, None]
    pair = interpolation_matrices(position, cells.long()[:, None], nodes, tileable)
    return pair[..., :nodes], pair[..., nodes:]


def drift_offset(drift: Tensor, tileable: bool) -> Tensor:
    """Lattice offset (in cells) of a drifting axis: ``ceil(d)`` for d > 0, so positions stay >= 0."""
    return torch.zeros_like(drift) if tileable else drift.clamp(min=0).ceil()


def drift_nodes(cells: int, drift: float, tileable: bool) -> int:
    """Lattice nodes an axis with ``cells`` cells drifting ``drift`` cells over the clip needs."""
    return lattice_nodes(cells, tileable) + (0 if tileable else math.ceil(abs(drift)))


def moving_axis_factors(
    samples: int, frames: int, cells: Tensor, phase: Tensor, drift: Tensor, nodes: int, tileable: bool = False
) -> Tensor:
    """Per-frame ``[W | D]`` of a drifting axis, (B, frames, samples, 2 * nodes).

    Frame t samples position ``i * f / n + phase + offset - drift * t / frames`` (see the module docstring).
    """
    cells64, drift64 = cells.to(torch.float64), drift.to(torch.float64)
    grid = (
        torch.arange(samples, device=cells.device, dtype=torch.float64)[None, None, :]
        * (cells64 / samples)[:, None, None]
    )
    time = torch.arange(frames, device=cells.device, dtype=torch.float64)[None, :, None] / frames
    start = (phase.to(torch.float64) + drift_offset(drift64, tileable))[:, None, None]
    position = grid + start - drift64[:, None, None] * time
    return interpolation_matrices(position, cells.long()[:, None, None], nodes, tileable)


@dataclass
class Octave:
    """One octave of a batch: gradients (B, 3, Lt, Ly, Lx) with components ordered (t, y, x),
    cell counts (B, 3) and phases (B, 3) ordered (t, y, x), whether the lattice wraps, and
    optionally each sample's drift (B, 2): its displacement over the clip in cells, (y, x)."""

    gradients: Tensor
    cells: Tensor
    phase: Tensor
    tileable: bool = False
    drift: Tensor | None = None


@dataclass
class _Factors:
    """The small per-batch operands of one octave: everything except the big contractions.

    ``P = G_t x_x W_X x_y W_Y`` pairs with ``D_T``; ``Q = G_y x_x W_X x_y D_Y + G_x x_x D_X x_y W_Y``
    pairs with ``W_T``.
    """

    x_done: Tensor  # (B, Lt, 3, Ly, W): gradient components (t, y, x) contracted over x
    w_y: Tensor  # (B, H, Ly): y-factor of P
    dw_y: Tensor  # (B, H, 2Ly): [D_Y, W_Y], y-factor of Q
    d_t: Tensor  # (B, T, Lt)
    w_t: Tensor  # (B, T, Lt)


def _octave_factors(octave: Octave, size: tuple[int, int, int], scale: Tensor | None, bias: Tensor | None) -> _Factors:
    """Contract x and build the y and t factor matrices of one octave, for the whole batch.

    A per-sample ``scale`` multiplies the gradients. A per-sample ``bias`` is added to the
    x-contracted x-component: every interpolation matrix ``W`` has rows summing to 1 (partition of
    unity), so a constant there passes through ``W_Y`` and ``W_T`` unchanged and lands on every
    output voxel for free.
    """
    frames, height, width = size
    grads = octave.gradients
    if scale is not None:
        grads = grads * scale.to(grads)[:, None, None, None, None]
    _, _, lt, ly, lx = grads.shape
    wt, dt = axis_factors(frames, octave.cells[:, 0], octave.phase[:, 0], lt, octave.tileable)
    wy, dy = axis_factors(height, octave.cells[:, 1], octave.phase[:, 1], ly, octave.tileable)
    wx, dx = axis_factors(width, octave.cells[:, 2], octave.phase[:, 2], lx, octave.tileable)
    x_factors = torch.stack([wx, wx, dx], dim=1).transpose(2, 3)  # (B, 3, Lx, W)
    x_done = torch.matmul(grads.transpose(1, 2), x_factors[:, None])  # (B, Lt, 3, Ly, W)
    if bias is not None:
        x_done[:, :, 2] += bias.to(x_done)[:, None, None, None]
    return _Factors(x_done, wy, torch.cat([dy, wy], dim=2), dt, wt)


#: Bytes of y-stage intermediate per CPU chunk: small enough to stay in L2/L3 cache, so the only
#: trip to main memory is the output. On a 2-core EPYC (2 MiB L2 per core) 2-4 MiB chunks were
#: fastest (benchmarks/generate.py); unchunked was about 20% slower.
CPU_CHUNK_BYTES = 3 * 2**20


def _chunk_size(batch: int, nodes_t: int, size: tuple[int, int, int], device: torch.device) -> int:
    if device.type != "cpu":
        return batch
    per_sample = 2 * nodes_t * size[1] * size[2] * 4
    return max(1, min(batch, CPU_CHUNK_BYTES // per_sample))


def _accumulate_chunk(f: _Factors, start: int, stop: int, out: Tensor, first: bool) -> None:
    """Add one octave's noise for samples start:stop into ``out`` (b, T, H*W): y, then t."""
    x_done = f.x_done[start:stop]
    b, lt, _, ly, width = x_done.shape
    p = torch.matmul(f.w_y[start:stop, None], x_done[:, :, 0]).reshape(b, lt, -1)
    q = torch.matmul(f.dw_y[start:stop, None], x_done[:, :, 1:].reshape(b, lt, 2 * ly, width)).reshape(b, lt, -1)
    if first:
        torch.bmm(f.d_t[start:stop], p, out=out)
    else:
        out.baddbmm_(f.d_t[start:stop], p)
    out.baddbmm_(f.w_t[start:stop], q)


def render_octaves(
    octaves: list[Octave],
    size: tuple[int, int, int],
    scale: Tensor | None = None,
    bias: Tensor | None = None,
    out: Tensor | None = None,
    clamp: tuple[float, float] | None = None,
) -> Tensor:
    """Sum of Perlin octaves, ``bias + scale * sum_o noise_o``, as a (B, T, H, W) float32 tensor.

    Amplitudes per octave are expected to be folded into each octave's gradients. ``scale`` and
    ``bias`` are per-sample (B,) tensors (defaults 1 and 0) folded into the small factors. The
    large contractions run in cache-sized chunks of the batch on the CPU (:data:`CPU_CHUNK_BYTES`),
    and ``clamp=(lo, hi)`` is applied to each chunk while it is still in cache. ``out`` may be a
    preallocated contiguous (B, T, H, W) float32 tensor. A batch with any drifting sample takes the
    drifting path (static samples in it too, equal to the static path to float rounding).
    """
    frames, height, width = size
    batch = octaves[0].gradients.shape[0]
    device = octaves[0].gradients.device
    if out is None:
        out = torch.empty((batch, frames, height, width), device=device)
    if any(o.drift is not None and bool(o.drift.any()) for o in octaves):
        _render_drifting(octaves, size, scale, bias, out, clamp)
    else:
        _render_static(octaves, size, scale, bias, out, clamp)
    return out


def _render_static(
    octaves: list[Octave],
    size: tuple[int, int, int],
    scale: Tensor | None,
    bias: Tensor | None,
    out: Tensor,
    clamp: tuple[float, float] | None,
) -> None:
    """Static clips: x, then y, then t (module docstring), in cache-sized chunks of the batch."""
    frames, height, width = size
    batch = out.shape[0]
    flat = out.view(batch, frames, height * width)
    factors = [_octave_factors(o, size, scale, bias if n == 0 else None) for n, o in enumerate(octaves)]
    chunk = _chunk_size(batch, max(f.x_done.shape[1] for f in factors), size, out.device)
    for start in range(0, batch, chunk):
        stop = min(batch, start + chunk)
        for number, f in enumerate(factors):
            _accumulate_chunk(f, start, stop, flat[start:stop], first=number == 0)
        if clamp is not None:
            flat[start:stop].clamp_(*clamp)


def _drifting_factors(
    o: Octave, size: tuple[int, int, int], scale: Tensor | None, bias: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Left ``[W_Y | D_Y]`` (b*T, H, 2Ly) and right (b*T, 2Ly, W) factors whose product is one
    drifting octave's noise; right = ``[[A, C], [B, 0]] @ [W_X | D_X]^T`` (module docstring)."""
    frames, height, width = size
    grads = o.gradients if scale is None else o.gradients * scale.to(o.gradients)[:, None, None, None, None]
    b, _, lt, ly, lx = grads.shape
    drift = o.drift if o.drift is not None else torch.zeros((b, 2), dtype=torch.float64, device=grads.device)
    wt, dt = axis_factors(frames, o.cells[:, 0], o.phase[:, 0], lt, o.tileable)
    left = moving_axis_factors(height, frames, o.cells[:, 1], o.phase[:, 1], drift[:, 0], ly, o.tileable)
    pair_x = moving_axis_factors(width, frames, o.cells[:, 2], o.phase[:, 2], drift[:, 1], lx, o.tileable)
    g = grads.reshape(b, 3, lt, ly * lx)
    blocks = torch.zeros((b, frames, 2 * ly, 2 * lx), dtype=grads.dtype, device=grads.device)
    blocks[:, :, :ly, :lx] = torch.bmm(dt, g[:, 0]).view(b, frames, ly, lx)  # A: t-gradients, D_T
    sides = torch.bmm(wt, g[:, 1:].transpose(1, 2).reshape(b, lt, 2 * ly * lx)).view(b, frames, 2, ly, lx)
    blocks[:, :, ly:, :lx] = sides[:, :, 0]  # B: y-gradients, W_T (pairs with D_Y)
    blocks[:, :, :ly, lx:] = sides[:, :, 1]  # C: x-gradients, W_T (pairs with D_X)
    right = torch.matmul(blocks, pair_x.transpose(-1, -2))  # (b, T, 2Ly, W)
    if bias is not None:
        right[:, :, :ly] += bias.to(right)[:, None, None, None]  # rows of W_Y sum to 1: lands on every voxel
    return left.reshape(b * frames, height, 2 * ly), right.reshape(b * frames, 2 * ly, width)


def _render_drifting(
    octaves: list[Octave],
    size: tuple[int, int, int],
    scale: Tensor | None,
    bias: Tensor | None,
    out: Tensor,
    clamp: tuple[float, float] | None,
) -> None:
    """Drifting clips: per frame, time first, then x, then y (module docstring). The factors are
    built once for the batch; their product is taken in cache-sized chunks of (sample, frame) rows."""
    _frames, height, width = size
    flat = out.view(-1, height, width)
    factors = [_drifting_factors(o, size, scale, bias if n == 0 else None) for n, o in enumerate(octaves)]
    rows = len(flat) if out.device.type != "cpu" else max(1, CPU_CHUNK_BYTES // (height * width * 4))
    for start in range(0, len(flat), rows):
        part = flat[start : start + rows]
        for number, (left, right) in enumerate(factors):
            if number == 0:
                torch.bmm(left[start : start + rows], right[start : start + rows], out=part)
            else:
                part.baddbmm_(left[start : start + rows], right[start : start + rows])
        if clamp is not None:
            part.clamp_(*clamp)


def perlin_noise(
    gradients: Tensor,
    size: tuple[int, int, int],
    cells: Tensor,
    phase: Tensor | None = None,
    tileable: bool = False,
    drift: Tensor | None = None,
) -> Tensor:
    """Single-octave 3D Perlin noise for a batch, (B, T, H, W) float32, roughly in [-0.87, 0.87].

    Args:
        gradients: (B, 3, Lt, Ly, Lx) gradient lattice, components ordered (t, y, x); each
            ``L >= drift_nodes(cells, drift, tileable)`` (extra nodes are ignored).
        size: output (T, H, W).
        cells: (B, 3) integer cell counts (ft, fy, fx), each between 1 and the axis length.
        phase: (B, 3) offsets in cells, in [0, 1); zeros if omitted.
        tileable: wrap each axis so the noise loops seamlessly.
        drift: (B, 2) displacement of the field over the clip in cells, (y, x); None: static.
    """
    cells = torch.as_tensor(cells, device=gradients.device)
    if phase is None:
        phase = torch.zeros(cells.shape, dtype=torch.float64, device=gradients.device)
    if drift is not None:
        drift = torch.as_tensor(drift, dtype=torch.float64, device=gradients.device)
    _check_lattice(gradients, size, cells, tileable, drift)
    octave = Octave(gradients, cells, torch.as_tensor(phase, device=gradients.device), tileable, drift)
    return render_octaves([octave], size)


def _check_lattice(
    gradients: Tensor, size: tuple[int, int, int], cells: Tensor, tileable: bool, drift: Tensor | None = None
) -> None:
    if gradients.dim() != 5 or gradients.shape[1] != 3:
        raise ConfigError(f"gradients must have shape (B, 3, Lt, Ly, Lx), got {tuple(gradients.shape)}")
    drifts = (
        torch.zeros((len(cells), 3), dtype=torch.float64)
        if drift is None
        else torch.cat([torch.zeros((len(cells), 1), dtype=torch.float64), drift.cpu()], dim=1)
    )
    for axis, samples, column, moves, nodes in zip(
        AXES, size, cells.T.tolist(), drifts.T.tolist(), gradients.shape[2:]
    ):
        for value, d in zip(column, moves):
            validate_cells(int(value), samples, axis)
            if drift_nodes(int(value), d, tileable) > nodes:
                raise ConfigError(
                    f"gradient lattice has {nodes} nodes on axis {axis} but {value} cells drifting {d:g} need "
                    f"{drift_nodes(int(value), d, tileable)}"
                )


def random_unit_gradients(shape: tuple[int, ...], generator: torch.Generator | None = None) -> Tensor:
    """Uniformly distributed random unit 3-vectors, (3, *shape), drawn on the CPU."""
    g = torch.randn((3, *shape), generator=generator)
    return g / g.norm(dim=0, keepdim=True).clamp_min(1e-12)


def octave_cells(cells: int, octave: int, lacunarity: float) -> int:
    """Cell count of octave ``octave`` (0-based) for a base of ``cells``: round(cells * lacunarity^octave)."""
    return round(cells * lacunarity**octave)


def fractal_std(octaves: int, persistence: float) -> float:
    """Standard deviation of fractal noise with the given octaves and persistence (independent octaves)."""
    return noise_std() * math.sqrt(sum(persistence ** (2 * o) for o in range(octaves)))
