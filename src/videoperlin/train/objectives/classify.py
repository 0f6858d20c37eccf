"""Objective ``classify``: cross-entropy on the clips' labels -- supervised VPN pre-training and fine-tuning.

The loss is ``optim.label_smoothing``-smoothed cross-entropy on the network's logits; with the
``augment`` section on (:mod:`videoperlin.train.augment`) the batch is randomly erased and mixed first
and the targets are the mixed label probabilities. Validation scores videos: the softmax averaged over
each video's windows (:class:`~videoperlin.scores.VideoScores`); ``best.pt`` is the best video top-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from videoperlin.config_fields import Checked
from videoperlin.models.registry import as_video_model
from videoperlin.scores import VideoScores, rates
from videoperlin.train.augment import mix, random_erase
from videoperlin.train.objectives import Objective, Validator, register_objective


@dataclass
class ClassifyOptions(Checked):
    """``classify`` has no options of its own (label smoothing is ``optim``'s, augmentation ``augment``'s)."""


class VideoAccuracy(Validator):
    def __init__(self) -> None:
        self.scores = VideoScores()

    def add(self, net: nn.Module, inputs: Tensor, labels: Tensor, videos: Tensor) -> None:
        self.scores.add(net(inputs), labels, videos)

    def counts(self) -> list[float]:
        return self.scores.counts()

    def metrics(self, counts: list[float]) -> dict[str, float]:
        r = rates(counts)
        return {
            "val_acc": r["video_top1"],
            "val_top5": r["video_top5"],
            "val_clip_acc": r["clip_top1"],
            "val_loss": r["loss"],
            "val_videos": r["videos"],
        }


@register_objective
class Classify(Objective):
    name = "classify"
    Options = ClassifyOptions
    description = "cross-entropy on the labels (supervised pre-training, fine-tuning)"

    def loss(self, net: nn.Module, inputs: Tensor, labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        augment = self.config.augment
        if augment.erase_prob > 0:
            inputs = random_erase(inputs, augment.erase_prob, generator)
        targets: Tensor = labels
        if augment.mixes:
            inputs, targets = mix(inputs, labels, as_video_model(self.model).num_classes, augment, generator)
        logits = net(inputs)
        return F.cross_entropy(logits.float(), targets, label_smoothing=self.config.optim.label_smoothing), logits

    def validator(self) -> Validator:
        return VideoAccuracy()
