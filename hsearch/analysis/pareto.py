"""Pareto front of complete trials, seeds against it, and its table/json/csv forms."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Sequence

from hsearch import front
from hsearch.analysis.study import Objective, TrialRecord, objectives, records
from hsearch.errors import HsearchError

FORMATS = ("table", "json", "csv")


def dominates(a: Sequence[float], b: Sequence[float], objs: Sequence[Objective]) -> bool:
    """a is at least as good as b on every objective and strictly better on one."""
    return front.dominates(a, b, [o.maximize for o in objs])


def non_dominated(recs: Sequence[TrialRecord], objs: Sequence[Objective]) -> list[TrialRecord]:
    """Complete trials no other complete trial dominates (equal points all stay)."""
    done = [r for r in recs if r.complete]
    return [done[i] for i in front.front_indices([r.values for r in done], [o.maximize for o in objs])]


@dataclass
class ParetoResult:
    study_name: str
    objectives: list[Objective]
    front: list[TrialRecord]  # sorted by the first objective, best first
    seeds: list[tuple[TrialRecord, list[TrialRecord]]]  # seed trial, the front trials dominating it
    trials: list[TrialRecord]

    @property
    def complete(self) -> list[TrialRecord]:
        return [r for r in self.trials if r.complete]


def pareto(study) -> ParetoResult:
    objs = objectives(study)
    recs = records(study)
    best = non_dominated(recs, objs)
    first = objs[0]
    best.sort(key=lambda r: (-r.values[0] if first.maximize else r.values[0], r.number))
    seeds = []
    for r in seed_evaluations(recs):
        doms = [f for f in best if r.complete and dominates(f.values, r.values, objs)]
        seeds.append((r, doms))
    return ParetoResult(study.study_name, objs, best, seeds, recs)


def seed_evaluations(recs: Sequence[TrialRecord]) -> list[TrialRecord]:
    """One trial per seed layout: its complete evaluation (the latest, if several), else its
    latest attempt; a seed retried after a lost or cancelled attempt shows the retry's result."""
    by_seed: dict[str, TrialRecord] = {}
    for r in sorted(recs, key=lambda r: r.number):
        label = r.seed_preset
        if label is None:
            continue
        held = by_seed.get(label)
        if held is None or r.complete or not held.complete:
            by_seed[label] = r
    return sorted(by_seed.values(), key=lambda r: r.number)


def row(rec: TrialRecord, objs: Sequence[Objective]) -> dict[str, Any]:
    """A flat row: the objectives, scores, latency and cost of one trial."""
    a = rec.attrs
    out: dict[str, Any] = {"trial": rec.number, "layout": rec.layout, "state": rec.state}
    for i, o in enumerate(objs):
        out[o.name] = rec.values[i] if rec.values is not None else None
    out["mlm_accuracy"] = a.get("mlm_accuracy")
    for task, acc in rec.task_accuracies().items():
        out[f"{task}_accuracy"] = acc
    # The objective (above) is the cost table's prediction when the study had one; the
    # latency timed at the end of the trial is shown beside it.
    out["latency_ms_measured"] = a.get("latency_ms")
    out["latency_ms_spread"] = a.get("latency_ms_spread")
    out["params"] = a.get("params")
    out["tokens_seen"] = a.get("tokens_seen")
    out["origin"] = rec.origin or None
    return out


def to_rows(res: ParetoResult) -> list[dict[str, Any]]:
    """Front rows then seed rows; each says its role and which front trials dominate it."""
    rows = []
    front_numbers = {r.number for r in res.front}
    seed_of = {r.number: doms for r, doms in res.seeds}
    for rec in res.front:
        d = row(rec, res.objectives)
        d["role"] = "front+seed" if rec.number in seed_of else "front"
        d["dominated_by"] = []
        rows.append(d)
    for rec, doms in res.seeds:
        if rec.number in front_numbers:
            continue
        d = row(rec, res.objectives)
        d["role"] = "seed"
        d["dominated_by"] = [f.number for f in doms]
        rows.append(d)
    return rows


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def _latency(d: dict[str, Any]) -> str:
    if d.get("latency_ms_measured") is None:
        return "-"
    spread = d.get("latency_ms_spread")
    measured = d["latency_ms_measured"]
    return f"{measured:.2f} ± {spread:.2f}" if spread is not None else f"{measured:.2f}"


def table_columns(rows: list[dict[str, Any]], objs: Sequence[Objective]) -> list[str]:
    tasks = sorted({k for d in rows for k in d if k.endswith("_accuracy") and k != "mlm_accuracy"} - {o.name for o in objs})
    score = [o.name for o in objs if o.name != "latency_ms"]
    cols = ["trial", "role", "layout", *score, *tasks, "mlm_accuracy", "latency_ms", "latency_ms_measured", "params",
            "tokens_seen", "dominated_by"]
    return list(dict.fromkeys(cols))


def render_table(rows: list[dict[str, Any]], objs: Sequence[Objective], markdown: bool = False) -> str:
    cols = table_columns(rows, objs)
    heads = [{"latency_ms": "latency_ms (objective)", "latency_ms_measured": "measured ms (steady ± IQR)"}.get(c, c)
             for c in cols]
    cells = []
    for d in rows:
        line = []
        for c in cols:
            if c == "latency_ms_measured":
                line.append(_latency(d))
            elif c == "dominated_by":
                line.append(", ".join(f"#{n}" for n in d.get(c) or []) or "-")
            elif c == "trial":
                line.append(f"#{d[c]}")
            elif c == "layout" and markdown:
                line.append(f"`{d[c]}`")
            else:
                line.append(_fmt(d.get(c)))
        cells.append(line)
    if markdown:
        out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
        out += ["| " + " | ".join(line) + " |" for line in cells]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in cells)) if cells else len(h) for i, h in enumerate(heads)]
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)) for line in cells]
    return "\n".join(s.rstrip() for s in out)


def render(res: ParetoResult, fmt: str) -> str:
    if fmt not in FORMATS:
        raise HsearchError(f"--format {fmt!r} is not known (allowed: {', '.join(FORMATS)})")
    rows = to_rows(res)
    if fmt == "json":
        payload = {
            "study": res.study_name,
            "objectives": [{"name": o.name, "direction": o.direction} for o in res.objectives],
            "complete_trials": len(res.complete),
            "front": [d for d in rows if d["role"] != "seed"],
            "seeds": [d for d in rows if d["role"] != "front"],
        }
        return json.dumps(payload, indent=2, sort_keys=False)
    if fmt == "csv":
        cols: list[str] = []
        for d in rows:
            cols += [k for k in d if k not in cols]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        for d in rows:
            writer.writerow({k: (" ".join(map(str, v)) if isinstance(v, list) else v) for k, v in d.items()})
        return buf.getvalue().rstrip("\n")
    objs = ", ".join(f"{o.name} ({o.direction})" for o in res.objectives)
    head = (
        f"study {res.study_name}: {len(res.front)} Pareto-optimal of {len(res.complete)} complete trials "
        f"({len(res.trials)} in all); objectives {objs}"
    )
    if not rows:
        return head + "\nno complete trials yet"
    return head + "\n" + render_table(rows, res.objectives)
