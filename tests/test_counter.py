"""rng="counter": hashed draws computed per batch on the render device (videoperlin.vpn.draws.CounterDraws).

Its clips must be as exact as the generator's (per-voxel reference), independent of the batch, the
same distribution as the generator's clips, and a stable format (pinned with the generator's in
test_dataset.PINNED). The CUDA = CPU check is tests/test_gpu.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import spectral_features
from reference_perlin import reference_perlin

from videoperlin.vpn import (
    PerlinOptions,
    SyntheticDataset,
    frequency_preset,
    frequency_space,
)
from videoperlin.vpn.draws import clip_keys, uniform

JITTERED_MOTION = {"rng": "counter", "direction_jitter": 15.0, "speed_jitter": 0.25}


def test_uniform_draws_are_uniform_and_distinct_per_clip():
    keys = clip_keys(3, torch.arange(2_000))
    u = uniform(keys[:, None], torch.arange(100))
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.003 and abs(u.var().item() - 1 / 12) < 0.002
    counts = torch.histc(u.float(), bins=20, min=0, max=1)
    assert (counts / counts.mean() - 1).abs().max() < 0.05, counts
    assert len(set(keys.tolist())) == len(keys)  # no two clips share a key
    assert not torch.equal(clip_keys(4, torch.arange(10)), clip_keys(3, torch.arange(10)))
    within = torch.corrcoef(torch.stack([u[:, 0], u[:, 1]]))[0, 1]  # two draws of one clip
    across = torch.corrcoef(torch.stack([u[:-1, 0], u[1:, 0]]))[0, 1]  # one draw of neighbouring clips
    assert abs(within) < 0.06 and abs(across) < 0.06, (within, across)


@pytest.mark.parametrize(
    "preset, options",
    [("low", {}), ("high", {}), ("motion", JITTERED_MOTION), ("tiny", {"octaves": 2, "tileable": True})],
)
def test_counter_clips_match_the_per_voxel_reference(preset, options):
    ds = SyntheticDataset(
        frequency_preset(preset), num_videos=10_000, frames=8, size=40, seed=2, **{"rng": "counter", **options}
    )
    indices = [0, 7, 153, 4_321, 9_998]
    clips, labels = ds.batch(indices)
    for row, index in enumerate(indices):
        p = ds.sample_params(index)
        assert p.label == labels[row] == ds.label(index)
        noise = sum(
            reference_perlin(
                g.double().numpy(),
                (ds.frames, ds.height, ds.width),
                c,
                tuple(p.phases[o].tolist()),
                ds.options.tileable,
                p.drift[o],
            )
            for o, (g, c) in enumerate(zip(p.gradients, p.cells))
        )
        gray = np.clip(0.5 + p.brightness + p.contrast * ds.family.intensity_scale * noise, 0.0, 1.0)
        assert np.abs(gray - clips[row, 0].numpy()).max() <= 1e-5


def test_counter_batches_ignore_composition_and_order():
    ds = SyntheticDataset(frequency_preset("motion"), num_videos=1_000, frames=8, size=32, seed=1, **JITTERED_MOTION)
    clips, _ = ds.batch([9, 2, 40, 500])
    reordered, _ = ds.batch([500, 40, 2])
    for row, back in ((1, 2), (2, 1), (3, 0)):
        torch.testing.assert_close(reordered[back], clips[row], atol=1e-6, rtol=0)
    torch.testing.assert_close(ds[9][0], clips[0], atol=1e-6, rtol=0)


def test_counter_keeps_the_class_geometry_of_the_generator():
    """Same label, cells and (without jitter) drift as the generator; only the random values differ."""
    space = frequency_preset("motion")
    generator = SyntheticDataset(space, num_videos=1_000, frames=8, size=48, seed=0)
    counter = SyntheticDataset(space, num_videos=1_000, frames=8, size=48, seed=0, rng="counter")
    for index in (0, 1, 77, 152, 400):
        g, c = generator.sample_params(index), counter.sample_params(index)
        assert (g.label, g.cells) == (c.label, c.cells)
        np.testing.assert_allclose(c.drift, g.drift, atol=1e-12)
        assert not torch.equal(g.phases, c.phases)


def test_counter_clips_follow_the_generator_distribution():
    """Class centroids of spectral features learnt on generator clips classify counter clips as well
    as held-out generator clips (same distribution), far above chance."""
    space = frequency_space(fx=[1, 2, 4, 8], fy=[1, 3, 8], ft=[1, 4])  # 24 classes, chance 4.2%
    make = {"num_videos": len(space) * 16, "frames": 16, "size": 64, "seed": 0}
    generator, counter = SyntheticDataset(space, **make), SyntheticDataset(space, **make, rng="counter")
    feats, labels = {}, None
    for name, ds in (("generator", generator), ("counter", counter)):
        clips, labels = ds.batch(range(len(ds)))
        feats[name] = spectral_features(clips[:, 0])
    train = torch.arange(len(labels)) < len(space) * 8
    centroids = torch.stack([feats["generator"][train & (labels == k)].mean(0) for k in range(len(space))])

    def accuracy(f):
        return (torch.cdist(f[~train], centroids).argmin(1) == labels[~train]).float().mean().item()

    same, other = accuracy(feats["generator"]), accuracy(feats["counter"])
    assert other > 0.5 and abs(other - same) < 0.1, (same, other)
    small = {"num_videos": 3_000, "frames": 8, "size": 32, "seed": 0}  # moments over 3,000 clips: std of a mean ~0.0012
    a, b = (SyntheticDataset(space, **small, rng=rng).batch(range(3_000))[0] for rng in ("generator", "counter"))
    assert abs(a.std().item() - b.std().item()) < 0.005 and abs(a.mean().item() - b.mean().item()) < 0.006


def test_rng_is_recorded_and_old_records_read_as_generator():
    ds = SyntheticDataset(frequency_preset("tiny"), num_videos=10, frames=8, size=32, rng="counter")
    record = ds.to_dict()
    assert record["rng"] == "counter" and SyntheticDataset.from_dict(record).options.rng == "counter"
    del record["rng"]
    assert SyntheticDataset.from_dict(record).options == PerlinOptions()
