"""Learning-rate schedules as pure functions of training progress (so resuming needs no state).

``progress`` is in epochs (fractional within an epoch). Warmup ramps linearly from 1/100 of the
base rate over ``warmup_epochs``; then ``multistep`` multiplies by ``gamma`` at each milestone
epoch and ``cosine`` decays to 0 at the last epoch.
"""

from __future__ import annotations

import math

from videoperlin.train.config import OptimConfig


def lr_factor(progress: float, optim: OptimConfig, total_epochs: int) -> float:
    """Multiplier of the base learning rate at ``progress`` epochs."""
    warmup = optim.warmup_epochs
    if warmup > 0 and progress < warmup:
        return 0.01 + 0.99 * progress / warmup
    if optim.schedule == "multistep":
        return optim.gamma ** sum(progress >= m for m in optim.milestones)
    span = max(total_epochs - warmup, 1e-9)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - warmup) / span)))
