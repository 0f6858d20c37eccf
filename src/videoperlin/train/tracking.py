"""TensorBoard event files beside ``metrics.jsonl``: what standard viewers read.

Written whenever the ``tensorboard`` package is installed (the ``tensorboard`` extra; ``train.tensorboard``
turns it off) by ``torch.utils.tensorboard``, into the run directory's ``tensorboard/``: every numeric value
of an epoch's record as a scalar at that epoch (a resumed run adds a file; TensorBoard joins them).
``tensorboard --logdir runs`` then shows every run side by side.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class TensorBoardLog:
    """An open event-file writer of a run, or nothing when TensorBoard is not installed."""

    def __init__(self, writer: Any, directory: Path | None = None) -> None:
        self.writer, self.directory = writer, directory

    @classmethod
    def open(cls, directory: Path, enabled: bool = True) -> TensorBoardLog:
        if not enabled:
            return cls(None)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional extra
            log.debug("tensorboard is not installed: no event files (pip install 'videoperlin[tensorboard]')")
            return cls(None)
        try:
            return cls(SummaryWriter(log_dir=str(directory)), directory)
        except OSError as exc:
            log.warning("TensorBoard: cannot write in %s (%s); no event files this run", directory, exc.strerror)
            return cls(None)

    def write(self, record: dict[str, Any]) -> None:
        """Every numeric value of an epoch's record, at its epoch."""
        if self.writer is None:
            return
        try:
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "epoch":
                    self.writer.add_scalar(key, value, record["epoch"])
            self.writer.flush()
        except (OSError, RuntimeError) as exc:  # the event writer's thread re-raises its write fault here
            self.writer = None  # a failing writer is not closed: closing flushes again
            fault = getattr(exc, "strerror", None) or str(exc)
            log.warning(
                "TensorBoard: writing the event file in %s failed (%s); the run goes on without event files "
                "(metrics.jsonl holds the same numbers)",
                self.directory,
                fault,
            )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
