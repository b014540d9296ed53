"""Learning-rate schedule: linear warm-up, then cosine from lr to min_lr_ratio * lr over the run's progress."""
from __future__ import annotations

import math


def lr_at(step: int, progress: float, lr: float, warmup_steps: int, min_lr_ratio: float) -> float:
    """`progress` in [0, 1] (steps or wall clock, whichever is further) drives the cosine after warm-up."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    p = min(max(progress, 0.0), 1.0)
    floor = lr * min_lr_ratio
    return floor + 0.5 * (lr - floor) * (1.0 + math.cos(math.pi * p))
