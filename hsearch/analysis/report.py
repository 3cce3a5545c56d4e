"""`hsearch report`: a self-contained folder with the front, its history and its reasons."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hsearch.analysis import hypervolume as hv
from hsearch.analysis import plots
from hsearch.analysis.importance import Importances, layer_effects, param_importances
from hsearch.analysis.pareto import RULE, ParetoResult, pareto, render_robust, render_table, to_rows
from hsearch.analysis.folders import staged_folder, write_marker
from hsearch.analysis.study import TrialRecord, load_study, study_info
from hsearch.errors import HsearchError

MARKER = "report.json"  # the report's summary, and what marks the folder as hsearch's
FILES = ("report.md", "pareto.png", "pareto.html", "hypervolume.png", "layers.png", MARKER)


@dataclass
class ReportSummary:
    out: Path
    study_name: str
    complete: int
    front: int
    reference_point: tuple[float, ...]
    hypervolume: float
    files: tuple[str, ...] = FILES


def write_report(storage: str | None, study_name: str | None, out: str | Path, *, force: bool = False) -> ReportSummary:
    """Write the report folder: a new or empty one, or (``force``) one an earlier report wrote."""
    study = load_study(storage, study_name)
    res = pareto(study)
    if len(res.objectives) != 2:
        raise HsearchError(f"study {study.study_name} has {len(res.objectives)} objectives; the report needs 2")
    if not res.complete:
        raise HsearchError(f"study {study.study_name} has no complete trials yet; nothing to report")
    objs = res.objectives
    ref = hv.reference_point(res.trials, objs)
    history = hv.history(res.trials, objs, ref)
    eff = layer_effects(res.trials, objs)
    imp = param_importances(study, res.trials, objs)
    out = Path(out)
    with staged_folder(out, MARKER, force=force) as tmp:
        plots.pareto_png(res, tmp / "pareto.png")
        plots.pareto_html(res, tmp / "pareto.html")
        plots.hypervolume_png(history, objs, ref, tmp / "hypervolume.png")
        plots.layers_png(eff, imp, objs, tmp / "layers.png")
        if res.robust:
            plots.robust_png(res, tmp / "robust.png")
        (tmp / "report.md").write_text(_markdown(study, res, ref, history, imp), encoding="utf-8")
        final = history[-1].hypervolume if history else 0.0
        write_marker(tmp, MARKER, {
            "hsearch_report": 1, "study": study.study_name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "complete": len(res.complete), "front": [r.number for r in res.front],
            "reference_point": list(ref), "hypervolume": final,
            "robust_front": [m.number for m in res.robust_front] if res.robust else None,
        })
    files = (*FILES[:-1], "robust.png", FILES[-1]) if res.robust else FILES
    return ReportSummary(out, study.study_name, len(res.complete), len(res.front), ref, final, files)


def cost_rows(recs: list[TrialRecord]) -> tuple[list[tuple[int, str, float, float, float]], dict[str, float]]:
    """Per trial (number, outcome, wall, CPU, GPU hours) from the search's cost attrs, and totals."""
    rows, totals = [], {"wall": 0.0, "cpu": 0.0, "gpu": 0.0}
    for r in recs:
        a = r.attrs
        if "wall_seconds" not in a and "total_seconds" not in a:
            continue  # never reached a worker
        wall = float(a.get("wall_seconds", a.get("total_seconds", 0.0))) / 3600
        cpu = float(a.get("cpu_seconds", 0.0)) / 3600
        gpu = float(a.get("gpu_seconds", 0.0)) / 3600
        for k, v in (("wall", wall), ("cpu", cpu), ("gpu", gpu)):
            totals[k] += v
        rows.append((r.number, str(a.get("outcome", r.state.lower())), wall, cpu, gpu))
    return rows, totals


def _value(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return "`" + json.dumps(v, sort_keys=True) + "`"
    return str(v)


def seed_verdicts(res: ParetoResult) -> list[tuple[TrialRecord, str]]:
    """For each seed layout: whether a found (non-seed) re-evaluated layout separably dominates it."""
    by_number = {m.number: m for m in res.robust}
    seeds = {r.number for r, _ in res.seeds}
    layout = {r.number: r.layout for r in res.trials}
    out = []
    for rec, _ in res.seeds:
        m = by_number.get(rec.number)
        if m is None:
            out.append((rec, "not re-evaluated"))
            continue
        found = [n for n in m.dominated_by if n not in seeds]
        if found:
            out.append((rec, "separably dominated by " + ", ".join(f"#{n} `{layout[n]}`" for n in found)))
        else:
            out.append((rec, "no found layout dominates it separably"
                        + (" (it is on the robust front)" if m.robust else
                           f" (seed(s) {', '.join(f'#{n}' for n in m.dominated_by)} do)")))
    return out


def _robust_section(res: ParetoResult) -> list[str]:
    if not res.robust:
        return ["", "## Re-evaluation", "",
                "No trial has been re-evaluated yet (`hsearch reevaluate`, or `hsearch run --budget ...` with "
                "`--reevaluate-share` above 0): the front above is one pretraining and one fine-tuning run per point."]
    score = res.objectives[0].name
    robust = res.robust_front
    lines = [
        "", "## Re-evaluation: the front with error bars", "",
        f"{len(res.robust)} trials re-evaluated (front members and seeds): {score} as the mean over fine-tuning "
        "seeds (K) from the same pretrained model, times pretraining seeds (P), and latency timed again on a Ray "
        "task that held a whole node; bars and brackets are 95% Student-t intervals of the mean. "
        f"Rule: {RULE}.", "",
        "Robust front: " + (", ".join(f"#{m.number} `{m.attrs.get('layout')}`" for m in robust) or "none") + ".",
        "", "![Front with 95% intervals](robust.png)", "",
        render_robust(res, markdown=True), "",
        "### Seed layouts against the found layouts", "",
    ]
    for rec, verdict in seed_verdicts(res):
        name = "" if rec.seed_preset == rec.layout else f"**{rec.seed_preset}** "
        lines.append(f"- {name}`{rec.layout}` (trial #{rec.number}): {verdict}")
    return lines


def _fidelity_section(study) -> list[str]:
    """Multi-fidelity studies: layouts per rung, and whether the short runs predicted the long ones."""
    from hsearch.search.rungs import fidelity_report

    rows = fidelity_report(study.get_trials(deepcopy=False))
    if not rows:
        return []
    lines = ["## Fidelity", "",
             "Layouts were scored at every rung below the top on held-out MLM accuracy and predicted latency "
             "and promoted by asynchronous successive halving; the front above compares top-rung layouts only. "
             "Spearman's rho: each rung's promotion score against the final objective, over the layouts that "
             "reached the top (a rho near 1 means the short runs ranked the layouts as the long ones did).", "",
             "| rung | fraction of the budget | layouts | Spearman vs top (layouts) |", "|---|---|---|---|"]
    for r in rows:
        rho = "" if r.rung == rows[-1].rung else (f"{r.rho:+.2f} ({r.pairs})" if r.rho is not None
                                                   else f"n/a ({r.pairs})")
        frac = "?" if r.fraction is None else f"{r.fraction:.3g}"
        lines.append(f"| {r.rung} | {frac} | {r.layouts} | {rho} |")
    return lines + [""]


def _markdown(study, res: ParetoResult, ref, history, imp: Importances) -> str:
    info = study_info(study)
    objs = res.objectives
    states = Counter(r.state for r in res.trials)
    lines = [
        f"# hsearch report: {study.study_name}",
        "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} by `hsearch report`. "
        f"{len(res.trials)} trials ({', '.join(f'{n} {s.lower()}' for s, n in sorted(states.items()))}); "
        f"objectives: {', '.join(f'{o.name} ({o.direction})' for o in objs)}.",
        "",
        "## Setup",
        "",
        "| | |",
        "|---|---|",
    ]
    for key in ("space", "recipe", "recipe_hash", "objective", "budget", "sampler", "seed", "hardware"):
        if key in info:
            lines.append(f"| {key} | {_value(info[key])} |")
    extra = sorted(k for k in info if k not in {"space", "recipe", "recipe_hash", "objective", "budget", "sampler",
                                                "seed", "hardware", "cost_ledger", "reevaluations"}
                   and not k.startswith("recipe:"))
    for key in extra:
        lines.append(f"| {key} | {_value(info[key])} |")
    devices = sorted({str(r.attrs.get("device")) for r in res.trials if r.attrs.get("device")})
    if devices:
        lines.append(f"| trial devices | {', '.join(devices)} |")
    rows = to_rows(res)
    lines += [
        "",
        "## Pareto front",
        "",
        f"{len(res.front)} of {len(res.complete)} complete trials are Pareto-optimal "
        "(no other trial is at least as good on both objectives and better on one).",
        "",
        "![Pareto front](pareto.png)",
        "",
        "Interactive version (hover shows the layout): [pareto.html](pareto.html)",
        "",
        render_table([d for d in rows if d["role"] != "seed"], objs, markdown=True),
        "",
        "## Seeds against the front",
        "",
    ]
    if res.seeds:
        for rec, doms in res.seeds:
            name = "" if rec.seed_preset == rec.layout else f"**{rec.seed_preset}** "
            if not rec.complete:
                lines.append(f"- {name}`{rec.layout}` (trial #{rec.number}): {rec.state.lower()}, "
                             f"{rec.attrs.get('reason') or rec.attrs.get('error') or 'no objective values'}")
            elif doms:
                by = ", ".join(f"#{d.number} `{d.layout}`" for d in doms)
                lines.append(f"- {name}`{rec.layout}` (trial #{rec.number}): dominated by {by}")
            else:
                lines.append(f"- {name}`{rec.layout}` (trial #{rec.number}): on the front")
        lines += ["", render_table([d for d in rows if d["role"] != "front"], objs, markdown=True)]
    else:
        lines.append("The study has no seed trials (origin `seed:<preset>`).")
    lines += _robust_section(res)
    ref_text = ", ".join(f"{o.name} = {v:g}" for o, v in zip(objs, ref))
    lines += [
        "",
        "## Hypervolume",
        "",
        f"Reference point: ({ref_text}) — 0 for the maximised score, 1.1 × the worst complete "
        f"trial for the minimised latency. Final hypervolume: {history[-1].hypervolume:.6g} "
        f"after {len(history)} complete trials.",
        "",
        "![Hypervolume](hypervolume.png)",
        "",
    ]
    lines += _fidelity_section(study)
    lines += [
        "## Layers",
        "",
        "For each layer position: the mean objective of complete trials with a given attention "
        "kind (or norm) there, minus the mean over all complete trials (green = better for that "
        "objective), and Optuna's parameter importances (PED-ANOVA; the maximised objective is "
        "negated because the evaluator rewards low values).",
        "",
        "![Layers](layers.png)",
        "",
    ]
    for o in objs:
        if o.name in imp.values:
            top = ", ".join(f"{k} {v:.2f}" for k, v in list(imp.values[o.name].items())[:5])
            lines.append(f"- importance for {o.name}: {top}")
        else:
            lines.append(f"- importance for {o.name}: {imp.notes.get(o.name, 'not computed')}")
    cost, totals = cost_rows(res.trials)
    lines += [
        "",
        "## Cost ledger",
        "",
        f"Total over {len(cost)} dispatched trials: {totals['gpu']:.4f} GPU-hours, {totals['cpu']:.4f} CPU-hours, "
        f"{totals['wall']:.4f} wall-clock hours (CPU/GPU hours as charged by the search: the CPUs or GPUs "
        "a trial held times its wall time).",
        "",
    ]
    runs = info.get("cost_ledger", {}).get("runs") if isinstance(info.get("cost_ledger"), dict) else None
    if runs:
        lines += [f"Search runs recorded in the study ledger: {len(runs)}.", ""]
    lines += ["| trial | outcome | wall h | CPU h | GPU h |", "|---|---|---|---|---|"]
    lines += [f"| #{n} | {o} | {w:.4f} | {c:.4f} | {g:.4f} |" for n, o, w, c, g in cost]
    lines.append("")
    return "\n".join(lines)
