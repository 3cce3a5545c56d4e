"""Learning-rate schedule driven by the fraction of the budget used (as in cramming).

Because the fraction, not a step count, drives it, a run cut off by a wall-clock budget has
still finished its warm-up and annealed to zero exactly when the budget ends.
"""

from __future__ import annotations

import math


def lr_factor(fraction: float, *, warmup: float, schedule: str) -> float:
    """Multiplier of the peak LR at ``fraction`` in [0, 1] of the budget."""
    f = min(max(fraction, 0.0), 1.0)
    if warmup > 0 and f < warmup:
        return f / warmup
    if schedule == "constant":
        return 1.0
    progress = (f - warmup) / (1.0 - warmup) if warmup < 1 else 1.0
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule!r} (allowed: linear, cosine, constant)")
