"""Two-objective hypervolume of the front, and how it grew over the study.

The reference point is stated wherever the number is shown: for a maximised score it is
0 (or the worst score when one is negative), for a minimised cost 1.1 × the worst value
seen among complete trials. So the hypervolume of a study is comparable across its own
history, not across studies with different worst latencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from hsearch.analysis.pareto import non_dominated
from hsearch.analysis.study import Objective, TrialRecord


def reference_point(recs: Sequence[TrialRecord], objs: Sequence[Objective]) -> tuple[float, ...]:
    done = [r for r in recs if r.complete]
    ref = []
    for i, o in enumerate(objs):
        vals = [r.values[i] for r in done] or [0.0]
        if o.maximize:
            ref.append(min(0.0, min(vals)))
        else:
            worst = max(vals)
            ref.append(worst * 1.1 if worst > 0 else worst + 1.0)
    return tuple(ref)


def hypervolume_2d(points: Sequence[Sequence[float]], objs: Sequence[Objective], ref: Sequence[float]) -> float:
    """Area dominated by the points and bounded by ref (points beyond ref add nothing)."""
    if len(objs) != 2:
        raise ValueError("hypervolume_2d needs exactly two objectives")
    # Turn both objectives into "minimise" so the sweep is the textbook one.
    sign = [-1.0 if o.maximize else 1.0 for o in objs]
    r = (ref[0] * sign[0], ref[1] * sign[1])
    pts = sorted((p[0] * sign[0], p[1] * sign[1]) for p in points)
    pts = [p for p in pts if p[0] < r[0] and p[1] < r[1]]
    area, best_y = 0.0, r[1]
    for x, y in pts:  # ascending x: each point adds the strip below the best y so far
        if y < best_y:
            area += (r[0] - x) * (best_y - y)
            best_y = y
    return area


@dataclass
class HypervolumePoint:
    trial: int
    when: datetime | None
    hypervolume: float


def history(recs: Sequence[TrialRecord], objs: Sequence[Objective], ref: Sequence[float]) -> list[HypervolumePoint]:
    """Hypervolume after each complete trial, in completion order (trial number as tie-break)."""
    done = sorted(
        (r for r in recs if r.complete),
        key=lambda r: (r.datetime_complete or datetime.max, r.number),
    )
    out, seen = [], []
    for r in done:
        seen.append(r)
        front = non_dominated(seen, objs)
        out.append(HypervolumePoint(r.number, r.datetime_complete, hypervolume_2d([f.values for f in front], objs, ref)))
    return out
