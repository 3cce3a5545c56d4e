"""``hsearch plan``: what a search of a space under a recipe and budget will cost, before it runs.

Writes nothing to any study. The cost table is the one a search would use: measured on the
cluster's node (``--address``) or on this machine, and cached, so planning and then running
measure it once.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import statistics
from dataclasses import dataclass
from typing import Any

from hsearch import defaults
from hsearch.budget import format_duration
from hsearch.cost.table import CostTable, Prediction
from hsearch.layout import Layout
from hsearch.search.space import SearchSpace, load_space

ENUMERATE_AT_MOST = 200_000  # larger spaces are sampled
SAMPLE = 20_000


@dataclass(frozen=True)
class Costed:
    layout: str
    predicted: Prediction
    steps: int  # pretraining steps the budget buys (or takes)
    trial_seconds: float


@dataclass(frozen=True)
class Plan:
    space: SearchSpace
    recipe: Any
    table: CostTable
    budget_seconds: float
    concurrency: int
    where: str
    size: int  # layouts in the space (kinds x norms; global choices counted apart)
    looked_at: int  # layouts costed: all of them, or a uniform sample
    cheapest: Costed
    median: Costed
    dearest: Costed
    passing_caps: int  # of those looked at
    trials_fit: int
    caps: Any
    reevaluate_share: float
    rung_seconds: tuple[float, ...] = ()  # multi-fidelity: a task's estimated wall time per rung
    first_rung_fit: int = 0  # layouts the budget scores at the first rung (full brackets)


def space_size(space: SearchSpace) -> int:
    per = lambda n, per_layer: n ** (space.num_layers if per_layer else 1)  # noqa: E731
    return per(len(space.kinds), space.kind_per_layer) * per(len(space.norms), space.norm_per_layer)


def layouts(space: SearchSpace, seed: int = 0) -> tuple[list[Layout], bool]:
    """Every layout of the space, or a uniform sample when it is large; and whether it is all."""
    def build(kinds, norms) -> Layout:
        n = space.num_layers
        return Layout(tuple(kinds) if space.kind_per_layer else (kinds[0],) * n,
                      tuple(norms) if space.norm_per_layer else (norms[0],) * n)

    kind_slots = space.num_layers if space.kind_per_layer else 1
    norm_slots = space.num_layers if space.norm_per_layer else 1
    if space_size(space) <= ENUMERATE_AT_MOST:
        return [build(k, n) for k in itertools.product(space.kinds, repeat=kind_slots)
                for n in itertools.product(space.norms, repeat=norm_slots)], True
    rng = random.Random(seed)
    return [build([rng.choice(space.kinds) for _ in range(kind_slots)],
                  [rng.choice(space.norms) for _ in range(norm_slots)]) for _ in range(SAMPLE)], False


def make_plan(space_path: str, recipe_name: str, overrides: dict[str, Any], budget: str, *,
              address: str | None = None, max_latency_ms: float | None = None, max_params: int | None = None,
              data_dir: str | None = None, trial_overhead: float | None = None,
              reevaluate_share: float = defaults.REEVALUATE_SHARE) -> Plan:
    from hsearch import trial
    from hsearch.search import dispatch
    from hsearch.search.driver import caps as make_caps
    from hsearch.search.driver import rung_seconds, run_budget_seconds, search_seconds, trial_seconds

    budget_s = run_budget_seconds(budget)
    search_s = search_seconds(budget_s, reevaluate_share)
    space = load_space(space_path)
    cap = make_caps(space, max_latency_ms, max_params)
    recipe = trial.load_recipe(recipe_name, overrides or None)
    trial.preflight(recipe, data_dir=data_dir)
    variants = [f"{k}/{n}" for k in space.kinds for n in space.norms]
    if address:
        try:
            resources = dispatch.connect(address, data_dir=data_dir)
            slots = dispatch.plan_slots(resources, float(recipe.resources.cpus), node_cpus=dispatch.largest_node_cpus())
            table = CostTable.from_json(dispatch.measure_cost(slots, recipe, space.num_layers, variants,
                                                              space.norm_per_layer, None))
            where = f"Ray cluster {address}: {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs"
        finally:
            dispatch.shutdown()
    else:
        from hsearch.trial.costing import cost_table

        gpus = _local_gpus()
        slots = dispatch.plan_slots({"CPU": float(os.cpu_count() or 1), "GPU": float(gpus)},
                                    float(recipe.resources.cpus))
        table = cost_table(recipe, num_layers=space.num_layers, variants=variants,
                           mixed_norms=space.norm_per_layer, data_dir=data_dir)
        where = f"this machine: {os.cpu_count()} CPUs, {gpus} GPUs"
    found, complete = layouts(space)
    overhead = trial_seconds(recipe, [], trial_overhead) - (
        recipe.pretrain.budget.amount if recipe.pretrain.budget.kind == "time" else 0.0)
    # Ordered by step time: under a cost-model charge every trial takes its budget, and what
    # differs is how many steps it buys.
    costed = sorted((_cost(table, recipe, lay, overhead) for lay in found),
                    key=lambda c: (c.predicted.step_seconds, c.layout))
    passing = sum(1 for c in costed if all(v <= 0 for v in cap.excess(c.predicted).values()))
    mean_trial = statistics.fmean(c.trial_seconds for c in costed)
    fit = int(search_s * slots.concurrency // mean_trial) if math.isfinite(search_s) else 0
    per_rung: tuple[float, ...] = ()
    first = 0
    fid = recipe.fidelity
    if fid.multi:
        # One successive-halving bracket: eta^(R-1) layouts at the first rung, 1/eta of them at each next.
        per_rung = tuple(rung_seconds(recipe, r, [], trial_overhead) for r in range(len(fid.rungs)))
        width = fid.eta ** (len(per_rung) - 1)
        bracket = sum(width / fid.eta ** r * sec for r, sec in enumerate(per_rung))
        first = int(search_s * slots.concurrency / bracket * width) if math.isfinite(search_s) else 0
    return Plan(space, recipe, table, budget_s, slots.concurrency, where, space_size(space), len(costed),
                costed[0], costed[len(costed) // 2], costed[-1], passing, fit, cap, reevaluate_share,
                per_rung, first)


def _cost(table: CostTable, recipe, layout: Layout, overhead: float) -> Costed:
    from hsearch.trial.runner import charged_steps

    pred = table.predict(layout)
    b = recipe.pretrain.budget
    p = recipe.pretrain
    if b.kind == "time" and p.charge == "cost-model":
        steps = charged_steps(b.amount, pred.step_seconds)
    elif b.kind == "time":
        steps = int(b.amount // pred.step_seconds)
    elif b.kind == "steps":
        steps = int(b.amount)
    else:
        steps = math.ceil(b.amount / (p.batch_size * p.grad_accumulation * p.seq_len))
    pretrain = b.amount if b.kind == "time" and p.charge == "wall-clock" else steps * pred.step_seconds
    return Costed(str(layout), pred, steps, pretrain + overhead)


def _local_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no usable CUDA: plan for the CPU
        return 0


def describe(plan: Plan) -> str:
    """The plan as a person reads it."""
    t = plan.table
    lines = [f"cost table {t.key[:12]} on {t.hardware.get('device_name')} "
             f"({t.hardware.get('threads')} training thread(s), torch {t.hardware.get('torch')}; "
             f"{t.seconds:.0f} s to measure, 0 if cached)",
             f"  {'part':<8} {'step ms':>9} {'latency ms':>11} {'params':>12}"]
    rows = [("fixed", t.fixed), *((v, t.per_layer[v]) for v in t.variants), ("exit LN", t.exit)]
    for name, c in rows:
        lines.append(f"  {name:<8} {c['step_seconds'] * 1000:>9.3f} {c['latency_ms']:>11.4f} {c['params']:>12,.0f}")
    what = "all" if plan.looked_at == plan.size else f"a uniform sample of {plan.looked_at:,}"
    lines.append(f"space {plan.space.name}: {plan.size:,} layouts ({what} costed); recipe {plan.recipe.name} "
                 f"({plan.recipe.pretrain.budget.text}, charged on the {plan.recipe.pretrain.charge.replace('-', ' ')})")
    for label, c in (("cheapest", plan.cheapest), ("median", plan.median), ("dearest", plan.dearest)):
        lines.append(f"  {label:<9} {c.layout:<28} step {c.predicted.step_seconds * 1000:7.2f} ms x {c.steps:>6,} "
                     f"steps  trial ~{format_duration(c.trial_seconds):>7}  latency {c.predicted.latency_ms:.3f} ms  "
                     f"{c.predicted.params:,} params")
    lines.append("  (cheapest..dearest by step time; a trial is its pretraining plus an overhead for fine-tuning, "
                 "latency and data: --trial-overhead, else the search's prior of 60 s + half the budget)")
    if math.isfinite(plan.budget_seconds):
        kept = (f", {plan.reevaluate_share:.0%} kept to re-evaluate the front" if plan.reevaluate_share else "")
        lines.append(f"budget {format_duration(plan.budget_seconds)} at {plan.concurrency} trial(s) at a time "
                     f"({plan.where}{kept}): about {plan.trials_fit} trials")
    if plan.rung_seconds:
        fid = plan.recipe.fidelity
        lines.append(f"multi-fidelity: rungs {', '.join(str(r) for r in fid.rungs)}, eta {fid.eta}; a task is "
                     "estimated at " + ", ".join(f"rung {r} ~{format_duration(sec)}"
                                                 for r, sec in enumerate(plan.rung_seconds)))
        if math.isfinite(plan.budget_seconds):
            lines.append(f"  about {plan.first_rung_fit} layouts at the first rung, "
                         f"{plan.first_rung_fit // fid.eta ** (len(fid.rungs) - 1)} at the top (whole brackets; "
                         "ASHA starts more as slots free up)")
    if plan.caps.active:
        share = plan.passing_caps / plan.looked_at
        count = f"{plan.passing_caps:,}" if plan.looked_at == plan.size else f"about {share * plan.size:,.0f}"
        lines.append(f"caps {_caps_text(plan.caps)}: {count} of {plan.size:,} layouts pass ({100 * share:.1f}%)")
    return "\n".join(lines)


def _caps_text(cap) -> str:
    parts = []
    if cap.max_latency_ms is not None:
        parts.append(f"latency <= {cap.max_latency_ms:g} ms")
    if cap.max_params is not None:
        parts.append(f"params <= {cap.max_params:,}")
    return ", ".join(parts)
