"""Rung results on Optuna trials: the stable attribute names, and what is read back from them.

One Optuna trial per layout. Each rung a layout finishes adds ``rung<r>_*`` user attributes (the
dashboard lists them on the trial page); ``rung`` is the highest rung done and ``fidelity_state``
says where the layout stands:

- ``running``: a rung is training now;
- ``paused``: waiting at rung ``rung`` for a promotion (the trial stays RUNNING, kept alive by
  its driver's heartbeat; its trunk state is the file in ``state_file``);
- ``stopped``: not promoted (below the keep quota, or paused when the run ended); the trial is
  PRUNED and its state file deleted;
- ``top``: finished the top rung; the trial is COMPLETE with the search's objective values.

Only top-rung results are compared with each other on the front; lower rungs are compared only
within their rung (promotion) and against the top (the fidelity report).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from optuna.trial import FrozenTrial, TrialState

from hsearch.fidelity import Entry, spearman

RUNNING, PAUSED, STOPPED, TOP = "running", "paused", "stopped", "top"


def key(rung: int, name: str) -> str:
    return f"rung{rung}_{name}"


def rung_attrs(rung: int, fraction: float, record: dict[str, Any], score: float, latency: float,
               cost: dict[str, float], node: str | None) -> dict[str, Any]:
    """A finished rung as trial attributes (stable names)."""
    attrs = {
        key(rung, "fraction"): round(fraction, 6),
        key(rung, "steps"): record["steps"],
        key(rung, "mlm_accuracy"): record["mlm_accuracy"],
        key(rung, "mlm_loss"): record["mlm_loss"],
        key(rung, "score"): score,
        key(rung, "latency_ms"): latency,
        key(rung, "steps_run"): record["steps_run"],
        key(rung, "ray_node"): node,
    }
    attrs.update({key(rung, name): value for name, value in cost.items()})
    return {k: v for k, v in attrs.items() if v is not None}


def last_rung(t: FrozenTrial) -> int | None:
    """The highest rung ``t`` has a result for (its score is written last of a rung's attrs, after
    the trunk state was saved), or None."""
    done = [int(k[4:-6]) for k in t.user_attrs if k.startswith("rung") and k.endswith("_score")]
    return max(done) if done else None


def populations(trials: Iterable[FrozenTrial], below: int) -> dict[int, list[Entry]]:
    """Every rung below ``below``: the layouts with a result there (any state: a stopped layout
    still counts in its rung's ranking)."""
    out: dict[int, list[Entry]] = {r: [] for r in range(below)}
    for t in trials:
        for r in range(below):
            score, lat = t.user_attrs.get(key(r, "score")), t.user_attrs.get(key(r, "latency_ms"))
            if score is not None and lat is not None and math.isfinite(score) and math.isfinite(lat):
                out[r].append(Entry(t.number, float(score), float(lat)))
    return out


def summed_cost(trial: FrozenTrial, cost: dict[str, float]) -> dict[str, float]:
    """A trial's cost attrs after one more task: earlier rungs' cost plus this one's."""
    return {k: round(float(trial.user_attrs.get(k, 0.0)) + v, 3) for k, v in cost.items()}


@dataclass(frozen=True)
class RungSummary:
    rung: int
    fraction: float | None
    layouts: int  # with a result at this rung
    rho: float | None  # Spearman: this rung's score against the top rung's objective value
    pairs: int  # layouts in that correlation (those that reached the top)


def fidelity_report(trials: Sequence[FrozenTrial], num_rungs: int | None = None) -> list[RungSummary]:
    """Per rung: how many layouts reached it, and among the layouts that reached the top rung
    (complete trials) the rank correlation between the rung's promotion score and the final
    objective. Empty for a single-fidelity study."""
    top_rung = max((int(t.user_attrs["rung"]) for t in trials if "rung" in t.user_attrs), default=None)
    if num_rungs is None:
        if top_rung is None:
            return []
        num_rungs = top_rung + 1
    if num_rungs < 2:
        return []
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    out = []
    for r in range(num_rungs - 1):
        reached = [t for t in trials if key(r, "score") in t.user_attrs]
        pairs = [(float(t.user_attrs[key(r, "score")]), float(t.values[0])) for t in done
                 if key(r, "score") in t.user_attrs]
        fraction = next((t.user_attrs[key(r, "fraction")] for t in reached), None)
        rho = spearman([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None
        out.append(RungSummary(r, fraction, len(reached), rho, len(pairs)))
    top_reached = sum(1 for t in trials if t.user_attrs.get("fidelity_state") == TOP)
    out.append(RungSummary(num_rungs - 1, 1.0, top_reached, None, 0))
    return out


def describe(rows: Sequence[RungSummary]) -> list[str]:
    """The report as lines (``status`` and ``report`` print them)."""
    lines = []
    for row in rows:
        frac = f"{row.fraction:.3g}" if row.fraction is not None else "?"
        text = f"rung {row.rung} ({frac} of the budget): {row.layouts} layout(s)"
        if row.rung < rows[-1].rung:
            text += (f"; Spearman vs the top rung {row.rho:+.2f} over {row.pairs}" if row.rho is not None
                     else f"; Spearman vs the top rung: needs 3+ layouts at the top with this rung ({row.pairs})")
        lines.append(text)
    return lines
