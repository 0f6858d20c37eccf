"""Running a protocol: pre-train every arm once per (architecture, pre-training seed), then fine-tune
every arm on every dataset, fold and seed.

Pre-trained checkpoints live in a cache keyed by the fields of their run config that differ from
the defaults, so protocol variants share them (``--pretrain-cache``) and a change that matters
retrains. Finished fine-tuning runs are reused from the output folder, so an interrupted study
resumes where it stopped (an unfinished run continues from its ``last.pt``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoperlin.analysis.curves import read_metrics
from videoperlin.data.sources import load_catalog
from videoperlin.errors import ConfigError
from videoperlin.models import create_model
from videoperlin.models.checkpoint import save_model
from videoperlin.models.inflate import inflate_2d
from videoperlin.study.protocol import INFLATED, SCRATCH, Protocol, StudyDataset
from videoperlin.train.checkpointing import load_checkpoint
from videoperlin.train.config import RunConfig, flatten
from videoperlin.train.engine import Trainer
from videoperlin.utils.fields import to_dict

log = logging.getLogger(__name__)
#: Fields of a run config that do not change what a run computes (left out of the cache key): validation
#: reads the model in eval mode and draws no random numbers, so val_every changes no weight.
NOT_IN_KEY = ("train.out", "train.progress", "train.val_every")


@dataclass(frozen=True)
class Init:
    """Where an arm starts fine-tuning: ``checkpoint`` None for scratch; ``pretrain_seed`` None when
    the arm is not pre-trained here (scratch, inflated)."""

    arch: str
    arm: str
    pretrain_seed: int | None
    checkpoint: Path | None


def cache_key(config: RunConfig) -> str:
    """Digest of the fields that differ from a default run config of the same task."""
    defaults = flatten(to_dict(RunConfig(task=config.task)))
    changed = {k: v for k, v in flatten(config.to_dict()).items() if v != defaults.get(k) and k not in NOT_IN_KEY}
    return hashlib.sha1(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:10]


def pretrained(protocol: Protocol, arm: str, arch: str, seed: int, cache: Path) -> Path:
    """The last checkpoint of ``arm``'s pre-training for ``arch`` and ``seed``, training it if needed."""
    probe = protocol.pretrain_config(arm, arch, seed, "-")
    config = protocol.pretrain_config(arm, arch, seed, cache / f"{arch}-{arm}-s{seed}-{cache_key(probe)}")
    last = Path(config.train.out) / "checkpoints" / "last.pt"
    if not (last.exists() and load_checkpoint(last)["position"]["epoch"] >= config.train.epochs):
        log.info("pre-training %s %s seed %d -> %s", arch, arm, seed, config.train.out)
        Trainer(config, resume=True).fit()
    return last


def inflated(protocol: Protocol, arch: str, cache: Path) -> Path:
    """``arch`` with the protocol's 2D weights inflated into it (saved once in the cache)."""
    target = cache / f"{arch}-inflated"
    if not (target / "model.safetensors").exists():
        options = {k: v for k, v in protocol.common.get("model", {}).items() if k != "name"}
        model = create_model(arch, num_classes=1000, **{**options, "temporal_padding": "zeros"})
        inflate_2d(model, protocol.inflate_from, drop_classifier=True)
        save_model(model, target, extra={"inflated_from": str(protocol.inflate_from)})
    return target


def initialisations(protocol: Protocol, cache: Path) -> list[Init]:
    """Every (architecture, arm, pre-training seed) start point, pre-training what is missing."""
    inits = []
    for arch in protocol.archs:
        for arm in protocol.arms:
            if arm == SCRATCH:
                inits.append(Init(arch, arm, None, None))
            elif arm == INFLATED:
                if arch.startswith("r3d"):
                    inits.append(Init(arch, arm, None, inflated(protocol, arch, cache)))
                else:
                    log.info("skipping inflated %s: 2D weights inflate into full 3D convolutions only", arch)
            else:
                inits += [Init(arch, arm, s, pretrained(protocol, arm, arch, s, cache)) for s in protocol.pretrain_seeds]
    return inits


def run_directory(out: Path, entry: StudyDataset, init: Init, fold: int, seed: int) -> Path:
    pseed = "" if init.pretrain_seed is None else f"-pseed{init.pretrain_seed}"
    return out / "finetune" / entry.name / init.arch / init.arm / f"fold{fold}-seed{seed}{pseed}"


def start_point(protocol: Protocol, entry: StudyDataset, init: Init, seed: int, out: Path) -> Path | None:
    """The checkpoint a run on ``entry`` starts from: the arm's own init, or (a chain) the arm's final
    checkpoint on the earlier dataset ``entry.after`` with the same seed."""
    if entry.after is None:
        return init.checkpoint
    earlier = next(d for d in protocol.datasets if d.name == entry.after)
    return run_directory(out, earlier, init, 0, seed) / "checkpoints" / "last.pt"


def finetune(protocol: Protocol, entry: StudyDataset, init: Init, fold: int, seed: int, out: Path) -> dict[str, Any]:
    """One fine-tuning run (reused if finished); its result row."""
    run = run_directory(out, entry, init, fold, seed)
    start = start_point(protocol, entry, init, seed, out)
    config = protocol.finetune_config(entry, init.arch, fold, seed, start, run, str(out / "frame-cache"))
    done = (run / "metrics.jsonl").exists() and read_metrics(run)[-1]["epoch"] >= config.train.epochs
    began = time.perf_counter()
    if not done:
        Trainer(config, resume=True).fit()
    final = next(r for r in reversed(read_metrics(run)) if "val_acc" in r)
    log.info("%s %s %s fold %d seed %d%s: video top-1 %.3f (%.0f s)", entry.name, init.arch, init.arm, fold, seed,
             "" if init.pretrain_seed is None else f" pre-training seed {init.pretrain_seed}", final["val_acc"],
             time.perf_counter() - began)
    return {"arm": init.arm, "arch": init.arch, "dataset": entry.name, "fold": fold, "seed": seed,
            "pretrain_seed": "" if init.pretrain_seed is None else init.pretrain_seed,
            "video_top1": final["val_acc"], "clip_top1": final.get("val_clip_acc"), "run": str(run)}


def check_datasets(protocol: Protocol) -> None:
    """Every dataset loads, and group folds have groups to fold."""
    for entry in protocol.datasets:
        catalog = load_catalog(entry.data, entry.dataset, entry.split or 1, entry.splits_dir)
        if entry.fixed_split:
            continue
        if any(r.subset for r in catalog.records):
            raise ConfigError(f"{entry.name}: {entry.data} has predefined train/test subsets (split files or a "
                              f"split column); set split: N in its entry to use them")
        if any(r.group is None for r in catalog.records):
            raise ConfigError(f"{entry.name}: every video needs a group (actor/sequence) for group folds; "
                              f"or give val_data or split for a fixed train/test split")
        bad = [f for f in protocol.run_folds if not 0 <= f < entry.folds]
        if bad:
            raise ConfigError(f"run_folds {bad} are outside 0..{entry.folds - 1} for {entry.name}")


def run_study(protocol: Protocol, out: Path, cache: Path, on_row=None) -> tuple[list[dict[str, Any]], list[Init]]:
    """Pre-train (or reuse from ``cache``) every arm, then fine-tune every arm x dataset x fold x seed.

    Fine-tuning runs live under ``out`` and are reused only from there: a protocol variant with
    other fine-tuning settings needs its own ``out`` (it can share ``cache``). ``on_row(rows)`` is
    called after every run (e.g. to write results.csv as the study goes).
    """
    check_datasets(protocol)
    inits = initialisations(protocol, cache)
    rows: list[dict[str, Any]] = []
    for entry in protocol.datasets:
        for init in inits:
            for fold in protocol.folds_of(entry):
                for seed in protocol.seeds:
                    rows.append(finetune(protocol, entry, init, fold, seed, out))
                    if on_row:
                        on_row(rows)
    return rows, inits
