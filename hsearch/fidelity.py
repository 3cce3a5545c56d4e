"""Multi-fidelity search, the pure part: rung schedules, multi-objective promotion, rank correlation.

Rungs are fractions of a recipe's pretraining steps (``fidelity.rungs``, e.g. ``1/9, 1/3, 1``).
Pretraining follows warmup-stable-decay (WSD): one stable "trunk" at the peak learning rate
after warm-up, and for every rung a short linear decay branched off the trunk. A layout promoted
to the next rung resumes the trunk where the last rung's branch left it, so training rung by rung
takes exactly the steps (and, in fp32, reaches exactly the weights) of training straight to the
top rung.

Promotion is asynchronous successive halving (ASHA) with a multi-objective rank, as MO-ASHA
does: a layout that finished rung r goes up when it is in the top ``floor(n / eta)`` of the
``n`` results at rung r, ordered by :func:`mo_order`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from hsearch.front import dominates


def parse_fraction(value: str | float | int) -> float:
    """``"1/9"``, ``0.5`` or ``1`` -> a float in (0, 1]; ValueError otherwise."""
    try:
        number = float(Fraction(str(value).strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{value!r} is not a fraction (e.g. 1/9, 0.25, 1)") from None
    if not 0 < number <= 1:
        raise ValueError(f"{value!r} is not in (0, 1]")
    return number


def check_rungs(rungs: Sequence[str | float]) -> list[float]:
    """The rung fractions, checked: strictly increasing, the last one 1 (the full budget)."""
    fractions = [parse_fraction(r) for r in rungs]
    if not fractions:
        raise ValueError("needs at least one rung")
    if any(b <= a for a, b in zip(fractions, fractions[1:])):
        raise ValueError(f"{list(rungs)} must increase strictly")
    if fractions[-1] != 1.0:
        raise ValueError(f"{list(rungs)} must end at 1 (the recipe's whole pretraining budget)")
    return fractions


@dataclass(frozen=True)
class RungPlan:
    """The step schedule of one layout's WSD pretraining over its rungs.

    ``ends[r]``: steps the model has taken when rung r is done (``round(fraction * total)``);
    ``stable_ends[r]``: the trunk step rung r's decay branches from (``ends[r]`` minus
    ``round(decay * ends[r])``, at least one decay step when ``decay > 0``);
    ``warmup_steps``: linear warm-up, a fraction of the first rung's steps.
    """

    total_steps: int
    ends: tuple[int, ...]
    stable_ends: tuple[int, ...]
    warmup_steps: int

    @classmethod
    def build(cls, total_steps: int, fractions: Sequence[float], *, decay: float, warmup: float) -> "RungPlan":
        if total_steps < 1:
            raise ValueError(f"{total_steps} pretraining steps: need at least one")
        ends = [max(1, round(f * total_steps)) for f in fractions]
        stable = [n - (max(1, round(decay * n)) if decay > 0 else 0) for n in ends]
        for r in range(1, len(ends)):
            if stable[r] <= stable[r - 1] or ends[r] <= ends[r - 1]:
                raise ValueError(
                    f"{total_steps} pretraining steps are too few for these rungs: rungs {r - 1} and {r} "
                    f"would end at steps {ends[r - 1]} and {ends[r]} and branch their decays at "
                    f"{stable[r - 1]} and {stable[r]}; give a larger budget or fewer rungs")
        return cls(total_steps, tuple(ends), tuple(stable), round(warmup * ends[0]))

    @property
    def top(self) -> int:
        return len(self.ends) - 1

    def trunk_factor(self, step: int) -> float:
        """LR multiplier of trunk step ``step`` (0-based): linear warm-up, then the peak."""
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        return 1.0

    def decay_factor(self, step: int, rung: int) -> float:
        """LR multiplier of step ``step`` of rung ``rung``'s decay branch: the trunk's, falling
        linearly towards 0 over the branch (from D/(D+1) to 1/(D+1) for D decay steps)."""
        end, start = self.ends[rung], self.stable_ends[rung]
        if not start <= step < end:
            raise ValueError(f"step {step} is not in rung {rung}'s decay [{start}, {end})")
        return self.trunk_factor(step) * (end - step) / (end - start + 1)

    def steps_to_run(self, rung: int, *, resumed: bool) -> int:
        """Optimiser steps a task takes to finish ``rung``: from the last rung's branch point when
        ``resumed`` (else from scratch, with every lower rung's decay branch on the way)."""
        if resumed:
            return self.ends[rung] - self.stable_ends[rung - 1]
        return self.ends[rung] + sum(self.ends[r] - self.stable_ends[r] for r in range(rung))


# -- multi-objective rank --------------------------------------------------------------


def nondominated_ranks(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Pareto rank of each point: 0 for the front, 1 for the front once it is removed, ..."""
    ranks = [-1] * len(points)
    left = set(range(len(points)))
    level = 0
    while left:
        layer = {i for i in left if not any(dominates(points[j], points[i], maximize) for j in left if j != i)}
        for i in layer:
            ranks[i] = level
        left -= layer
        level += 1
    return ranks


def crowding_distances(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II crowding distance of each point within ``points`` (one Pareto layer): the sum over
    objectives of the gap between its neighbours, normalised by the objective's range; the
    extremes of each objective get infinity."""
    n = len(points)
    dist = [0.0] * n
    if n <= 2:
        return [math.inf] * n
    for m in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][m])
        lo, hi = points[order[0]][m], points[order[-1]][m]
        dist[order[0]] = dist[order[-1]] = math.inf
        if hi == lo:
            continue
        for k in range(1, n - 1):
            dist[order[k]] += (points[order[k + 1]][m] - points[order[k - 1]][m]) / (hi - lo)
    return dist


def mo_order(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices best first: by Pareto rank, then by crowding distance within the rank (larger
    first: spread along the front is worth more than a crowded point), then by index (earlier
    first, so the order is deterministic)."""
    ranks = nondominated_ranks(points, maximize)
    crowd = [0.0] * len(points)
    for level in set(ranks):
        members = [i for i, r in enumerate(ranks) if r == level]
        for i, d in zip(members, crowding_distances([points[i] for i in members])):
            crowd[i] = d
    return sorted(range(len(points)), key=lambda i: (ranks[i], -crowd[i], i))


def promotion_quota(n: int, eta: int) -> int:
    """How many of a rung's ``n`` results go up: the top ``floor(n / eta)``."""
    return n // eta


# -- does a short run predict the long one? -----------------------------------------------


def _average_ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties get average ranks); None below 3 pairs or when either
    side is constant."""
    if len(x) != len(y):
        raise ValueError("spearman needs two sequences of the same length")
    if len(x) < 3:
        return None
    rx, ry = _average_ranks(x), _average_ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


# -- asynchronous successive halving ----------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One layout's result at a rung: its promotion score (maximised) and latency (minimised)."""

    number: int
    score: float
    latency: float


def ranked(population: Sequence[Entry]) -> list[Entry]:
    """A rung's results best first (:func:`mo_order` on score up, latency down)."""
    order = mo_order([(e.score, e.latency) for e in population], [True, False])
    return [population[i] for i in order]


def next_promotion(populations: dict[int, Sequence[Entry]], paused: dict[int, int], eta: int) -> tuple[int, int] | None:
    """ASHA's choice for a free slot: ``(layout number, rung to train)`` of the best paused layout
    inside its rung's promotion quota, trying the highest rung first; None when no layout
    qualifies (then a new layout starts at rung 0). ``paused``: layout number -> its last rung."""
    for rung in sorted(populations, reverse=True):
        quota = promotion_quota(len(populations[rung]), eta)
        for entry in ranked(populations[rung])[:quota]:
            if paused.get(entry.number) == rung:
                return entry.number, rung + 1
    return None


def over_cap(populations: dict[int, Sequence[Entry]], paused: dict[int, int], cap: int) -> list[int]:
    """Paused layouts to stop so that at most ``cap`` keep their state (which bounds the disk that
    state takes): the lowest rung's worst-ranked first, as they are the cheapest to lose and the
    least likely to be promoted."""
    excess = len(paused) - cap
    if excess <= 0:
        return []
    place = {}
    for rung, population in populations.items():
        for i, e in enumerate(ranked(population)):
            if paused.get(e.number) == rung:
                place[e.number] = (rung, -i)
    worst = sorted(paused, key=lambda n: place.get(n, (paused[n], 0)))
    return worst[:excess]
