"""Helpers the test modules share (no test module imports another): run records, one-line errors, features."""

from __future__ import annotations

from pathlib import Path

import torch

from videoperlin.train.checkpointing import load_checkpoint
from videoperlin.train.run_dir import RunDir

#: Command-line arguments of the smallest real run: a quarter-width r3d10 on 8x32x32 clips, one epoch, fp32,
#: quiet, no worker processes.
TINY_RUN = [
    *("--model", "r3d10", "--widen-factor", "0.25", "--frames", "8", "--size", "32", "--amp", "off", "-q"),
    *("--epochs", "1", "--batch-size", "4", "--workers", "0"),
]
#: Log-record prefixes a run may print on stderr before its error.
LOG_LEVELS = ("DEBUG ", "INFO ", "WARNING ")


def one_line_error(proc, *needles: str) -> None:
    """Exit 2, no traceback, and one line of error on stderr naming every needle (log records the run wrote
    before it, such as warnings about skipped videos, may precede it unless the run was quiet: -q)."""
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith(LOG_LEVELS)]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    if "-q" in proc.args:  # a quiet run prints its error and nothing else
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[0].startswith("videoperlin: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def metrics(run: Path) -> list[dict]:
    """A run directory's per-epoch records."""
    return RunDir(run).metrics()


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    """The model weights of a run's last checkpoint."""
    return load_checkpoint(run / "checkpoints" / "last.pt")["model"]


def spectral_features(gray: torch.Tensor) -> torch.Tensor:
    """Per clip (N, T, H, W), the log share of power at each frequency along t, y and x: what tells the
    classes of a frequency label space apart."""
    centred = gray - gray.mean(dim=(1, 2, 3), keepdim=True)
    feats = []
    for axis in (1, 2, 3):
        power = torch.fft.rfft(centred, dim=axis).abs() ** 2
        profile = power.mean(dim=[d for d in (1, 2, 3) if d != axis])
        feats.append(torch.log(profile / profile.sum(1, keepdim=True) + 1e-8))
    return torch.cat(feats, dim=1)
