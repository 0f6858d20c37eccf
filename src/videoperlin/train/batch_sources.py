"""Batch sources for the engine: VPN rendered on the fly, or real video through a DataLoader.

Both offer ``steps(epoch)``, ``batches(epoch, start)`` (training) and ``val_batches()``
(validation), each yielding :class:`~videoperlin.data.video_dataset.Batch` records. Validation
batches tag every clip with its video, so the engine scores VPN (one clip per video) and real
video (several windows per video) the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from videoperlin.data.splits import split_records
from videoperlin.data.video_dataset import Batch, ClipDataset, WindowDataset, collate_clips, collate_windows
from videoperlin.train.config import RunConfig
from videoperlin.train.distributed import DistInfo
from videoperlin.train.sampler import EpochBatches, EpochBatchSampler
from videoperlin.vpn.dataset import SyntheticDataset

log = logging.getLogger(__name__)

#: Offset added to the VPN seed for the held-out validation videos (never seen in training).
VPN_VAL_SEED_OFFSET = 1_000_003


def vpn_datasets(config: RunConfig) -> tuple[SyntheticDataset, SyntheticDataset]:
    """Training and held-out validation sets of the config's clip source (``synthetic``), at the clip geometry
    of ``data`` and the seed of ``train`` (validation: another seed)."""
    v, seed = config.synthetic, config.train.seed
    return v.dataset(config.data, seed), v.dataset(config.data, seed + VPN_VAL_SEED_OFFSET, v.val_videos)


def window_dataset(config: RunConfig, records, max_windows: int | None) -> WindowDataset:
    """Validation/evaluation windows of ``records`` as the config's ``data`` section cuts them."""
    d = config.data
    return WindowDataset(
        records,
        d.frame_cache(),
        d.frames,
        d.size,
        stride=d.stride,
        on_bad_video=d.on_bad_video,
        window_stride=d.window_stride,
        max_windows=max_windows,
    )


#: On CUDA, VPN batches are rendered this many clips at a time (several steps ahead): one render
#: launches ~100 small kernels whatever its size, so small batches are launch-bound (benchmarks/
#: results/gpu: 7.8k clips/s at 32 clips, 105k at 512). Clips depend only on (seed, index), so
#: rendering ahead changes no clip and keeps exact resume. The CPU renders batch by batch.
CUDA_RENDER_CLIPS = 512


def render_ahead(dataset: SyntheticDataset, batches: Iterator[list[int]], device: torch.device) -> Iterator[Batch]:
    """``Batch``es of ``batches``' indices, rendered ``CUDA_RENDER_CLIPS`` clips at a time on CUDA."""
    group: list[list[int]] = []
    for indices in batches:
        group.append(indices)
        if device.type == "cpu" or sum(map(len, group)) >= CUDA_RENDER_CLIPS:
            yield from _split(dataset, group, device)
            group = []
    if group:
        yield from _split(dataset, group, device)


def _split(dataset: SyntheticDataset, group: list[list[int]], device: torch.device) -> Iterator[Batch]:
    clips, labels = dataset.batch([i for indices in group for i in indices], device=device)
    start = 0
    for indices in group:
        yield Batch(
            clips[start : start + len(indices)], labels[start : start + len(indices)], videos=torch.tensor(indices)
        )
        start += len(indices)


class RenderedBatches(torch.utils.data.Dataset):
    """Whole batches of a synthetic dataset, item ``i`` the clips of ``batches[i]``: what a render worker makes."""

    def __init__(self, dataset: SyntheticDataset, batches: list[list[int]]) -> None:
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        clips, labels = self.dataset.batch(self.batches[i])
        return Batch(clips, labels, videos=torch.tensor(self.batches[i]))


def one_thread(_: int) -> None:
    """A render worker computes with one thread: the training process keeps the others."""
    torch.set_num_threads(1)


def render_in_workers(dataset: SyntheticDataset, batches: list[list[int]], workers: int) -> Iterator[Batch]:
    """``Batch``es of ``batches`` rendered ahead by ``workers`` processes (clips depend only on (seed,
    index), so where a clip is rendered changes nothing)."""
    loader = DataLoader(
        RenderedBatches(dataset, batches),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=2,
        worker_init_fn=one_thread,
        generator=torch.Generator().manual_seed(0),  # the global RNG is not drawn from
    )
    yield from loader


class VPNBatches:
    """VPN clips rendered with ``ds.batch`` (thousands of clips/s): in the training process, on CUDA
    several steps ahead (:data:`CUDA_RENDER_CLIPS`), or on the CPU by ``synthetic.workers`` processes ahead of
    the step (for families slower to render than a step: ``benchmarks/vit.py``)."""

    def __init__(self, config: RunConfig, dist: DistInfo, device: torch.device) -> None:
        self.train, self.val = vpn_datasets(config)
        self.class_names = self.train.space.names()
        self.device = device
        self.workers = config.synthetic.workers if device.type == "cpu" else 0
        self.sampler = EpochBatches(
            len(self.train), config.train.batch_size, config.train.seed, rank=dist.rank, world_size=dist.world_size
        )
        self.val_sampler = EpochBatches(
            len(self.val), config.train.batch_size, train=False, rank=dist.rank, world_size=dist.world_size
        )

    def steps(self, epoch: int) -> int:
        return len(self.sampler)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        if self.workers:
            yield from render_in_workers(self.train, list(self.sampler.batches(epoch, start)), self.workers)
        else:
            yield from render_ahead(self.train, self.sampler.batches(epoch, start), self.device)

    def val_batches(self) -> Iterator[Batch]:
        yield from render_ahead(self.val, self.val_sampler.batches(0), self.device)


class VideoBatches:
    """Real videos: random clips for training, sliding windows for video-level validation."""

    def __init__(self, config: RunConfig, dist: DistInfo, device: torch.device) -> None:
        d = config.data
        split = split_records(d, config.train.seed)
        self.class_names = split.class_names
        cache = d.frame_cache()
        self.train = ClipDataset(
            split.train,
            cache,
            d.frames,
            d.size,
            stride=d.stride,
            on_bad_video=d.on_bad_video,
            seed=config.train.seed,
            scale=(d.scale_min, 1.0),
        )
        self.val = window_dataset(config, split.val, d.max_windows)
        self.workers = d.workers
        self.sampler = EpochBatches(
            len(self.train), config.train.batch_size, config.train.seed, rank=dist.rank, world_size=dist.world_size
        )
        val_sampler = EpochBatches(
            len(self.val), max(1, config.train.batch_size // 4), train=False, rank=dist.rank, world_size=dist.world_size
        )
        # Persistent loaders: worker processes start once per run, not once per epoch.
        self.train_order = EpochBatchSampler(self.sampler)
        self.train_loader = self._loader(self.train, self.train_order, collate_clips, config.train.seed)
        self.val_loader = self._loader(self.val, list(val_sampler.batches(0)), collate_windows, config.train.seed)
        log.info(
            "%s: %d training and %d validation videos, %d classes",
            d.path,
            len(self.train),
            len(self.val),
            len(self.class_names),
        )
        log.info("%s", cache.describe())

    def steps(self, epoch: int) -> int:
        return len(self.sampler)

    def _loader(self, dataset, batches, collate, seed: int) -> DataLoader:
        # A DataLoader of its own generator: creating an iterator otherwise draws from the global
        # torch RNG (for worker seeds), which would shift dropout masks after a resume. Randomness of
        # the clips comes from (seed, epoch, index), never from the workers.
        return DataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=self.workers,
            collate_fn=collate,
            persistent_workers=self.workers > 0,
            prefetch_factor=2 if self.workers else None,
            generator=torch.Generator().manual_seed(seed),
        )

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        self.train_order.set_epoch(epoch, start)
        yield from self.train_loader

    def val_batches(self) -> Iterator[Batch]:
        yield from self.val_loader


def build_batches(config: RunConfig, dist: DistInfo, device: torch.device) -> VPNBatches | VideoBatches:
    """VPN on the fly for ``pretrain`` without ``data.path``; otherwise real (or exported VPN) video."""
    if config.task == "pretrain" and not config.data.path:
        return VPNBatches(config, dist, device)
    return VideoBatches(config, dist, device)
