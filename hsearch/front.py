"""Pareto dominance over objective vectors (pure Python): the one front computation.

The search (live panel, ``status``) and analysis (``pareto``, ``report``, hypervolume)
all call this, so a trial is on the front in one place exactly when it is in the others.
"""

from __future__ import annotations

from typing import Sequence


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and strictly better on one."""
    strictly = False
    for x, y, up in zip(a, b, maximize, strict=True):
        if (y > x) if up else (y < x):
            return False
        if x != y:
            strictly = True
    return strictly


def front_indices(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the points no other point dominates (equal points all stay), in input order."""
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p, maximize) for j, q in enumerate(points) if j != i)]


# -- with error bars: separable (interval) dominance --------------------------------------
#
# Rule (the one ``pareto``, ``status`` and ``report`` use for re-evaluated members): each
# objective of a member is an interval (low, high), its 95% interval of the mean
# (:mod:`hsearch.intervals`). A separably dominates B when A is better *beyond the intervals*:
# on every objective A's worst bound is at least as good as B's best bound, and strictly
# better on one. For a maximised objective that is low(A) >= high(B); for a minimised one
# high(A) <= low(B). Overlapping intervals on any objective mean the two are not separable.
# A member without an interval on an objective (one value) has (-inf, inf) there: it neither
# separably dominates nor is separably dominated. With zero-width intervals this is
# :func:`dominates`. The members no other member separably dominates are the "robust front".

Interval = tuple[float, float]


def separably_dominates(a: Sequence[Interval], b: Sequence[Interval], maximize: Sequence[bool]) -> bool:
    """``a`` is better than ``b`` beyond the intervals (rule above); one ``(low, high)`` per objective."""
    strictly = False
    for (a_lo, a_hi), (b_lo, b_hi), up in zip(a, b, maximize, strict=True):
        worst_a, best_b = (a_lo, b_hi) if up else (a_hi, b_lo)
        if (worst_a < best_b) if up else (worst_a > best_b):
            return False
        if worst_a != best_b:
            strictly = True
    return strictly


def robust_front_indices(intervals: Sequence[Sequence[Interval]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the members no other member separably dominates, in input order."""
    return [i for i, p in enumerate(intervals)
            if not any(separably_dominates(q, p, maximize) for j, q in enumerate(intervals) if j != i)]
