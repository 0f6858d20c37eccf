"""Accuracy metrics: clip-level and video-level top-k, per-class accuracy, confusion matrices.

A *video's* score is the softmax averaged over its clips (windows), as in 3D-ResNets-PyTorch;
:class:`VideoScores` accumulates both levels batch by batch and is the one implementation used by
training validation and ``videoperlin evaluate``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Counters of :meth:`VideoScores.counts`, in order (summed over DDP ranks as they are).
COUNT_NAMES = ("clip_top1", "clip_top5", "clips", "video_top1", "video_top5", "videos", "loss_sum")


def topk_correct(logits: Tensor, labels: Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """Number of samples whose label is among the top-k predictions, for each k (k capped at classes)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top.eq(labels[:, None])
    return {k: int(hits[:, :k].any(dim=1).sum()) for k in ks}


class VideoScores:
    """Clip- and video-level accuracy accumulated over batches of clips tagged with their video."""

    def __init__(self) -> None:
        self._sums: dict[int, Tensor] = {}
        self._windows: dict[int, int] = {}
        self._labels: dict[int, int] = {}
        self.clip_hits = {1: 0, 5: 0}
        self.clips = 0
        self.loss_sum = 0.0

    def add(self, logits: Tensor, labels: Tensor, videos: Tensor) -> None:
        """One batch: logits (N, C), labels (N,), and the video id of each clip (N,)."""
        logits, labels, videos = logits.detach().float().cpu(), labels.cpu(), videos.cpu()
        self.loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        for k, hits in topk_correct(logits, labels).items():
            self.clip_hits[k] += hits
        self.clips += len(labels)
        probs = logits.softmax(1).double()
        for video in videos.unique().tolist():
            mask = videos == video
            self._sums[video] = self._sums.get(video, 0) + probs[mask].sum(0)
            self._windows[video] = self._windows.get(video, 0) + int(mask.sum())
            self._labels[video] = int(labels[mask][0])

    def per_video(self) -> tuple[list[int], Tensor, Tensor]:
        """(video ids in ascending order, scores (V, C) = mean window softmax, labels (V,))."""
        videos = sorted(self._sums)
        if not videos:
            return [], torch.empty(0, 0), torch.empty(0, dtype=torch.long)
        scores = torch.stack([self._sums[v] / self._windows[v] for v in videos]).float()
        return videos, scores, torch.tensor([self._labels[v] for v in videos])

    def counts(self) -> list[float]:
        """The raw counters named by :data:`COUNT_NAMES` (sum them over ranks, then :func:`rates`)."""
        _, scores, labels = self.per_video()
        video_hits = topk_correct(scores, labels) if len(labels) else {1: 0, 5: 0}
        return [
            self.clip_hits[1],
            self.clip_hits[5],
            self.clips,
            video_hits[1],
            video_hits[5],
            len(labels),
            self.loss_sum,
        ]


def rates(counts: list[float]) -> dict[str, float]:
    """Accuracies and mean loss from (possibly rank-summed) :meth:`VideoScores.counts`."""
    c = dict(zip(COUNT_NAMES, counts))
    clips, videos = max(c["clips"], 1), max(c["videos"], 1)
    return {
        "clip_top1": c["clip_top1"] / clips,
        "clip_top5": c["clip_top5"] / clips,
        "video_top1": c["video_top1"] / videos,
        "video_top5": c["video_top5"] / videos,
        "loss": c["loss_sum"] / clips,
        "clips": int(c["clips"]),
        "videos": int(c["videos"]),
    }


def confusion_matrix(labels: Tensor, predictions: Tensor, num_classes: int) -> Tensor:
    """(true, predicted) counts."""
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    matrix.index_put_((labels, predictions), torch.ones_like(labels), accumulate=True)
    return matrix


def per_class_accuracy(matrix: Tensor) -> Tensor:
    """Recall per class (NaN for classes without samples)."""
    totals = matrix.sum(1).double()
    return torch.where(totals > 0, matrix.diag().double() / totals.clamp_min(1), torch.tensor(float("nan")))
