"""A training run's directory over its life: opened (one writer, a killed writer's litter swept), its
settings recorded or checked against the run it resumes, its epochs logged, its checkpoints written (never
from a broken model), closed.

The engine (``train/engine.py``) owns the model, the optimiser and the loop; :class:`RunLifecycle` owns
what lands on disk and the rules for resuming. A resume whose settings differ from the run's in a field
that changes what it computes (every field but :data:`~videoperlin.train.config.RESUME_NEUTRAL`) is
refused, naming each field, unless ``accept_changes``; then the changes go into the next epoch's record.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from videoperlin.errors import ConfigError, NumericsError, quoted
from videoperlin.train.checkpointing import load_checkpoint, save_checkpoint
from videoperlin.train.config import RunConfig, changed_settings, save_config
from videoperlin.train.distributed import DistInfo
from videoperlin.train.run_dir import RunDir
from videoperlin.train.tracking import TensorBoardLog
from videoperlin.utils.atomic import exclusive_lock, sweep_temporaries, writable_directory

log = logging.getLogger(__name__)


class SettingsChanged(ConfigError):
    """A resume whose settings differ from the run's (``changes``: the fields, as listed in the message)."""

    def __init__(self, message: str, changes: str) -> None:
        super().__init__(message)
        self.changes = changes


class RunLifecycle:
    """The run directory of ``config.train.out``, held by this process (only the main rank writes)."""

    def __init__(self, config: RunConfig, dist: DistInfo) -> None:
        self.config, self.writes = config, dist.is_main
        self.run_dir = RunDir(Path(config.train.out))
        self.changes: dict[str, tuple[Any, Any]] = {}  # settings this segment changed (accept_changes)
        self.tensorboard: TensorBoardLog | None = None
        self._held = contextlib.ExitStack()
        if self.writes:
            writable_directory(self.run_dir.checkpoints, "train.out")
            busy = f"another process is training in {self.run_dir.path}; wait for it, or choose another --out"
            self._held.enter_context(exclusive_lock(self.run_dir.lock_file, busy))
            for stale in sweep_temporaries(self.run_dir.path):
                log.info("removed %s, left by a writer that was killed", stale)

    def resume_point(self, config: RunConfig, resume: bool, accept_changes: bool) -> dict[str, Any] | None:
        """The checkpoint to continue from (its settings checked against ``config``, the run's as built),
        or None for a new run; a started run without ``resume`` is refused. Records ``config``, opens the logs."""
        self.config = config
        last, checkpoint = self.run_dir.checkpoint("last"), None
        if resume and last.exists():
            checkpoint = load_checkpoint(last)
            self._check_settings(checkpoint.get("config") or {}, accept_changes)
        elif last.exists():
            raise ConfigError(
                f"{self.run_dir.path} already holds a run; pass --resume to continue it or choose another --out"
            )
        elif resume:
            log.info("no checkpoint in %s yet; starting a new run", self.run_dir.path)
        if self.writes:
            save_config(self.config, self.run_dir.config_file)
        self.tensorboard = TensorBoardLog.open(self.run_dir.tensorboard, self.config.train.tensorboard and self.writes)
        return checkpoint

    def _check_settings(self, recorded: dict[str, Any], accept_changes: bool) -> None:
        """Refuse a resume that changes what the run computes, unless ``accept_changes``."""
        self.changes = changed_settings(recorded, self.config) if recorded else {}
        if not self.changes:
            return
        listed = ", ".join(f"{k} {quoted(a, 40)} -> {quoted(b, 40)}" for k, (a, b) in list(self.changes.items())[:6])
        more = f" and {len(self.changes) - 6} more" if len(self.changes) > 6 else ""
        if not accept_changes:
            raise SettingsChanged(
                f"--resume would change the run in {self.run_dir.path}: {listed}{more}; resume with the "
                f"run's settings (its config.yaml), or add --accept-changes to go on with the new ones",
                f"{listed}{more}",
            )
        log.warning("resuming with changed settings (recorded in metrics.jsonl): %s%s", listed, more)

    def best_is_stale(self, position: dict[str, Any]) -> bool:
        """Whether a kill fell between an improving epoch's last.pt and its best.pt: then last.pt ends that
        epoch (nothing trained since) and holds the best weights, and best.pt must be written again."""
        p, best = position, self.run_dir.checkpoint("best")
        if p["best_epoch"] < 0 or p["step_in_epoch"] != 0 or p["best_epoch"] != p["epoch"] - 1:
            return False
        if best.exists() and load_checkpoint(best)["position"]["best_epoch"] == p["best_epoch"]:
            return False
        log.warning("%s was missing or older than epoch %d (interrupted); written again from last.pt", best, p["epoch"])
        return True

    def log_epoch(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write an epoch's record (with the settings this segment changed, on its first); the record."""
        if self.changes:
            record = {**record, "changed_settings": {k: list(v) for k, v in self.changes.items()}}
            self.changes = {}
        if self.writes:
            self.run_dir.write_epoch(record)
            if self.tensorboard is not None:
                self.tensorboard.write(record)
        return record

    def save(self, name: str, model: nn.Module, payload: Callable[[], dict[str, Any]], where: str) -> None:
        """Write checkpoints/NAME.pt, ``payload()``, -- never from a broken model: non-finite weights or BatchNorm
        statistics stop the run (``where``: the position and precision, for the message; earlier checkpoints stay)."""
        broken = next(
            (k for k, v in model.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())),
            None,
        )
        if broken is not None:
            raise NumericsError(
                f"the model holds non-finite values in {broken} at {where}; {name}.pt was not written "
                f"(lower optim.lr, or set train.amp=off)"
            )
        if self.writes:
            save_checkpoint(self.run_dir.checkpoint(name), payload())

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        self._held.close()
