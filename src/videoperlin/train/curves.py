"""Training curves from run directories' ``metrics.jsonl`` (accuracy vs epoch, like the paper's
acc_transfer figure), single runs or the mean and spread of groups of runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from videoperlin.errors import ConfigError
from videoperlin.train.run_dir import RunDir
from videoperlin.utils.plotting import pyplot, save_figure


def read_metrics(run: str | Path) -> list[dict]:
    """The per-epoch records of a run directory (or of its metrics.jsonl file: the plot commands take either)."""
    path = Path(run)
    return RunDir(path.parent if path.is_file() else path).metrics()


def series(records: list[dict], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of ``metric``, skipping epochs that did not record it."""
    points = [(r["epoch"], r[metric]) for r in records if metric in r and r[metric] is not None]
    if not points:
        available = sorted({k for r in records for k in r})
        raise ConfigError(f"no epoch records {metric!r}; available metrics: {', '.join(available)}")
    epochs, values = zip(*points)
    return np.asarray(epochs), np.asarray(values, dtype=float)


def plot_groups(groups: Mapping[str, Sequence[str | Path]], metric: str, out: str | Path, title: str = "") -> Path:
    """One line per group: the mean of ``metric`` over its runs, with a min-max band when there are several."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, runs in groups.items():
        curves = [series(read_metrics(run), metric) for run in runs]
        length = min(len(e) for e, _ in curves)
        epochs = curves[0][0][:length]
        values = np.stack([v[:length] for _, v in curves])
        (line,) = ax.plot(epochs, values.mean(0), label=f"{name} (n={len(runs)})")
        if len(runs) > 1:
            ax.fill_between(epochs, values.min(0), values.max(0), alpha=0.15, color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title or metric, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)
