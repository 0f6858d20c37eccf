"""The fast Perlin kernel against the per-voxel reference, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_perlin import reference_perlin

import videoperlin.noise as noise
from videoperlin.errors import ConfigError
from videoperlin.noise import Octave, drift_nodes, lattice_nodes, perlin_noise, random_unit_gradients, render_octaves


def _random_batch(cells: list[tuple[int, int, int]], tileable: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    cells_t = torch.tensor(cells)
    nodes = tuple(lattice_nodes(int(cells_t[:, k].max()), tileable) for k in range(3))
    grads = torch.stack([random_unit_gradients(nodes, gen) for _ in cells])
    phase = torch.rand(len(cells), 3, generator=gen, dtype=torch.float64)
    return grads, cells_t, phase


@pytest.mark.parametrize("tileable", [False, True])
@pytest.mark.parametrize("size", [(16, 32, 32), (7, 20, 36), (1, 9, 5)])
def test_fast_kernel_matches_per_voxel_reference(size, tileable):
    t, h, w = size
    cells = [(1, 1, 1), (min(t, 3), min(h, 4), min(w, 2)), (t, h, w), (max(1, t // 2), max(1, h // 3), w)]
    grads, cells_t, phase = _random_batch(cells, tileable)
    fast = perlin_noise(grads, size, cells_t, phase, tileable=tileable)
    assert fast.shape == (len(cells), *size) and fast.dtype == torch.float32
    for b in range(len(cells)):
        ref = reference_perlin(grads[b].double().numpy(), size, cells[b], tuple(phase[b].tolist()), tileable)
        np.testing.assert_allclose(fast[b].numpy(), ref, atol=1e-5, rtol=0)
    assert fast.abs().max() > 0.1  # not trivially zero


def test_zero_phase_puts_lattice_nodes_on_samples():
    # With phase 0 and cells == samples every sample is a lattice node, where Perlin noise is 0.
    grads, cells, _ = _random_batch([(4, 8, 8)], tileable=False)
    out = perlin_noise(grads, (4, 8, 8), cells)
    assert out.abs().max() < 1e-6


def test_tileable_noise_is_periodic():
    """A tileable lattice equals a non-tileable one whose gradients repeat, so the clip loops."""
    t, h, w, f = 8, 12, 20, (2, 3, 5)
    grads, cells, phase = _random_batch([f], tileable=True)
    looped = perlin_noise(grads, (t, h, w), cells, phase, tileable=True)[0]
    # Periodic extension over twice the extent on every axis, rendered without wrapping.
    idx = [torch.arange(2 * c + 2) % c for c in f]
    extended = grads[0][:, idx[0]][:, :, idx[1]][:, :, :, idx[2]][None]
    double = perlin_noise(extended, (2 * t, 2 * h, 2 * w), torch.tensor([[2 * c for c in f]]), phase)[0]
    torch.testing.assert_close(double[:t, :h, :w], looped, atol=1e-5, rtol=0)
    torch.testing.assert_close(double[t:, h:, w:], looped, atol=1e-5, rtol=0)


def test_octaves_sum_and_scale_bias_are_folded_in():
    size = (6, 16, 16)
    g1, c1, p1 = _random_batch([(1, 2, 2), (2, 1, 3)], False, seed=1)
    g2, c2, p2 = _random_batch([(2, 4, 4), (4, 2, 6)], False, seed=2)
    scale, bias = torch.tensor([0.5, 2.0]), torch.tensor([0.25, -0.1])
    combined = render_octaves([Octave(g1, c1, p1), Octave(0.5 * g2, c2, p2)], size, scale, bias)
    expected = perlin_noise(g1, size, c1, p1) + 0.5 * perlin_noise(g2, size, c2, p2)
    expected = bias[:, None, None, None] + scale[:, None, None, None] * expected
    torch.testing.assert_close(combined, expected, atol=1e-5, rtol=0)


def test_cpu_chunking_does_not_change_values(monkeypatch):
    grads, cells, phase = _random_batch([(1, 2, 3), (4, 4, 4), (2, 8, 1), (3, 1, 2), (1, 1, 1)], False)
    whole = perlin_noise(grads, (8, 24, 24), cells, phase)
    monkeypatch.setattr(noise, "CPU_CHUNK_BYTES", 1)  # one sample per chunk
    chunked = perlin_noise(grads, (8, 24, 24), cells, phase)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=0)


def test_analytic_std_matches_measured_std():
    grads, cells, phase = _random_batch([(2, 4, 4)] * 24 + [(4, 8, 3)] * 24, False, seed=5)
    out = perlin_noise(grads, (16, 48, 48), cells, phase)
    assert abs(out.std().item() / noise.noise_std() - 1.0) < 0.05
    assert abs(noise.fractal_std(3, 0.5) / noise.noise_std() - np.sqrt(1 + 0.25 + 0.0625)) < 1e-9


@pytest.mark.parametrize("cells", [(0, 1, 1), (1, 9, 1), (1, 1, -2)])
def test_invalid_cells_are_rejected(cells):
    grads = torch.zeros(1, 3, 12, 12, 12)
    with pytest.raises(ConfigError, match="frequency"):
        perlin_noise(grads, (4, 8, 8), torch.tensor([cells]))


def _drifting_batch(cells, drifts, tileable: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    nodes = [max(drift_nodes(c[k], d[k - 1] if k else 0.0, tileable) for c, d in zip(cells, drifts)) for k in range(3)]
    grads = torch.stack([random_unit_gradients(tuple(nodes), gen) for _ in cells])
    phase = torch.rand(len(cells), 3, generator=gen, dtype=torch.float64)
    return grads, torch.tensor(cells), phase, torch.tensor(drifts, dtype=torch.float64)


@pytest.mark.parametrize("tileable", [False, True])
@pytest.mark.parametrize("size", [(16, 32, 32), (7, 20, 36)])
def test_drifting_kernel_matches_per_voxel_reference(size, tileable):
    t, _h, w = size
    cells = [(1, 2, 2), (2, 4, 3), (min(t, 3), 1, min(w, 8)), (1, 3, 5), (2, 2, 2)]
    drifts = [(0.0, 1.5), (-2.25, 0.75), (3.0, -4.0), (-0.4, -0.6), (0.0, 0.0)]  # the last one static, in a mixed batch
    grads, cells_t, phase, drift = _drifting_batch(cells, drifts, tileable)
    fast = perlin_noise(grads, size, cells_t, phase, tileable=tileable, drift=drift)
    for b in range(len(cells)):
        ref = reference_perlin(grads[b].double().numpy(), size, cells[b], tuple(phase[b].tolist()), tileable, drifts[b])
        np.testing.assert_allclose(fast[b].numpy(), ref, atol=1e-5, rtol=0)
    assert fast[:4].std(dim=(1, 2, 3)).min() > 0.05


def test_drift_translates_the_field():
    """A field that does not evolve (one tileable time cell, no t-gradients) is a rigid translation:
    frame t is frame 0 shifted by d * t / T cells, here exactly 1 px per frame."""
    grads, cells, phase, _ = _drifting_batch([(1, 4, 4)], [(0.0, 0.0)], tileable=True)
    grads[:, 0] = 0  # no t-component; one tileable time node makes the time lattice constant
    size = (8, 32, 32)  # 4 cells over 32 px = 8 px per cell; drift 1 cell over 8 frames = 1 px per frame
    moving = perlin_noise(
        grads, size, cells, phase, tileable=True, drift=torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    )[0]
    for t in range(1, 8):
        torch.testing.assert_close(moving[t], torch.roll(moving[0], shifts=t, dims=1), atol=1e-5, rtol=0)
    static = perlin_noise(grads, size, cells, phase, tileable=True)[0]
    torch.testing.assert_close(static[0], moving[0], atol=1e-6, rtol=0)


def test_zero_drift_is_the_static_path_bit_for_bit():
    grads, cells, phase = _random_batch([(1, 2, 3), (4, 4, 4)], False)
    static = perlin_noise(grads, (8, 24, 24), cells, phase)
    zero = perlin_noise(grads, (8, 24, 24), cells, phase, drift=torch.zeros(2, 2, dtype=torch.float64))
    assert torch.equal(static, zero)


def test_drift_needs_its_lattice_nodes():
    grads = torch.zeros(1, 3, 4, 5, 5)
    with pytest.raises(ConfigError, match="3 cells drifting 1.5 need 7"):
        perlin_noise(grads, (4, 8, 8), torch.tensor([[1, 3, 1]]), drift=torch.tensor([[1.5, 0.0]]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    grads, cells, phase = _random_batch([(2, 3, 4), (4, 8, 8)], False)
    cpu = perlin_noise(grads, (16, 64, 64), cells, phase)
    gpu = perlin_noise(grads.cuda(), (16, 64, 64), cells.cuda(), phase.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-5, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_drifting_matches_cpu():
    grads, cells, phase, drift = _drifting_batch([(1, 2, 3), (2, 8, 8)], [(0.5, -1.25), (2.0, 3.0)], False)
    cpu = perlin_noise(grads, (16, 64, 64), cells, phase, drift=drift)
    gpu = perlin_noise(grads.cuda(), (16, 64, 64), cells.cuda(), phase.cuda(), drift=drift.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-5, rtol=0)
