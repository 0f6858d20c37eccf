"""RunDir: the files of one training run, named in one place.

A run directory (``train.out``) holds::

    config.yaml        the resolved run config
    metrics.jsonl      one JSON record per epoch (a resumed epoch replaces its line)
    checkpoints/       last.pt (every train.save_every epochs and at the last; every train.checkpoint_every
                       steps), best.pt
    figures/           conv1.png (the first layer), curves.png (losses and scores by epoch), mae.png (masked
                       pre-training: masked input, reconstruction, target)
    tensorboard/       TensorBoard event files (when tensorboard is installed)
    .lock              held by the process writing the run (one writer at a time)
    failed.json        only when a study gave the run up (the error; videoperlin.study.runs)
    eval-<subset>/     what videoperlin evaluate wrote

The engine writes it, evaluation, the study, its report and the curve plots read it: all through
this class, so the layout is written down here only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoperlin.errors import ConfigError
from videoperlin.train.checkpointing import load_checkpoint
from videoperlin.utils.atomic import atomic_write_text
from videoperlin.utils.text import read_yaml_file


@dataclass(frozen=True)
class RunDir:
    """One run directory (module docstring)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))  # a str is welcome

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDir:
        """The run a checkpoint file inside ``RUN/checkpoints/`` belongs to."""
        checkpoint = Path(checkpoint)
        if checkpoint.parent.name != "checkpoints":
            raise ConfigError(f"{checkpoint} is not inside a run's checkpoints/ folder")
        return cls(checkpoint.parent.parent)

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    @property
    def failure_file(self) -> Path:
        return self.path / "failed.json"

    def checkpoint(self, name: str = "last") -> Path:
        """``checkpoints/<name>.pt`` (``last`` or ``best``)."""
        return self.checkpoints / f"{name}.pt"

    def eval_dir(self, subset: str) -> Path:
        return self.path / f"eval-{subset}"

    # ---- metrics ---------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The run's recorded config (``config.yaml``) as a mapping ({} when absent)."""
        return read_yaml_file(self.config_file, "run config") or {} if self.config_file.exists() else {}

    def metrics(self) -> list[dict[str, Any]]:
        """The per-epoch records; an error names the file when there is none."""
        if not self.metrics_file.is_file():
            raise ConfigError(f"{self.metrics_file} does not exist; give a run directory holding metrics.jsonl")
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines() if line.strip()]

    def write_epoch(self, record: dict[str, Any]) -> None:
        """Add an epoch's record, replacing the line of the same epoch (a resumed epoch), atomically."""
        lines = self.metrics_file.read_text().splitlines() if self.metrics_file.exists() else []
        lines = [line for line in lines if line.strip() and json.loads(line)["epoch"] != record["epoch"]]
        atomic_write_text(self.metrics_file, "\n".join([*lines, json.dumps(record)]) + "\n")

    def finished(self, epochs: int) -> bool:
        """Whether ``checkpoints/last.pt`` holds the end of epoch ``epochs`` (the checkpoint, not the
        metrics: a run killed between its epoch record and its checkpoint is not finished)."""
        last = self.checkpoint("last")
        return last.exists() and load_checkpoint(last)["position"]["epoch"] >= epochs

    def final_validation(self) -> dict[str, Any]:
        """The last epoch record that holds a validation (``val_acc``)."""
        record = next((r for r in reversed(self.metrics()) if "val_acc" in r), None)
        if record is None:
            raise ConfigError(f"{self.metrics_file} holds no validation; the run has not validated yet")
        return record

    # ---- a study's mark --------------------------------------------------------------------------

    def failure(self) -> str | None:
        """The error this run was given up with (``failed.json``), or None."""
        if not self.failure_file.exists():
            return None
        try:
            return str(json.loads(self.failure_file.read_text())["error"])
        except (OSError, ValueError, KeyError, TypeError):
            return "failed (unreadable mark)"

    def mark_failed(self, error: str, **details: Any) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.failure_file, json.dumps({"error": error, **details}))
