"""Running a protocol: pre-train every arm once per (architecture, pre-training seed), then fine-tune
every arm on every dataset, fold and seed.

Pre-trained checkpoints live in a cache keyed by the fields of their run config that differ from
the defaults, so protocol variants share them (``--pretrain-cache``) and a change that matters
retrains. Finished fine-tuning runs are reused from the output folder, so an interrupted study
resumes where it stopped (an unfinished run continues from its ``last.pt``).

One bad run does not end a study (:func:`train_or_fall_back`): a run that fails is marked
(``failed.json`` in its directory, with the error) and retried once from nothing with the safe
setting, ``train.amp=off`` (fp32), in a directory of its own; if that fails too, the run is recorded
as failed (its result row carries the error, and every fine-tuning from a failed pre-training does
too), the other runs go on, and ``videoperlin transfer`` exits non-zero at the end naming what
failed. A resumed study honours the marks (it does not repeat a failure); delete a run's directory
to try it again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoperlin.config_fields import to_dict
from videoperlin.data.sources import load_catalog
from videoperlin.errors import ConfigError
from videoperlin.models import architecture, create_model
from videoperlin.models.inflate import inflate_2d
from videoperlin.models.weight_files import save_model
from videoperlin.study.protocol import INFLATED, SCRATCH, Protocol, StudyDataset
from videoperlin.train.config import (
    PATH_FIELDS,
    RunConfig,
    config_from_record,
    flatten,
    read_yaml,
    with_absolute_paths,
)
from videoperlin.train.engine import Trainer
from videoperlin.train.lifecycle import SettingsChanged
from videoperlin.train.run_dir import RunDir

log = logging.getLogger(__name__)
#: Fields of a run config that do not change what a run computes (left out of the cache key): validation
#: reads the model in eval mode and draws no random numbers, so val_every changes no weight; a clip is the
#: same whichever process renders it (synthetic.workers).
NOT_IN_KEY = ("train.out", "train.progress", "train.val_every", "synthetic.workers")


@dataclass(frozen=True)
class Init:
    """Where an arm starts fine-tuning: ``checkpoint`` None for scratch; ``pretrain_seed`` None when
    the arm is not pre-trained here (scratch, inflated); ``failure`` the error of a pre-training
    that failed (then there is no checkpoint and no fine-tuning from it)."""

    arch: str
    arm: str
    pretrain_seed: int | None
    checkpoint: Path | None
    failure: str | None = None
    #: the pretrain_arms entry it was pre-trained as, when not the arm itself (``arm_variants``)
    pretrained_as: str | None = None


class RunFailed(Exception):
    """A study run failed, and so did its fp32 retry: ``str(exc)`` says what and why, on one line."""


#: Longest error text kept in a mark, a result row or a report line.
ERROR_CHARS = 300


def error_line(exc: BaseException) -> str:
    """``Type: message`` of ``exc``, first line only, at most :data:`ERROR_CHARS` characters."""
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def fp32_retry(config: RunConfig, out: Path) -> RunConfig:
    """``config`` with ``train.amp=off`` writing to ``out``: the retry of a failed run."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, amp="off", out=str(out)))


def train_or_fall_back(config: RunConfig, retry_out: Path, what: str) -> RunDir:
    """Train ``config`` (resuming; reused when its epochs are done), else mark it failed and train its
    fp32 retry at ``retry_out``. The run that finished; :class:`RunFailed` when both failed."""
    errors = []
    for attempt in (config, fp32_retry(config, retry_out)):
        run = RunDir(Path(attempt.train.out))
        if run.finished(attempt.train.epochs):
            return run
        if (error := run.failure()) is None:
            try:
                Trainer(attempt, resume=True).fit()
                return run
            except SettingsChanged as exc:
                raise ConfigError(
                    f"{what}: the protocol changed since {run.path} started ({exc.changes}); restore the "
                    f"protocol, or delete that run directory to train it again with the new settings"
                ) from None
            except ConfigError:  # the protocol or the data at fault: fp32 will not mend it
                raise
            except Exception as exc:
                error = error_line(exc)
                run.mark_failed(error, amp=attempt.train.amp)
                log.warning("%s failed (train.amp %s): %s", what, attempt.train.amp, error)
        errors.append(f"train.amp {attempt.train.amp}: {error}")
    raise RunFailed(f"{what}: " + "; retried in fp32: ".join(errors))


def cache_key(config: RunConfig) -> str:
    """Digest of the fields that differ from a default run config of the same task."""
    defaults = flatten(to_dict(RunConfig(task=config.task)))
    changed = {k: v for k, v in flatten(config.to_dict()).items() if v != defaults.get(k) and k not in NOT_IN_KEY}
    return hashlib.sha1(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:10]


def comparable(config: RunConfig) -> dict[str, Any]:
    """What decides a pre-training's weights: every field but :data:`NOT_IN_KEY`, paths made absolute."""
    flat = flatten(with_absolute_paths(config).to_dict())
    paths = {k: os.path.normpath(v) for k, v in flat.items() if k in PATH_FIELDS and isinstance(v, str)}
    return {k: paths.get(k, v) for k, v in flat.items() if k not in NOT_IN_KEY}


def cached_run(cache: Path, probe: RunConfig) -> Path | None:
    """A finished or started pre-training in ``cache`` whose recorded settings are ``probe``'s (paths compared
    absolute), whatever its folder's key says: the same run written with another spelling of a path (a
    relative ``../data/x`` and ``$VIDEOPERLIN_DATA/x``) is reused, not trained again."""
    wanted = comparable(probe)
    for folder in sorted(cache.glob("*/config.yaml")) if cache.is_dir() else []:
        try:
            if comparable(config_from_record(read_yaml(folder, "pre-training record"))) == wanted:
                return folder.parent
        except ConfigError:
            continue  # a record of another version or a foreign file: not this run
    return None


def pretrained(protocol: Protocol, arm: str, arch: str, seed: int, cache: Path) -> Path:
    """The last checkpoint of ``arm``'s pre-training for ``arch`` and ``seed``, training it if needed
    (with the fp32 fallback; :class:`RunFailed` when both fail)."""
    probe = protocol.pretrain_config(arm, arch, seed, "-")
    folder = cache / f"{arch}-{arm}-s{seed}-{cache_key(probe)}"
    config = protocol.pretrain_config(arm, arch, seed, cached_run(cache, probe) or folder)
    retry_probe = fp32_retry(probe, Path("-"))
    if not RunDir(Path(config.train.out)).checkpoint("last").exists():
        log.info("pre-training %s %s seed %d -> %s", arch, arm, seed, config.train.out)
    run = train_or_fall_back(
        config, cache / f"{arch}-{arm}-s{seed}-{cache_key(retry_probe)}", f"pre-training {arch} {arm} seed {seed}"
    )
    return run.checkpoint("last")


def inflated(protocol: Protocol, arch: str, cache: Path) -> Path:
    """``arch`` with the protocol's 2D weights inflated into it (saved once in the cache)."""
    target = cache / f"{arch}-inflated"
    if protocol.inflate_from is None:
        raise ConfigError("the inflated arm needs inflate_from: a 2D ResNet's weights (torchvision layout)")
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
                if architecture(arch).inflates_from_2d:
                    inits.append(Init(arch, arm, None, inflated(protocol, arch, cache)))
                else:
                    log.info("skipping inflated %s: 2D weights inflate into full 3D convolutions only", arch)
            else:
                for seed in protocol.pretrain_seeds:
                    try:
                        inits.append(Init(arch, arm, seed, pretrained(protocol, arm, arch, seed, cache)))
                    except RunFailed as exc:
                        inits.append(Init(arch, arm, seed, None, failure=str(exc)))
    return inits


def variant_init(protocol: Protocol, init: Init, entry: StudyDataset, cache: Path) -> Init:
    """``init``, or where its arm starts on ``entry`` when the protocol names a variant for it there
    (``arm_variants``: pre-trained now if needed), reported under the arm's own name."""
    variant = protocol.pretraining_of(init.arm, entry.name)
    if variant == init.arm or init.pretrain_seed is None:
        return init
    try:
        checkpoint = pretrained(protocol, variant, init.arch, init.pretrain_seed, cache)
        return Init(init.arch, init.arm, init.pretrain_seed, checkpoint, pretrained_as=variant)
    except RunFailed as exc:
        return Init(init.arch, init.arm, init.pretrain_seed, None, failure=str(exc), pretrained_as=variant)


def run_directory(out: Path, entry: StudyDataset, init: Init, fold: int, seed: int) -> Path:
    pseed = "" if init.pretrain_seed is None else f"-pseed{init.pretrain_seed}"
    return out / "finetune" / entry.name / init.arch / init.arm / f"fold{fold}-seed{seed}{pseed}"


def retry_directory(run: Path) -> Path:
    """Where the fp32 retry of fine-tuning run ``run`` lives."""
    return run.with_name(run.name + "-fp32")


def finished_directory(run: Path) -> RunDir:
    """``run``, or its fp32 retry when ``run`` failed."""
    return RunDir(retry_directory(run) if RunDir(run).failure() is not None else run)


def start_point(protocol: Protocol, entry: StudyDataset, init: Init, seed: int, out: Path) -> Path | None:
    """The checkpoint a run on ``entry`` starts from: the arm's own init, or (a chain) the arm's final
    checkpoint on the earlier dataset ``entry.after`` with the same seed."""
    if entry.after is None:
        return init.checkpoint
    earlier = next(d for d in protocol.datasets if d.name == entry.after)
    return finished_directory(run_directory(out, earlier, init, 0, seed)).checkpoint("last")


def finetune(protocol: Protocol, entry: StudyDataset, init: Init, fold: int, seed: int, out: Path) -> dict[str, Any]:
    """One fine-tuning run (reused if finished; with the fp32 fallback); its result row, which carries
    the error instead of accuracies when the run (or its pre-training) failed."""
    run = run_directory(out, entry, init, fold, seed)
    row = {
        "arm": init.arm,
        "arch": init.arch,
        "dataset": entry.name,
        "fold": fold,
        "seed": seed,
        "pretrain_seed": "" if init.pretrain_seed is None else init.pretrain_seed,
        "run": str(run),
    }
    what = f"fine-tuning {entry.name} {init.arch} {init.arm} fold {fold} seed {seed}" + (
        "" if init.pretrain_seed is None else f" pre-training seed {init.pretrain_seed}"
    )
    if init.failure is not None:
        return {**row, "error": f"not run: its pre-training failed ({init.failure})"}
    config = protocol.finetune_config(
        entry, init.arch, fold, seed, start_point(protocol, entry, init, seed, out), run, str(out / "frame-cache")
    )
    began = time.perf_counter()
    try:
        finished = train_or_fall_back(config, retry_directory(run), what)
    except RunFailed as exc:
        return {**row, "error": str(exc)}
    final = finished.final_validation()
    log.info("%s: video top-1 %.3f (%.0f s)", what, final["val_acc"], time.perf_counter() - began)
    return {**row, "video_top1": final["val_acc"], "clip_top1": final.get("val_clip_acc"), "run": str(finished.path)}


def failures(rows: list[dict[str, Any]], inits: list[Init]) -> list[str]:
    """One line per failed pre-training and per failed fine-tuning run (not those skipped for a failed
    pre-training: its own line says so)."""
    lines = [i.failure for i in inits if i.failure]
    return lines + [r["error"] for r in rows if r.get("error") and not r["error"].startswith("not run:")]


def check_datasets(protocol: Protocol) -> None:
    """Every dataset loads, and group folds have groups to fold."""
    for entry in protocol.datasets:
        catalog = load_catalog(entry.data, entry.dataset, entry.split or 1, entry.splits_dir)
        if entry.fixed_split:
            continue
        if any(r.subset for r in catalog.records):
            raise ConfigError(
                f"{entry.name}: {entry.data} has predefined train/test subsets (split files or a "
                f"split column); set split: N in its entry to use them"
            )
        if any(r.group is None for r in catalog.records):
            raise ConfigError(
                f"{entry.name}: every video needs a group (actor/sequence) for group folds; "
                f"or give val_data or split for a fixed train/test split"
            )
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
    variants: list[Init] = []
    for entry in protocol.datasets:
        starts = [variant_init(protocol, i, entry, cache) for i in inits]
        variants += [i for i in starts if i.pretrained_as and i not in variants]
        for init in starts:
            for fold in protocol.folds_of(entry):
                for seed in protocol.seeds:
                    rows.append(finetune(protocol, entry, init, fold, seed, out))
                    if on_row:
                        on_row(rows)
    return rows, inits + variants
