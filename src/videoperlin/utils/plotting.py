"""Matplotlib helpers: a headless pyplot and atomic PNG saving."""

from __future__ import annotations

from pathlib import Path

from videoperlin.utils.atomic import atomic_path


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (works without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Save ``fig`` as PNG to ``path`` atomically (creating folders), close it, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    pyplot().close(fig)
    return path


def plot_run_curves(records: list[dict], out: str | Path, title: str = "") -> Path:
    """A run's curves from its per-epoch records: training and validation loss on the left, the
    validation score (video top-1, or whatever ``val_*`` metrics the objective reports) on the right."""
    plt = pyplot()
    fig, (losses, scores) = plt.subplots(1, 2, figsize=(9, 3.4))
    for metric, ax in (("train_loss", losses), ("val_loss", losses), ("train_acc", scores), ("val_acc", scores)):
        points = [(r["epoch"], r[metric]) for r in records if isinstance(r.get(metric), (int, float))]
        if points:
            ax.plot(*zip(*points), marker="o" if len(points) < 12 else None, markersize=3, label=metric)
    for ax, label in ((losses, "loss"), (scores, "top-1")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out)
