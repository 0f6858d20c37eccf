"""Deterministic epoch order: a permutation seeded by (seed, epoch), split across ranks, cut into
batches, and resumable from any batch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class EpochBatches:
    """Batches of dataset indices for one rank; identical for the same (seed, epoch) everywhere."""

    def __init__(self, size: int, batch_size: int, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1) -> None:
        self.size, self.batch_size, self.seed, self.shuffle = size, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size

    def indices(self, epoch: int) -> np.ndarray:
        """This rank's indices for ``epoch`` (padded by wrapping so every rank has the same count)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size) if self.shuffle else np.arange(self.size)
        per_rank = -(-self.size // self.world_size)
        order = np.resize(order, per_rank * self.world_size)
        return order[self.rank::self.world_size]

    def batches(self, epoch: int, start: int = 0) -> Iterator[list[int]]:
        """Batches of ``epoch`` from batch number ``start`` on (a final batch of 1 is dropped: BatchNorm)."""
        mine = self.indices(epoch)
        for number in range(start, len(self)):
            batch = mine[number * self.batch_size:(number + 1) * self.batch_size]
            yield [int(i) for i in batch]

    def __len__(self) -> int:
        per_rank = -(-self.size // self.world_size)
        full, rest = divmod(per_rank, self.batch_size)
        return full + (1 if rest >= 2 else 0)
