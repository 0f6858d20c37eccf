"""Accuracy metrics: clip-level and video-level top-k, per-class accuracy, confusion matrices."""

from __future__ import annotations

import torch
from torch import Tensor


def topk_correct(logits: Tensor, labels: Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """Number of samples whose label is among the top-k predictions, for each k (k capped at classes)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top.eq(labels[:, None])
    return {k: int(hits[:, :k].any(dim=1).sum()) for k in ks}


def video_scores(window_probs: Tensor, owners: Tensor, num_videos: int) -> Tensor:
    """Video-level scores: the softmax averaged over each video's windows -> (num_videos, classes)."""
    sums = torch.zeros(num_videos, window_probs.shape[1], dtype=torch.float64)
    counts = torch.zeros(num_videos, dtype=torch.float64)
    sums.index_add_(0, owners, window_probs.double())
    counts.index_add_(0, owners, torch.ones(len(owners), dtype=torch.float64))
    return (sums / counts.clamp_min(1)[:, None]).float()


def confusion_matrix(labels: Tensor, predictions: Tensor, num_classes: int) -> Tensor:
    """(true, predicted) counts."""
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    matrix.index_put_((labels, predictions), torch.ones_like(labels), accumulate=True)
    return matrix


def per_class_accuracy(matrix: Tensor) -> Tensor:
    """Recall per class (NaN for classes without samples)."""
    totals = matrix.sum(1).double()
    return torch.where(totals > 0, matrix.diag().double() / totals.clamp_min(1), torch.tensor(float("nan")))
