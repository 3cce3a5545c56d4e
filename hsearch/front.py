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
