"""Deterministic epoch order: a permutation seeded by (seed, epoch), split across ranks, cut into
batches, and resumable from any batch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class EpochBatches:
    """Batches of dataset indices for one rank; identical for the same (seed, epoch) everywhere.

    Training (``train=True``): shuffled, padded by wrapping so every rank takes the same number of
    steps (DDP), and a final batch of one sample is dropped (BatchNorm cannot train on it).
    Evaluation (``train=False``): in order, every index exactly once, nothing dropped.
    """

    def __init__(
        self, size: int, batch_size: int, seed: int = 0, train: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        self.size, self.batch_size, self.seed, self.train = size, batch_size, seed, train
        self.rank, self.world_size = rank, world_size

    def indices(self, epoch: int) -> np.ndarray:
        """This rank's indices for ``epoch``."""
        if not self.train:
            return np.arange(self.rank, self.size, self.world_size)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        per_rank = -(-self.size // self.world_size)
        return np.resize(order, per_rank * self.world_size)[self.rank :: self.world_size]

    def batches(self, epoch: int, start: int = 0) -> Iterator[list[int]]:
        """Batches of ``epoch`` from batch number ``start`` on."""
        mine = self.indices(epoch)
        for number in range(start, len(self)):
            batch = mine[number * self.batch_size : (number + 1) * self.batch_size]
            yield [int(i) for i in batch]

    def __len__(self) -> int:
        mine = len(self.indices(0)) if not self.train else -(-self.size // self.world_size)
        full, rest = divmod(mine, self.batch_size)
        return full + (1 if rest >= (2 if self.train else 1) else 0)


class EpochBatchSampler:
    """The batch sampler of a *persistent* DataLoader: each iteration yields the batches of the current
    epoch from a start batch (:meth:`set_epoch`), every index paired with its epoch, because the
    workers' copies of the dataset never see a ``set_epoch`` call made in the main process. The
    worker processes then live for the whole run instead of being spawned every epoch."""

    def __init__(self, batches: EpochBatches) -> None:
        self.batches, self.epoch, self.start = batches, 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate ``epoch`` from batch number ``start`` on (resume)."""
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self.batches.batches(self.epoch, self.start):
            yield [(self.epoch, index) for index in batch]

    def __len__(self) -> int:
        return len(self.batches) - self.start
