"""The optimisation policy shared by pretraining and fine-tuning: weight-decay groups and the
learning-rate schedule.

The schedule is driven by the fraction of the run used (as in cramming): pretraining passes
the fraction of its budget (time, tokens or steps), fine-tuning the fraction of its steps.
Because a fraction, not a step count, drives it, a run cut off by a wall-clock budget has
still finished its warm-up and annealed to zero exactly when the budget ends.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and norm weights (vectors), as BERT and cramming do."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(fraction: float, *, warmup: float, schedule: str) -> float:
    """Multiplier of the peak LR at ``fraction`` in [0, 1] of the run; ``warmup`` is a fraction too."""
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


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
