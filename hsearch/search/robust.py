"""The re-evaluation's attribute names, and the robust front read back from them (pure Python).

:mod:`hsearch.search.reevaluate` writes, on the original Optuna trial, for each re-evaluated
metric ``M`` (the study's score metric, e.g. ``mean_accuracy``; every task's ``<task>_accuracy``;
``mlm_accuracy``; ``latency_ms``, measured)::

    reeval_M_per_seed   every value, in run order (pretraining seed j, then fine-tuning seed i)
    reeval_M_mean       the mean
    reeval_M_std        sample standard deviation of the interval's units (absent for one unit)
    reeval_M_ci95       [low, high]: 95% Student-t interval of the mean (absent for one unit)
    reeval_M_n          how many units the interval is over

The interval's unit: a fine-tuning seed when one pretraining seed was run (P = 1); with
P >= 2 pretraining seeds, a pretraining run (its K fine-tuning seeds averaged first), because
fine-tuning seeds of one pretrained model are not independent of each other across models.
``mlm_accuracy`` has one value per pretraining run; ``latency_ms`` one per latency repeat
(K repeats of the latency protocol per run, all pooled: repeats of a measurement).

``pareto``, ``status`` and ``report`` (and the live panel) read only these names; the dominance
rule is :func:`hsearch.front.separably_dominates`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from hsearch.front import robust_front_indices, separably_dominates

LATENCY = "latency_ms"
PREFIX = "reeval_"


def key(metric: str, what: str) -> str:
    """``reeval_<metric>_<what>``, what in per_seed | mean | std | ci95 | n."""
    return f"{PREFIX}{metric}_{what}"


def reevaluated(attrs: Mapping[str, Any], metrics: Sequence[str]) -> bool:
    return all(isinstance(attrs.get(key(m, "mean")), (int, float)) for m in metrics)


def interval(attrs: Mapping[str, Any], metric: str) -> tuple[float, float, float] | None:
    """(mean, low, high) of a re-evaluated metric; (-inf, inf) bounds when it has no interval."""
    mean = attrs.get(key(metric, "mean"))
    if not isinstance(mean, (int, float)):
        return None
    ci = attrs.get(key(metric, "ci95"))
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
        return float(mean), float(ci[0]), float(ci[1])
    return float(mean), -math.inf, math.inf


@dataclass
class Member:
    """One re-evaluated trial against the other re-evaluated trials."""

    number: int
    attrs: Mapping[str, Any]
    means: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]
    robust: bool = True
    dominated_by: list[int] = field(default_factory=list)  # members that separably dominate it
    dominates: list[int] = field(default_factory=list)  # members it separably dominates

    def shown(self, i: int, digits: int = 4) -> str:
        """Objective ``i`` as ``mean ± half-width`` (``mean`` alone without an interval)."""
        lo, hi = self.bounds[i]
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return f"{self.means[i]:.{digits}f}"
        return f"{self.means[i]:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"


def robust_front(items: Sequence[tuple[int, Mapping[str, Any]]], metrics: Sequence[str],
                 maximize: Sequence[bool]) -> list[Member]:
    """The re-evaluated members among ``items`` (trial number, user attrs), in input order, each
    with whether it is on the robust front and which members separably dominate it."""
    members = []
    for number, attrs in items:
        if not reevaluated(attrs, metrics):
            continue
        got = [interval(attrs, m) for m in metrics]
        members.append(Member(number, attrs, tuple(g[0] for g in got), tuple((g[1], g[2]) for g in got)))
    robust = set(robust_front_indices([m.bounds for m in members], maximize))
    for i, m in enumerate(members):
        m.robust = i in robust
        for j, other in enumerate(members):
            if i != j and separably_dominates(other.bounds, m.bounds, maximize):
                m.dominated_by.append(other.number)
                other.dominates.append(m.number)
    for m in members:
        m.dominates.sort()
    return members
