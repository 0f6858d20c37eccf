"""``videoperlin evaluate``: clip- and video-level top-1/top-5, per-class accuracy, confusion matrix
(CSV and PNG) and a predictions file, for a checkpoint on a dataset.

Every window of ``frames`` frames (consecutive, stride ``window_stride``, default one clip length,
centre crop) is a clip; a video's score is the softmax averaged over its windows.
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
from tqdm import tqdm

from videoperlin.data.decode import FrameCache
from videoperlin.data.sources import load_source
from videoperlin.data.splits import split_train_val
from videoperlin.data.transforms import normalize
from videoperlin.data.video_dataset import WindowDataset, collate_windows
from videoperlin.errors import ConfigError
from videoperlin.metrics import confusion_matrix, per_class_accuracy, topk_correct, video_scores
from videoperlin.models.checkpoint import load_model_and_metadata
from videoperlin.utils.atomic import atomic_write_text
from videoperlin.utils.plotting import pyplot, save_figure

log = logging.getLogger(__name__)


def load_for_eval(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Model (eval mode) and metadata from a training checkpoint or a saved model."""
    model, meta = load_model_and_metadata(path)
    return model.eval(), meta


def _records(args, meta: dict[str, Any]):
    source = load_source(args.data, args.dataset, args.split, args.splits_dir)
    if args.subset == "all":
        records = source.records
    else:
        train, val = split_train_val(source, args.fold, args.folds, args.val_fraction, args.seed)
        records = train if args.subset == "train" else val
    trained = meta.get("class_names")
    if trained and list(trained) != source.class_names:
        raise ConfigError(f"{args.data} has classes {source.class_names[:5]}... but the checkpoint was trained on "
                          f"{list(trained)[:5]}...; evaluate on data with the same class list")
    return records, source.class_names


@torch.no_grad()
def run_evaluation(args) -> dict[str, Any]:
    """Evaluate ``args.checkpoint`` on ``args.data``; write the report into ``args.out``."""
    model, meta = load_for_eval(args.checkpoint)
    records, class_names = _records(args, meta)
    frames, size = args.frames or meta.get("frames", 16), args.size or meta.get("size", 112)
    dataset = WindowDataset(records, FrameCache(args.cache_dir, args.short_side), frames, size, stride=args.stride,
                            on_bad_video=args.on_bad_video, window_stride=args.window_stride, max_windows=None)
    loader = DataLoader(dataset, batch_size=2, num_workers=args.workers, collate_fn=collate_windows)
    norm = meta.get("normalization") or {}
    probs, labels, owners, skipped = [], [], [], 0
    for windows, window_labels, window_owners, bad in tqdm(loader, desc="evaluate", unit="batch", disable=args.quiet):
        skipped += bad
        for chunk in windows.split(32):
            x = normalize(chunk, norm.get("mean", (0.4345, 0.4051, 0.3775)), norm.get("std", (0.2768, 0.2713, 0.2737)))
            probs.append(model(x).float().softmax(1))
        labels.append(window_labels)
        owners.append(window_owners)
    if not probs:
        raise ConfigError(f"no video of {args.data} could be decoded; run `videoperlin check-data {args.data}`")
    return write_report(Path(args.out), torch.cat(probs), torch.cat(labels), torch.cat(owners), records,
                        class_names, skipped)


def write_report(out: Path, probs, labels, owners, records, class_names, skipped: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    videos = sorted(set(owners.tolist()))
    remap = {v: i for i, v in enumerate(videos)}
    scores = video_scores(probs, torch.tensor([remap[o] for o in owners.tolist()]), len(videos))
    video_labels = torch.tensor([records[v].label for v in videos])
    clip_hits, video_hits = topk_correct(probs, labels), topk_correct(scores, video_labels)
    matrix = confusion_matrix(video_labels, scores.argmax(1), len(class_names))
    metrics = {"clip_top1": clip_hits[1] / len(labels), "clip_top5": clip_hits[5] / len(labels),
               "video_top1": video_hits[1] / len(videos), "video_top5": video_hits[5] / len(videos),
               "clips": len(labels), "videos": len(videos), "skipped_videos": skipped}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _write_csvs(out, scores, video_labels, videos, records, class_names, matrix)
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
        rows.append([str(records[video].path), class_names[int(video_labels[row])], class_names[int(top5.indices[row, 0])],
                     f"{float(top5.values[row, 0]):.4f}", " ".join(class_names[int(i)] for i in top5.indices[row])])
    atomic_write_text(out / "predictions.csv", _csv_text(rows))
    recall = per_class_accuracy(matrix)
    atomic_write_text(out / "per_class.csv", _csv_text(
        [["class", "videos", "accuracy"]] + [[n, int(matrix[k].sum()), f"{float(recall[k]):.4f}"]
                                             for k, n in enumerate(class_names)]))
    atomic_write_text(out / "confusion.csv", _csv_text([["true\\predicted", *class_names]] +
                                                       [[n, *matrix[k].tolist()] for k, n in enumerate(class_names)]))


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
