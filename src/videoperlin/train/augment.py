"""Batch augmentations of classification training: mixup, cutmix and random erasing (the ``augment`` section).

Small-data transformer fine-tuning leans on them (VideoMAE fine-tunes with mixup 0.8, cutmix 1.0 and
random erasing 0.25, after DeiT); the ResNet recipes leave them off, so their published results stay as
they are. They act on a normalised batch on the training device, after the clip transforms:

* **random erasing** (Zhong et al. 2020): with ``erase_prob``, a clip gets one box of area 2-33% and
  aspect 0.3-3.3, the same box in every frame (a tube, so the hidden content cannot be read off the next
  frame), filled with unit normal noise (the normalised scale);
* **mixup** (Zhang et al. 2018): clips and one-hot labels mixed with their partner (the batch reversed)
  by lambda ~ Beta(mixup, mixup);
* **cutmix** (Yun et al. 2019): a box of the partner pasted into every frame, labels mixed by its area.

With both on, a batch uses cutmix with ``switch_prob``, else mixup; a batch is mixed with ``mix_prob``.
Every draw comes from the step's own generator, so a retried or resumed step draws the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from videoperlin.config_fields import Checked, at_least, in_range, option

#: Random erasing's box: area as a share of the frame, and log-uniform aspect ratio (timm's defaults).
ERASE_AREA, ERASE_ASPECT, ERASE_ATTEMPTS = (0.02, 1 / 3), (0.3, 1 / 0.3), 10


@dataclass
class AugmentConfig(Checked):
    """Batch augmentations of classification training (module docstring); all off by default."""

    mixup: float = option(
        0.0, "mixup: clips and labels mixed by lambda ~ Beta(a, a); 0 off (ViT recipe 0.8)", at_least(0)
    )
    cutmix: float = option(
        0.0,
        "cutmix: a box of another clip in every frame, labels by its area, Beta(a, a); 0 off (ViT recipe 1.0)",
        at_least(0),
    )
    mix_prob: float = option(1.0, "probability that a batch is mixed, when mixup or cutmix is on", in_range(0, 1))
    switch_prob: float = option(
        0.5, "with mixup and cutmix both on: probability that a mixed batch uses cutmix", in_range(0, 1)
    )
    erase_prob: float = option(
        0.0,
        "random erasing: probability that a clip gets one box of noise, the same in every frame (ViT recipe 0.25)",
        in_range(0, 1),
    )

    @property
    def mixes(self) -> bool:
        return self.mixup > 0 or self.cutmix > 0


def numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """A numpy generator drawn from a torch one (numpy has the Beta distribution with a seed of its own)."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))


def erase_box(height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int] | None:
    """(top, left, box height, box width) of a random-erasing box, or None when no try fits."""
    for _ in range(ERASE_ATTEMPTS):
        area = height * width * rng.uniform(*ERASE_AREA)
        aspect = math.exp(rng.uniform(math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])))
        h, w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < h < height and 0 < w < width:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    return None


def random_erase(inputs: Tensor, probability: float, generator: torch.Generator) -> Tensor:
    """``inputs`` (B, C, T, H, W) with one noise box per chosen clip, through every frame (a copy)."""
    rng = numpy_rng(generator)
    out = inputs.clone()
    height, width = inputs.shape[-2:]
    for clip in range(inputs.shape[0]):
        if rng.uniform() >= probability:
            continue
        box = erase_box(height, width, rng)
        if box is None:
            continue
        top, left, h, w = box
        noise = torch.randn((*inputs.shape[1:3], h, w), generator=generator).to(inputs.device, inputs.dtype)
        out[clip, :, :, top : top + h, left : left + w] = noise
    return out


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a box of about (1 - lam) of the frame, clipped at the borders."""
    ratio = math.sqrt(1.0 - lam)
    h, w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
    return max(cy - h // 2, 0), min(cy + h // 2, height), max(cx - w // 2, 0), min(cx + w // 2, width)


def mix(
    inputs: Tensor, labels: Tensor, classes: int, config: AugmentConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """(inputs, targets): mixed with the reversed batch by mixup or cutmix (or unmixed with probability
    1 - ``mix_prob``); targets are class probabilities (B, classes)."""
    rng = numpy_rng(generator)
    targets = F.one_hot(labels, classes).float()
    if not config.mixes or rng.uniform() >= config.mix_prob:
        return inputs, targets
    use_cutmix = config.cutmix > 0 and (config.mixup == 0 or rng.uniform() < config.switch_prob)
    lam = float(rng.beta(config.cutmix, config.cutmix) if use_cutmix else rng.beta(config.mixup, config.mixup))
    partner = inputs.flip(0)
    if use_cutmix:
        height, width = inputs.shape[-2:]
        top, bottom, left, right = cutmix_box(height, width, lam, rng)
        inputs = inputs.clone()
        inputs[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    else:
        inputs = inputs * lam + partner * (1.0 - lam)
    return inputs, targets * lam + targets.flip(0) * (1.0 - lam)
