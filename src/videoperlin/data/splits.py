"""Train/validation splits: :func:`split_records` builds a run's split from its :class:`DataConfig`
(one builder for training and evaluation). Catalogs with predefined subsets (UCF-101/HMDB-51
split files, Kinetics and ActivityNet subsets) keep them; for the others:

* records with groups (actor, sequence...): group k-fold -- groups sorted, group i goes to fold
  ``i % folds``; fold ``fold`` is the validation set, so no group is on both sides;
* otherwise a stratified split: within each class, a seeded permutation puts ``val_fraction``
  of the videos (at least one) in validation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from videoperlin.data.config import DataConfig
from videoperlin.data.sources import VideoCatalog, VideoRecord, load_catalog
from videoperlin.errors import ConfigError, DataError, quoted


@dataclass
class DataSplit:
    """A run's training and validation records, labelled in one class list."""

    train: list[VideoRecord]
    val: list[VideoRecord]
    class_names: list[str]
    kind: str

    def subset(self, name: str) -> list[VideoRecord]:
        """``train``, ``val`` or ``all`` records."""
        return {"train": self.train, "val": self.val, "all": self.train + self.val}[name]


def split_records(data: DataConfig, seed: int) -> DataSplit:
    """The split a run with this ``data`` section and ``train.seed`` trains and validates on."""
    if not data.path:
        raise ConfigError(
            "data.path is not set: give --data (class folders, CSV manifest, UCF-101/HMDB-51 root, "
            "Kinetics CSV or ActivityNet JSON)"
        )
    catalog = load_catalog(data.path, data.dataset, data.split, data.splits_dir)
    if data.val_path:
        val_catalog = load_catalog(data.val_path, data.dataset, data.split, data.splits_dir)
        return DataSplit(
            catalog.records, relabel(val_catalog, catalog.class_names, data.val_path), catalog.class_names, catalog.kind
        )
    train, val = split_train_val(catalog, data.fold, data.folds, data.val_fraction, seed)
    _check_every_class_trains(train, catalog, data)
    return DataSplit(train, val, catalog.class_names, catalog.kind)


def _check_every_class_trains(train: list[VideoRecord], catalog: VideoCatalog, data: DataConfig) -> None:
    """Refuse a split whose training side lacks a class: the head would have an output never trained,
    and validation would score it."""
    absent = sorted(set(range(len(catalog.class_names))) - {r.label for r in train})
    if not absent:
        return
    name = catalog.class_names[absent[0]]
    groups = sorted({str(r.group) for r in catalog.records if r.label == absent[0] and r.group is not None})
    where = (
        f"fold {data.fold} of {data.folds} (its group(s) {', '.join(groups[:5])} all fall in validation)"
        if groups and not any(r.subset for r in catalog.records)
        else f"the training split of {data.path}"
    )
    more = f" (and {len(absent) - 1} more class(es))" if len(absent) > 1 else ""
    raise DataError(
        f"class {quoted(name)}{more} has no training video in {where}; add videos of it from other groups, "
        f"use fewer folds (data.folds), or leave the class out of the data"
    )


def relabel(catalog: VideoCatalog, class_names: list[str], where: str) -> list[VideoRecord]:
    """``catalog``'s records with labels indexing ``class_names`` (matched by name, never by position)."""
    index = {name: k for k, name in enumerate(class_names)}
    unknown = sorted({catalog.class_names[r.label] for r in catalog.records} - set(index))
    if unknown:
        raise DataError(
            f"{where} has classes the training data lacks: {', '.join(unknown[:5])}; "
            f"validation classes must be a subset of the training classes"
        )
    return [dataclasses.replace(r, label=index[catalog.class_names[r.label]]) for r in catalog.records]


def group_folds(records: list[VideoRecord], folds: int) -> dict[str, int]:
    """Fold of every group."""
    groups = sorted({r.group for r in records if r.group is not None})
    if len(groups) < folds:
        raise DataError(f"{folds} folds need at least {folds} groups; the data has {len(groups)}: {groups}")
    return {g: i % folds for i, g in enumerate(groups)}


def split_train_val(
    source: VideoCatalog, fold: int = 0, folds: int = 5, val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """(train, val) records: predefined subsets if present, else group folds, else stratified."""
    if any(r.subset for r in source.records):
        train, val = source.subset("train"), source.subset("val")
        if not train or not val:
            raise DataError(f"{source.kind} data lacks a {'train' if not train else 'val'} subset")
        return train, val
    if not 0 <= fold < folds:
        raise ConfigError(f"fold {fold} must be in 0..{folds - 1}")
    if all(r.group is not None for r in source.records):
        assignment = group_folds(source.records, folds)
        return (
            [r for r in source.records if assignment[str(r.group)] != fold],
            [r for r in source.records if assignment[str(r.group)] == fold],
        )
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
