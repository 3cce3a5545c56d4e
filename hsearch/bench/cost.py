"""``hsearch bench cost``: how well the cost table predicts whole models it never measured.

The probes of a fresh table (every layer variant, one layer and full depth) and the whole
models to check are timed together, round-robin in one measurement (the real training step
and the latency objective's forward), so the drift of a shared machine's speed over the
minutes of a measurement hits both alike; the table is fitted to the probes alone and its
predictions compared with the whole models. Goal: median absolute error <= 5%, worst <= 10%.
"""

from __future__ import annotations

import statistics
from typing import Any, Callable

from hsearch.bench.models import BenchError
from hsearch.layout import resolve

PRESET_LAYOUTS = ("bert-base", "addbert", "hbert-v1", "hbert-v2")
# Sampled by hand to cover mixed norms, L, and exit norms in the middle of a stack.
SAMPLED_LAYOUTS = (
    "SASAASSAASAS:pre",
    "LLSSAALLSSAA:sub",
    "S/post A/sub A/sub S/pre L/post A/pre S/sub S/sub A/post L/pre A/sub S/post",
    "A/pre A/pre S/post S/post L/sub L/sub A/post A/sub S/pre S/pre A/post S/sub",
    "LSLSLSLSLSLS:post",
    "AAAALLLLSSSS:pre",
)
GOAL_MEDIAN, GOAL_WORST = 0.05, 0.10


def bench_cost(recipe_name: str, overrides: dict[str, Any], layouts: list[str] | None = None, *,
               data_dir: str | None = None, device: str | None = None, step_runs: int | None = None,
               max_params_at_once: int | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    import time

    from hsearch.cost.table import fit
    from hsearch.data import prepare_corpus
    from hsearch.trial import load_recipe
    from hsearch.trial.costing import MAX_PARAMS_AT_ONCE, STEP_RUNS, cost_shapes, measure_probes, probe_layouts
    from hsearch.trial.hardware import hardware_info, pick_device
    from hsearch.trial.runner import precision_for

    say = progress or (lambda _msg: None)
    recipe = load_recipe(recipe_name, overrides or None)
    chosen = [resolve(t)[0] for t in (layouts or [*PRESET_LAYOUTS, *SAMPLED_LAYOUTS])]
    depth = {lay.num_layers for lay in chosen}
    if len(depth) != 1:
        raise BenchError(f"--layouts: all layouts need the same number of layers (got {sorted(depth)})")
    variants = sorted({f"{k}/{n}" for lay in chosen for k, n in zip(lay.kinds, lay.norms)})
    num_layers = depth.pop()
    dev = pick_device(device)
    precision, autocast_dtype = precision_for(recipe, dev)
    corpus = prepare_corpus(recipe.corpus, recipe.tokenizer, recipe.pretrain.seq_len, data_dir=data_dir, log=say)
    probes = probe_layouts(variants, num_layers)
    say(f"timing {len(probes)} probes and {len(chosen)} whole models together")
    t0 = time.perf_counter()
    timed = measure_probes(recipe, [*probes, *(str(lay) for lay in chosen)], corpus.tokenizer, corpus.train,
                           options={}, device=dev, autocast_dtype=autocast_dtype, step_runs=step_runs or STEP_RUNS,
                           max_params_at_once=max_params_at_once or MAX_PARAMS_AT_ONCE)
    table = fit(timed[:len(probes)], variants, key="bench", seconds=time.perf_counter() - t0,
                hardware=hardware_info(dev, precision=precision, threads=recipe.resources.cpus),
                shapes=cost_shapes(recipe, {}, num_layers, corpus.tokenizer))
    measured = timed[len(probes):]
    rows = []
    for lay, m in zip(chosen, measured):
        p = table.predict(lay)
        rows.append({"layout": str(lay), "step_ms_predicted": p.step_seconds * 1000, "step_ms": m.step_seconds * 1000,
                     "step_ms_spread": m.step_spread * 1000, "step_error": p.step_seconds / m.step_seconds - 1,
                     "latency_ms_predicted": p.latency_ms, "latency_ms": m.latency_ms,
                     "latency_ms_spread": m.latency_spread, "latency_error": p.latency_ms / m.latency_ms - 1,
                     "params_predicted": p.params, "params": m.params})
    targets = []
    for term in ("step", "latency"):
        errors = [abs(r[f"{term}_error"]) for r in rows]
        med, worst = statistics.median(errors), max(errors)
        targets.append({"target": f"{term}: median absolute error <= {GOAL_MEDIAN:.0%}", "value": f"{med:.1%}",
                        "met": med <= GOAL_MEDIAN})
        targets.append({"target": f"{term}: worst absolute error <= {GOAL_WORST:.0%}", "value": f"{worst:.1%}",
                        "met": worst <= GOAL_WORST})
    exact = all(r["params_predicted"] == r["params"] for r in rows)
    targets.append({"target": "parameters predicted exactly", "value": "yes" if exact else "no", "met": exact})
    lat = recipe.latency
    settings = {"recipe": recipe.name, "recipe_hash": recipe.hash, "overrides": overrides or {},
                "hidden_size": recipe.model.hidden_size, "train shape": f"batch {recipe.pretrain.batch_size} x "
                f"{recipe.pretrain.seq_len} tokens, {recipe.resources.cpus} thread(s)",
                "latency shape": f"batch {lat.batch_size} x {lat.seq_len} tokens, {lat.threads} thread(s), {lat.path}",
                "measurement": f"{len(table.probes)} probes and {len(rows)} whole models round-robin "
                               f"(groups of at most {max_params_at_once or MAX_PARAMS_AT_ONCE:,} parameters), "
                               f"{step_runs or STEP_RUNS} timed steps each, {table.seconds:.0f} s"}
    return {"kind": "cost", "hardware": table.hardware, "settings": settings, "rows": rows, "targets": targets,
            "table": {"fixed": table.fixed, "exit": table.exit, "per_layer": table.per_layer}}
