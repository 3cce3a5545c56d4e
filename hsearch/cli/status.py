"""``hsearch status``: a study's trials, the front marked, the cost ledger."""

from __future__ import annotations

from hsearch.cli.common import add_study_flags, stdout_console


def add(sub) -> None:
    p = sub.add_parser("status", help="table of a study's trials: state, layout, score, latency, front")
    add_study_flags(p)
    p.set_defaults(func=handle)


def handle(args) -> int:
    from hsearch.search.status import study_status

    print_status(study_status(args.storage, args.study))
    return 0


def print_status(status, console=None) -> None:
    from rich.table import Table

    from hsearch.budget import format_duration

    console = console or stdout_console()
    a = status.attrs
    console.print(
        f"study {status.study_name}  space {a.get('space', '?')}  recipe {a.get('recipe', '?')} "
        f"({str(a.get('recipe_hash', '?'))[:12]})  objective {status.metric} (max), "
        f"latency_ms (min, {a.get('latency_objective', 'measured')})",
        highlight=False, soft_wrap=True,
    )
    caps = [f"{label} {a[key]:g}" for key, label in (("max_latency_ms", "latency ≤"), ("max_params", "params ≤"))
            if a.get(key) is not None]
    if caps:
        console.print("caps (predicted, never trained above): " + ", ".join(caps), highlight=False)
    reeval = any(r.robust is not None for r in status.rows)
    table = Table(show_edge=False)
    cols = [("#", "right"), ("state", "left"), ("layout", "left"), ("origin", "left"),
            (status.metric, "right"), ("latency ms", "right"), ("time", "right"), ("front", "center")]
    if reeval:
        cols += [("re-evaluated: mean ± 95% (score | measured latency)", "right"), ("robust", "left")]
    for col, just in (*cols, ("note", "left")):
        table.add_column(col, justify=just, no_wrap=col in ("layout", "origin"))
    for r in status.rows:
        cells = [
            str(r.number), r.outcome, r.layout, r.origin,
            "" if r.score is None else f"{r.score:.4f}",
            "" if r.latency_ms is None else f"{r.latency_ms:.2f}",
            "" if r.seconds is None else format_duration(r.seconds),
            "*" if r.pareto else "",
        ]
        if reeval:
            robust = "" if r.robust is None else "yes" if r.robust else \
                "no: " + ", ".join(f"#{n}" for n in r.dominated_by)
            cells += [r.reeval, robust]
        table.add_row(*cells, r.note)
    console.print(table)
    if reeval:
        console.print("robust: no other re-evaluated trial is better beyond the 95% intervals on both objectives "
                      "(`hsearch pareto` for the rule and the intervals)", highlight=False, soft_wrap=True)
    counts: dict[str, int] = {}
    for r in status.rows:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    console.print("trials: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), highlight=False)
    if status.fidelity:
        from hsearch.search.rungs import describe

        console.print("fidelity (the front compares top-rung layouts only; Spearman: each rung's promotion "
                      "score against the final objective of the layouts that reached the top):",
                      highlight=False, soft_wrap=True)
        for line in describe(status.fidelity):
            console.print("  " + line, highlight=False, soft_wrap=True)
    total = status.ledger.get("total")
    if total:
        console.print(
            f"cost: {total['cpu_seconds'] / 3600:.2f} CPU-h, {total['gpu_seconds'] / 3600:.2f} GPU-h, "
            f"{total['wall_seconds'] / 3600:.2f} trial-h wall over {len(status.ledger.get('runs', []))} run(s)",
            highlight=False,
        )
    if counts.get("duplicate"):
        console.print("duplicates are skipped: a layout already trained under the same recipe is not trained "
                      "again and its earlier trial keeps the result", highlight=False, soft_wrap=True)
