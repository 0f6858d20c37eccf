"""Train/validation splits for sources without predefined subsets.

* records with groups (actor, sequence...): group k-fold -- groups sorted, group i goes to fold
  ``i % folds``; fold ``fold`` is the validation set, so no group is on both sides;
* otherwise a stratified split: within each class, a seeded permutation puts ``val_fraction``
  of the videos (at least one) in validation.
"""

from __future__ import annotations

import numpy as np

from videoperlin.data.sources import VideoRecord, VideoSource
from videoperlin.errors import ConfigError


def group_folds(records: list[VideoRecord], folds: int) -> dict[str, int]:
    """Fold of every group."""
    groups = sorted({r.group for r in records if r.group is not None})
    if len(groups) < folds:
        raise ConfigError(f"{folds} folds need at least {folds} groups; the data has {len(groups)}: {groups}")
    return {g: i % folds for i, g in enumerate(groups)}


def split_train_val(source: VideoSource, fold: int = 0, folds: int = 5, val_fraction: float = 0.2,
                    seed: int = 0) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """(train, val) records: predefined subsets if present, else group folds, else stratified."""
    if any(r.subset for r in source.records):
        train, val = source.subset("train"), source.subset("val")
        if not train or not val:
            raise ConfigError(f"{source.kind} data lacks a {'train' if not train else 'val'} subset")
        return train, val
    if not 0 <= fold < folds:
        raise ConfigError(f"fold {fold} must be in 0..{folds - 1}")
    if all(r.group is not None for r in source.records):
        assignment = group_folds(source.records, folds)
        return ([r for r in source.records if assignment[r.group] != fold],
                [r for r in source.records if assignment[r.group] == fold])
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction {val_fraction} must be in (0, 1)")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(len(source.class_names)):
        members = [r for r in source.records if r.label == label]
        order = rng.permutation(len(members))
        n_val = max(1, round(val_fraction * len(members))) if len(members) > 1 else 0
        val += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    return train, val
