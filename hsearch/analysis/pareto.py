"""Pareto front of complete trials, seeds against it, and its table/json/csv forms."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from hsearch import front
from hsearch.analysis.study import Objective, TrialRecord, objectives, records
from hsearch.errors import HsearchError
from hsearch.search.robust import LATENCY, Member, key, robust_front

FORMATS = ("table", "json", "csv")
RULE = ("B is separably dominated by A when A is better beyond the 95% intervals: on every objective A's "
        "worst bound is at least as good as B's best bound, strictly on one (hsearch.front.separably_dominates); "
        "the robust front is the re-evaluated members no other re-evaluated member separably dominates")


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
    robust: list[Member] = field(default_factory=list)  # re-evaluated trials, best mean score first

    @property
    def robust_front(self) -> list[Member]:
        return [m for m in self.robust if m.robust]

    def role(self, number: int) -> str:
        on_front = number in {r.number for r in self.front}
        is_seed = number in {r.number for r, _ in self.seeds}
        return "front+seed" if on_front and is_seed else "front" if on_front else "seed" if is_seed else "trial"

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
    return ParetoResult(study.study_name, objs, best, seeds, recs, robust_members(recs, objs))


def robust_members(recs: Sequence[TrialRecord], objs: Sequence[Objective]) -> list[Member]:
    """The re-evaluated complete trials on (mean score, mean measured latency) with their 95%
    intervals, each marked robust or not (:data:`RULE`), best mean score first."""
    if len(objs) != 2:
        return []
    members = robust_front([(r.number, r.attrs) for r in recs if r.complete], [objs[0].name, LATENCY],
                           [o.maximize for o in objs])
    sign = -1 if objs[0].maximize else 1
    return sorted(members, key=lambda m: (sign * m.means[0], m.number))


def robust_row(m: Member, res: "ParetoResult") -> dict[str, Any]:
    """A re-evaluated member as plain data (json/csv)."""
    score = res.objectives[0].name
    a = m.attrs
    rec = next((r for r in res.trials if r.number == m.number), None)
    return {
        "trial": m.number, "layout": a.get("layout"), "role": res.role(m.number),
        "seed": rec.seed_preset if rec is not None else None,
        f"reeval_{score}_mean": m.means[0], f"reeval_{score}_ci95": a.get(key(score, "ci95")),
        f"reeval_{score}_std": a.get(key(score, "std")),
        "reeval_latency_ms_mean": m.means[1], "reeval_latency_ms_ci95": a.get(key(LATENCY, "ci95")),
        "reeval_latency_ms_std": a.get(key(LATENCY, "std")),
        "reeval_seeds": a.get("reeval_seeds"), "reeval_pretrain_seeds": a.get("reeval_pretrain_seeds"),
        "robust": m.robust, "separably_dominated_by": list(m.dominated_by),
        "separably_dominates": list(m.dominates),
    }


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
    robust = {m.number: robust_row(m, res) for m in res.robust}
    extra = lambda n: {k: v for k, v in robust.get(n, {}).items() if k.startswith("reeval_") or k in (  # noqa: E731
        "robust", "separably_dominated_by")}
    for rec in res.front:
        d = row(rec, res.objectives)
        d["role"] = "front+seed" if rec.number in seed_of else "front"
        d["dominated_by"] = []
        rows.append({**d, **extra(rec.number)})
    for rec, doms in res.seeds:
        if rec.number in front_numbers:
            continue
        d = row(rec, res.objectives)
        d["role"] = "seed"
        d["dominated_by"] = [f.number for f in doms]
        rows.append({**d, **extra(rec.number)})
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
    return _grid(heads, cells, markdown)


def _grid(heads: list[str], cells: list[list[str]], markdown: bool) -> str:
    """A plain-text (aligned columns) or markdown table."""
    if markdown:
        out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
        out += ["| " + " | ".join(line) + " |" for line in cells]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in cells)) if cells else len(h) for i, h in enumerate(heads)]
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)) for line in cells]
    return "\n".join(s.rstrip() for s in out)


def _interval(m: Member, i: int, digits: int) -> str:
    lo, hi = m.bounds[i]
    text = m.shown(i, digits)
    return f"{text} [{lo:.{digits}f}, {hi:.{digits}f}]" if lo > float("-inf") and hi < float("inf") else text


def render_robust(res: ParetoResult, markdown: bool = False) -> str:
    """The re-evaluated members: mean ± half-width [95% interval] of each objective, robust or not,
    and which members separably dominate each (:data:`RULE`)."""
    score = res.objectives[0].name
    heads = ["trial", "role", "layout", f"{score} (mean ± 95%)", "measured latency ms (mean ± 95%)", "seeds",
             "robust", "separably dominated by"]
    cells = []
    for m in res.robust:
        a = m.attrs
        layout = str(a.get("layout", "?"))
        cells.append([f"#{m.number}", res.role(m.number), f"`{layout}`" if markdown else layout,
                      _interval(m, 0, 4), _interval(m, 1, 3),
                      f"{a.get('reeval_seeds', '?')}x{a.get('reeval_pretrain_seeds', '?')}",
                      "yes" if m.robust else "no", ", ".join(f"#{n}" for n in m.dominated_by) or "-"])
    return _grid(heads, cells, markdown)


def robust_text(res: ParetoResult) -> str:
    """The plain-text section ``pareto`` appends when trials were re-evaluated."""
    robust = res.robust_front
    return (f"re-evaluated: {len(res.robust)} trial(s); robust front: "
            f"{', '.join(f'#{m.number}' for m in robust) or 'none'} ({len(robust)} not separably dominated)\n"
            f"rule: {RULE}; seeds = fine-tuning x pretraining seeds, latency timed on a whole node\n"
            + render_robust(res))


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
        if res.robust:
            payload["dominance_rule"] = RULE
            payload["robust_front"] = [m.number for m in res.robust_front]
            payload["reevaluated"] = [robust_row(m, res) for m in res.robust]
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
    text = head + "\n" + render_table(rows, res.objectives)
    return text + "\n\n" + robust_text(res) if res.robust else text
