"""Batch sources for the engine: VPN rendered on the fly, or real video through a DataLoader.

Both give ``steps(epoch)`` and ``batches(epoch, start) -> (clips, labels, skipped)`` for training,
and ``val_batches() -> (clips, labels, owners, skipped)`` where ``owners`` maps each clip to its
video (VPN: one clip per video), so the engine computes video-level accuracy the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from videoperlin.data.decode import FrameCache
from videoperlin.data.sources import load_source
from videoperlin.data.splits import split_train_val
from videoperlin.data.video_dataset import ClipDataset, WindowDataset, collate_clips, collate_windows
from videoperlin.train.config import RunConfig
from videoperlin.train.distributed import DistInfo
from videoperlin.train.sampler import EpochBatches
from videoperlin.vpn.dataset import VPNDataset
from videoperlin.vpn.labels import LabelSpace

log = logging.getLogger(__name__)

#: Offset added to the VPN seed for the held-out validation videos (never seen in training).
VPN_VAL_SEED_OFFSET = 1_000_003


def vpn_datasets(config: RunConfig) -> tuple[VPNDataset, VPNDataset]:
    """Training and held-out validation VPN datasets from the config."""
    v = config.vpn
    if any(x is not None for x in (v.fx, v.fy, v.ft)):
        space = LabelSpace(v.fx or [], v.fy or [], v.ft or [])
    else:
        space = LabelSpace.preset(v.preset)
    options = dict(frames=config.data.frames, size=config.data.size, octaves=v.octaves, persistence=v.persistence,
                   lacunarity=v.lacunarity, tileable=v.tileable, random_phase=v.random_phase,
                   contrast_jitter=v.contrast_jitter, brightness_jitter=v.brightness_jitter)
    train = VPNDataset(space, num_videos=v.num_videos, seed=config.train.seed, label_mode=v.label_mode, **options)
    val = VPNDataset(space, num_videos=max(v.val_videos, 2), seed=config.train.seed + VPN_VAL_SEED_OFFSET,
                     label_mode=v.label_mode, **options)
    return train, val


class VPNSource:
    """VPN clips rendered in the training process with ``ds.batch`` (thousands of clips/s)."""

    def __init__(self, config: RunConfig, dist: DistInfo, device: torch.device) -> None:
        self.train, self.val = vpn_datasets(config)
        self.class_names = self.train.space.names()
        self.device = device
        self.sampler = EpochBatches(len(self.train), config.train.batch_size, config.train.seed,
                                    rank=dist.rank, world_size=dist.world_size)
        self.val_sampler = EpochBatches(len(self.val), config.train.batch_size, train=False,
                                        rank=dist.rank, world_size=dist.world_size)

    def steps(self, epoch: int) -> int:
        return len(self.sampler)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        for indices in self.sampler.batches(epoch, start):
            clips, labels = self.train.batch(indices, device=self.device)
            yield clips, labels, 0

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]:
        for indices in self.val_sampler.batches(0):
            clips, labels = self.val.batch(indices, device=self.device)
            yield clips, labels, torch.tensor(indices), 0


class VideoSource:
    """Real videos: random clips for training, sliding windows for video-level validation."""

    def __init__(self, config: RunConfig, dist: DistInfo, device: torch.device) -> None:
        d = config.data
        source = load_source(d.data, d.dataset, d.split, d.splits_dir)
        if d.val_data:
            train_records, val_records = source.records, load_source(d.val_data, d.dataset, d.split, d.splits_dir).records
        else:
            train_records, val_records = split_train_val(source, d.fold, d.folds, d.val_fraction, config.train.seed)
        self.class_names = source.class_names
        cache_dir = d.cache_dir or str(Path.home() / ".cache" / "videoperlin" / "frames")
        cache = FrameCache(cache_dir, d.short_side)
        common = dict(cache=cache, frames=d.frames, size=d.size, stride=d.stride, on_bad_video=d.on_bad_video)
        self.train = ClipDataset(train_records, seed=config.train.seed, scale=(d.scale_min, 1.0), **common)
        self.val = WindowDataset(val_records, window_stride=d.window_stride, max_windows=d.max_windows, **common)
        self.workers = d.workers
        self.sampler = EpochBatches(len(self.train), config.train.batch_size, config.train.seed,
                                    rank=dist.rank, world_size=dist.world_size)
        self.val_sampler = EpochBatches(len(self.val), max(1, config.train.batch_size // 4), train=False,
                                        rank=dist.rank, world_size=dist.world_size)
        log.info("%s: %d training and %d validation videos, %d classes", d.data, len(self.train),
                 len(self.val), len(self.class_names))

    def steps(self, epoch: int) -> int:
        return len(self.sampler)

    def _loader(self, dataset, batches, collate, seed: int) -> DataLoader:
        # A DataLoader of its own generator: creating an iterator otherwise draws from the global
        # torch RNG (for worker seeds), which would shift dropout masks after a resume.
        return DataLoader(dataset, batch_sampler=batches, num_workers=self.workers, collate_fn=collate,
                          persistent_workers=False, prefetch_factor=2 if self.workers else None,
                          generator=torch.Generator().manual_seed(seed))

    def batches(self, epoch: int, start: int = 0):
        self.train.set_epoch(epoch)
        yield from self._loader(self.train, list(self.sampler.batches(epoch, start)), collate_clips,
                                seed=self.sampler.seed * 1_000_003 + epoch)

    def val_batches(self):
        yield from self._loader(self.val, list(self.val_sampler.batches(0)), collate_windows, seed=self.sampler.seed)


def build_source(config: RunConfig, dist: DistInfo, device: torch.device):
    """VPN on the fly for ``pretrain`` without ``data.data``; otherwise the real-video (or exported VPN) source."""
    if config.task == "pretrain" and not config.data.data:
        return VPNSource(config, dist, device)
    return VideoSource(config, dist, device)
