"""``videoperlin evaluate``: clip- and video-level top-1/top-5, per-class accuracy, confusion matrix
(CSV and PNG) and a predictions file, for a checkpoint on a dataset.

The evaluation rebuilds what the run used from the checkpoint's own record: its ``config`` gives
the data, the split (fold, seed), clip geometry and normalisation; flags override single fields
(``--data``, ``--fold``, ``--set data.stride=2``...). A saved model without a run record uses the
config defaults and needs ``--data``. Every window of ``frames`` frames (consecutive, stride
``data.window_stride``, default one clip length, centre crop) is a clip; a video's score is the
softmax averaged over its windows (:class:`videoperlin.scores.VideoScores`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from videoperlin.data.splits import split_records
from videoperlin.data.transforms import normalize
from videoperlin.data.video_dataset import collate_windows
from videoperlin.errors import ConfigError, DataError
from videoperlin.models.pretrained import load_model_and_metadata
from videoperlin.scores import VideoScores, confusion_matrix, per_class_accuracy, rates
from videoperlin.train.batch_sources import window_dataset
from videoperlin.train.config import RunConfig, config_from_record, load_config
from videoperlin.train.run_dir import RunDir
from videoperlin.utils.atomic import atomic_write_text, writable_directory
from videoperlin.utils.plotting import pyplot, save_figure
from videoperlin.utils.progress import progress_bar

log = logging.getLogger(__name__)
SUBSETS = ("val", "train", "all")


def evaluation_config(
    meta: dict[str, Any], overrides: dict[str, Any] | None = None, sets: list[str] | None = None
) -> RunConfig:
    """The checkpoint's run config (defaults for a bare model) with ``overrides`` and ``--set`` applied."""
    record = meta.get("config")
    base = config_from_record(record).to_dict() if record else {}
    return load_config(None, overrides, sets, task="train", base=base)


def default_out(checkpoint: str | Path, subset: str) -> Path:
    """``RUN/eval-<subset>`` for a checkpoint inside a run's ``checkpoints/`` folder."""
    try:
        return RunDir.of_checkpoint(checkpoint).eval_dir(subset)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; give --out") from None


def _check_classes(trained: list[str] | None, found: list[str], data: str | None) -> None:
    if trained and list(trained) != found:
        raise ConfigError(
            f"{data} has classes {found[:5]}... but the checkpoint was trained on "
            f"{list(trained)[:5]}...; evaluate on data with the same class list"
        )


def _check_recorded_paths(config: RunConfig, meta: dict[str, Any]) -> None:
    """A data path that is the checkpoint's own record (no flag replaced it) and is gone: say where it
    came from (the data moved, or a run before 0.3 recorded a path relative to another folder)."""
    record = meta.get("config")
    if not record:
        return
    recorded = config_from_record(record).data
    for name, flag in (("path", "--data"), ("val_path", "--val-data"), ("splits_dir", "--splits-dir")):
        value = getattr(config.data, name)
        if value is None or value != getattr(recorded, name) or Path(value).exists():
            continue
        raise ConfigError(
            f"data.{name} {value} recorded in the checkpoint's run config does not exist here (the data moved, "
            f"or the run was started from another folder with a relative path); give {flag} with its location now"
        )


@torch.no_grad()
def run_evaluation(
    checkpoint: str | Path,
    out: str | Path | None = None,
    subset: str = "val",
    max_windows: int | None = None,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on its run's ``subset`` (``val``, ``train`` or ``all``); write the report."""
    if subset not in SUBSETS:
        raise ConfigError(f"--subset {subset!r} must be one of {', '.join(SUBSETS)}")
    model, meta = load_model_and_metadata(checkpoint)  # a missing or foreign checkpoint leaves no folder behind
    out = writable_directory(Path(out) if out else default_out(checkpoint, subset))
    model.eval()
    config = evaluation_config(meta, overrides, sets)
    _check_recorded_paths(config, meta)
    split = split_records(config.data, config.train.seed)
    _check_classes(meta.get("class_names"), split.class_names, config.data.path)
    records = split.subset(subset)
    dataset = window_dataset(config, records, max_windows)
    loader = DataLoader(dataset, batch_size=2, num_workers=config.data.workers, collate_fn=collate_windows)
    scores, bad = VideoScores(), 0
    for batch in progress_bar(loader, desc="evaluate", unit="batch", show=progress):
        bad += batch.bad_videos
        if not len(batch.labels):  # every video of this batch was skipped
            continue
        for clips, labels, videos in zip(batch.clips.split(32), batch.labels.split(32), batch.videos.split(32)):
            scores.add(model(normalize(clips, config.data.mean, config.data.std)), labels, videos)
    if not scores.clips:
        raise DataError(
            f"no video of {config.data.path} ({subset}) could be decoded; "
            f"run `videoperlin check-data {config.data.path}`"
        )
    return write_report(out, scores, records, split.class_names, bad)


def write_report(out: Path, scores: VideoScores, records, class_names: list[str], skipped: int) -> dict[str, Any]:
    """metrics.json, predictions.csv, per_class.csv, confusion.csv and confusion.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    videos, video_scores, video_labels = scores.per_video()
    metrics = {k: v for k, v in rates(scores.counts()).items() if k != "loss"}
    metrics["skipped_videos"] = skipped
    matrix = confusion_matrix(video_labels, video_scores.argmax(1), len(class_names))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _write_csvs(out, video_scores, video_labels, videos, records, class_names, matrix)
    _plot_confusion(out / "confusion.png", matrix, class_names)
    log.info("video top-1 %.4f over %d videos", metrics["video_top1"], len(videos))
    return metrics


def _csv_text(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _write_csvs(out: Path, scores, video_labels, videos, records, class_names, matrix) -> None:
    top5 = scores.topk(min(5, scores.shape[1]), dim=1)
    rows = [["path", "label", "predicted", "probability", "top5"]]
    for row, video in enumerate(videos):
        rows.append(
            [
                str(records[video].path),
                class_names[int(video_labels[row])],
                class_names[int(top5.indices[row, 0])],
                f"{float(top5.values[row, 0]):.4f}",
                " ".join(class_names[int(i)] for i in top5.indices[row]),
            ]
        )
    atomic_write_text(out / "predictions.csv", _csv_text(rows))
    recall = per_class_accuracy(matrix)
    atomic_write_text(
        out / "per_class.csv",
        _csv_text(
            [["class", "videos", "accuracy"]]
            + [[n, int(matrix[k].sum()), f"{float(recall[k]):.4f}"] for k, n in enumerate(class_names)]
        ),
    )
    atomic_write_text(
        out / "confusion.csv",
        _csv_text([["true\\predicted", *class_names]] + [[n, *matrix[k].tolist()] for k, n in enumerate(class_names)]),
    )


def _plot_confusion(path: Path, matrix, class_names: list[str]) -> None:
    plt = pyplot()
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * n + 2), max(4, 0.35 * n + 1.5)))
    ax.imshow(matrix.numpy(), cmap="Blues")
    if n <= 60:
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    save_figure(fig, path)
