"""What ``hsearch status`` shows: one row per trial, the Pareto front marked, the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from hsearch.search import rungs
from hsearch.search.robust import LATENCY, robust_front
from hsearch.search.rungs import RungSummary
from hsearch.search.study import front_numbers, load_existing_study


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str  # Optuna state
    outcome: str  # complete | diverged | failed | oom | error | cancelled | duplicate | constraint | stale | running | waiting
    layout: str
    origin: str
    score: float | None
    latency_ms: float | None
    seconds: float | None
    pareto: bool
    note: str
    reeval: str = ""  # re-evaluated: "score mean ± half | latency mean ± half ms", else ""
    robust: bool | None = None  # on the robust front (None: not re-evaluated)
    dominated_by: tuple[int, ...] = ()  # re-evaluated members that separably dominate it


@dataclass(frozen=True)
class StudyStatus:
    study_name: str
    metric: str
    attrs: dict[str, Any]
    rows: list[TrialRow]
    ledger: dict[str, Any]
    fidelity: list[RungSummary] = field(default_factory=list)  # multi-fidelity: per rung, with Spearman


def _outcome(t: optuna.trial.FrozenTrial) -> str:
    if t.state == TrialState.RUNNING:
        return "paused" if t.user_attrs.get("fidelity_state") == rungs.PAUSED else "running"
    if t.state == TrialState.WAITING:
        return "waiting"
    if "outcome" in t.user_attrs:
        return str(t.user_attrs["outcome"])
    # FAIL without our outcome attr: Optuna's stale-trial check failed it (driver lost).
    return "stale" if t.state == TrialState.FAIL else t.state.name.lower()


def _note(t: optuna.trial.FrozenTrial, outcome: str, retried: dict[int, int]) -> str:
    a = t.user_attrs
    if outcome == "duplicate":
        return f"skipped: duplicate of #{a.get('duplicate_of')}"
    if outcome == "stale":
        extra = f", retried as #{retried[t.number]}" if t.number in retried else ""
        return "driver lost (no heartbeat)" + extra
    parts = []
    if outcome == "cancelled" and t.number in retried:
        parts.append(f"requeued as #{retried[t.number]}")
    if "retry_of" in a:
        parts.append(f"retry of #{a['retry_of']}")
    if outcome not in ("complete", "running", "waiting", "stopped") and a.get("reason"):
        parts.append(str(a["reason"]).splitlines()[0][:80])
    if "rung" in a and a.get("fidelity_state") != rungs.TOP:  # a lower-rung result: shown as such
        r = int(a["rung"])
        parts.append(f"rung {r} ({a.get(rungs.key(r, 'fraction'), 0):.3g}): mlm {a.get(rungs.key(r, 'mlm_accuracy'), 0):.4f}"
                     f", latency {a.get(rungs.key(r, 'latency_ms'), 0):.2f} ms")
    return "; ".join(parts)


def study_status(storage: str | None, study_name: str | None) -> StudyStatus:
    """Read a study (the only one in the storage when no name is given); writes nothing."""
    study = load_existing_study(storage, study_name)
    trials = study.get_trials(deepcopy=False)
    front = front_numbers(trials, study)
    retried = {int(t.user_attrs["retry_of"]): t.number for t in trials if "retry_of" in t.user_attrs}
    metric = (study.metric_names or ["score"])[0]
    maximize = [d == optuna.study.StudyDirection.MAXIMIZE for d in study.directions]
    done = [(t.number, t.user_attrs) for t in trials if t.state == TrialState.COMPLETE]
    members = {m.number: m for m in robust_front(done, [metric, LATENCY], maximize)} if len(maximize) == 2 else {}
    rows = []
    for t in trials:
        outcome = _outcome(t)
        seconds = t.user_attrs.get("wall_seconds")
        if seconds is None and t.datetime_start and t.datetime_complete:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        m = members.get(t.number)
        rows.append(
            TrialRow(
                number=t.number,
                state=t.state.name,
                outcome=outcome,
                layout=str(t.user_attrs.get("layout", "")),
                origin=str(t.user_attrs.get("origin", "")),
                score=t.values[0] if t.values else None,
                latency_ms=t.values[1] if t.values else None,
                seconds=seconds,
                pareto=t.number in front,
                note=_note(t, outcome, retried),
                reeval=f"{m.shown(0)} | {m.shown(1, 3)} ms" if m else "",
                robust=m.robust if m else None,
                dominated_by=tuple(m.dominated_by) if m else (),
            )
        )
    ledger = json.loads(study.user_attrs.get("cost_ledger", "{}") or "{}")
    return StudyStatus(study.study_name, metric, dict(study.user_attrs), rows, ledger, rungs.fidelity_report(trials))
