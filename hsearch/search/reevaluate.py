"""Re-evaluation of finalists: several seeds and latency timed on a whole node, with intervals.

Which trials: the study's Pareto front (its ``top`` best by score, all by default), then the
seed layouts' complete evaluations (bert-base, addbert, hbert-v1, hbert-v2 in the paper's space),
for comparison. A trial already re-evaluated with the same K and P is not run again.

How (one member): the trial is run again, as it ran in the search, with ``finetune.seeds: K``
-- the same layout, the same resolved recipe (stored on the study as ``recipe:<hash>`` by
``hsearch run``), the same pretraining seed and the same cost table. Under
``pretrain.charge: cost-model`` pretraining is a fixed number of steps from a fixed seed, so it
rebuilds the very same pretrained model (checked: ``reeval_same_pretraining`` compares the
re-run's held-out MLM accuracy and steps with the trial's), and the K fine-tuning seeds
``seed, seed+1, ...`` start from it; the first is the trial's own fine-tuning. Under a
wall-clock charge the re-run trains for as many steps as the clock allows again, so it is a new
pretrained model. With ``P`` pretraining seeds the run is repeated with ``pretrain.seed`` =
seed + j (j < P). Each run is one Ray task that holds a whole node (all its CPUs,
:func:`hsearch.search.dispatch.whole_node`), so the latency protocol times the encoder with no
other trial on the machine; it is run K times per run (``latency_repeats``).

What is stored on the original trial: :mod:`hsearch.search.robust` (the per-metric names) and
:func:`aggregate` (the rest). What it cost is on the trial (``reeval_seconds``: wall time of its
runs; ``reeval_cpu_seconds``/``reeval_gpu_seconds``: what they held) and in the study's
``reevaluations`` log, one entry per re-evaluation (K, P, members, seconds).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from hsearch.errors import HsearchError
from hsearch import defaults
from hsearch.intervals import spread
from hsearch.search.robust import LATENCY, key
from hsearch.search.study import front_numbers, seed_label, set_finished_trial_attrs

GRACE_S = 10.0  # seconds a run gets to stop by itself once the deadline is reached


class ReevalError(HsearchError, ValueError):
    """A re-evaluation that cannot be done as asked."""


@dataclass(frozen=True)
class Job:
    """One run of a member: its layout under its recipe with K fine-tuning seeds, pretraining seed ``seed``."""

    number: int  # the original trial
    layout: str
    recipe: Any  # hsearch.trial.Recipe with finetune.seeds = K and pretrain.seed = seed
    seed: int
    cost_table: str | None
    estimate: float  # seconds
    latency_repeats: int


@dataclass
class ReevalSummary:
    seeds: int
    pretrain_seeds: int
    members: list[int] = field(default_factory=list)  # chosen, in order
    done: list[int] = field(default_factory=list)  # re-evaluated now
    already: list[int] = field(default_factory=list)  # re-evaluated earlier with the same K and P
    failed: dict[int, str] = field(default_factory=dict)  # number -> why (a run failed or was cancelled)
    not_started: list[int] = field(default_factory=list)  # the time left did not cover them
    seconds: float = 0.0


def check_counts(seeds: int, pretrain_seeds: int, top: int | None = None) -> None:
    if not isinstance(seeds, int) or seeds < 1:
        raise ReevalError(f"--seeds {seeds}: must be a positive number of fine-tuning seeds")
    if not isinstance(pretrain_seeds, int) or pretrain_seeds < 1:
        raise ReevalError(f"--pretrain-seeds {pretrain_seeds}: must be a positive number of pretraining seeds")
    if top is not None and top < 1:
        raise ReevalError(f"--top {top}: must be at least 1")


def members(study: optuna.Study, top: int | None = None, with_seeds: bool = True) -> list[FrozenTrial]:
    """The front's complete trials (best score first, the ``top`` first N), then each seed layout's
    latest complete evaluation that is not among them."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = front_numbers(done, study)
    front = sorted((t for t in done if t.number in best), key=lambda t: (-t.values[0], t.number))
    chosen = front[:top] if top is not None else front
    if with_seeds:
        by_label: dict[str, FrozenTrial] = {}
        for t in sorted(done, key=lambda t: t.number):
            label = seed_label(t)
            if label is not None:
                by_label[label] = t
        have = {t.number for t in chosen}
        chosen += [t for t in sorted(by_label.values(), key=lambda t: t.number) if t.number not in have]
    return chosen


def stored_recipe(study: optuna.Study, trial: FrozenTrial, fallback=None):
    """The resolved recipe ``trial`` trained under: the study's ``recipe:<hash>``, else ``fallback``
    when its hash is the trial's."""
    from hsearch.trial.recipe import Recipe

    want = trial.user_attrs.get("recipe_hash")
    text = study.user_attrs.get(f"recipe:{want}")
    if text:
        recipe = Recipe.from_dict(json.loads(text), f"study {study.study_name} attr recipe:{want}")
        if recipe.hash == want:
            return recipe
    if fallback is not None and fallback.hash == want:
        return fallback
    given = f"; --recipe/--set give hash {fallback.hash}" if fallback is not None else ""
    raise ReevalError(
        f"trial {trial.number}: study {study.study_name!r} holds no recipe with hash {want} (studies made before "
        f"hsearch stored recipes); pass --recipe R [--set KEY=VALUE ...] resolving to that hash{given}"
    )


def estimate_seconds(trial: FrozenTrial, seeds: int) -> float:
    """A run's expected wall time: the trial's, with fine-tuning and latency scaled to K seeds, x 1.1."""
    a = trial.user_attrs
    try:
        result = json.loads(a.get("result") or "{}")
    except ValueError:
        result = {}
    wall = float(a.get("wall_seconds") or result.get("total_seconds") or 0.0)
    tasks = result.get("tasks") or {}
    had = max([len(t.get("seeds") or [1]) for t in tasks.values()] or [1])
    finetune = float(result.get("finetune_seconds") or 0.0)
    latency = float(result.get("latency_seconds") or 0.0)
    return 1.1 * (wall + finetune * (seeds / had - 1) + latency * (seeds - 1))


def aggregate(trial: FrozenTrial | None, runs: Sequence[Any], score_metric: str) -> dict[str, Any]:
    """The ``reeval_*`` attributes of one member from its runs (TrialResults, pretraining seed order).

    Per metric (:mod:`hsearch.search.robust`): every value, the mean, and the standard deviation
    and 95% interval over the units: fine-tuning seeds when there is one run, the runs' means
    when there are several; ``latency_ms`` pools every repeat of every run.
    """
    if not runs:
        raise ValueError("aggregate of no runs")
    tasks = sorted(runs[0].tasks)
    k = len(runs[0].tasks[tasks[0]].score_per_seed) if tasks else 1
    nested: dict[str, list[list[float]]] = {}
    for name in tasks:
        nested[f"{name}_accuracy"] = [list(r.tasks[name].score_per_seed) for r in runs]
        nested[f"{name}_test_accuracy"] = [list(r.tasks[name].report_per_seed) for r in runs]
    if tasks:
        nested["mean_accuracy"] = [[sum(r.tasks[n].score_per_seed[i] for n in tasks) / len(tasks) for i in range(k)]
                                   for r in runs]
    nested["mlm_accuracy"] = [[r.mlm_accuracy] for r in runs]
    nested[LATENCY] = [list(r.latency_ms_repeats) or [r.latency_ms] for r in runs]
    if score_metric not in nested:
        raise ValueError(f"score metric {score_metric!r} is not among the re-evaluated metrics {sorted(nested)}")
    attrs: dict[str, Any] = {}
    for metric, values in nested.items():
        if any(v is None for run in values for v in run):
            continue
        flat = [float(v) for run in values for v in run]
        units = flat if len(runs) == 1 or metric == LATENCY else [sum(run) / len(run) for run in values]
        s = spread(units)
        attrs[key(metric, "per_seed")] = flat
        attrs[key(metric, "mean")] = s.mean
        attrs[key(metric, "n")] = s.n
        if s.std is not None:
            attrs[key(metric, "std")] = s.std
            attrs[key(metric, "ci95")] = list(s.ci95)
    first = runs[0]
    attrs.update({
        "reeval_seeds": k,
        "reeval_pretrain_seeds": len(runs),
        "reeval_latency_repeats": len(nested[LATENCY][0]),
        "reeval_unit": "finetune-seed" if len(runs) == 1 else "pretrain-seed",
        "reeval_score_metric": score_metric,
        "reeval_metrics": sorted(m for m in nested if key(m, "mean") in attrs),
        "reeval_runs": json.dumps([{
            "pretrain_seed": r.seed, "finetune_seeds": list(r.tasks[tasks[0]].seeds) if tasks else [],
            "recipe_hash": r.recipe_hash, "optimizer_steps": r.optimizer_steps, "tokens_seen": r.tokens_seen,
            "mlm_accuracy": r.mlm_accuracy, "latency_path": r.latency_path, "total_seconds": round(r.total_seconds, 3),
            "device": r.hardware.get("device_name"),
        } for r in runs], sort_keys=True),
    })
    if trial is not None:
        a = trial.user_attrs
        attrs["reeval_same_pretraining"] = bool(
            first.optimizer_steps == a.get("optimizer_steps") and first.mlm_accuracy == a.get("mlm_accuracy"))
    return attrs


def plan(study: optuna.Study, trials: Sequence[FrozenTrial], seeds: int, pretrain_seeds: int, *,
         fallback_recipe=None, redo: bool = False,
         unknown: dict[int, str] | None = None) -> tuple[list[Job], list[int]]:
    """The runs to do, in member order, and the members already re-evaluated with these K and P.

    A member whose recipe the study does not hold raises :class:`ReevalError`, or, given
    ``unknown``, is left out with the reason put there."""
    jobs, already = [], []
    for t in trials:
        a = t.user_attrs
        if not redo and a.get("reeval_seeds") == seeds and a.get("reeval_pretrain_seeds") == pretrain_seeds:
            already.append(t.number)
            continue
        try:
            recipe = stored_recipe(study, t, fallback_recipe)
        except ReevalError as exc:
            if unknown is None:
                raise
            unknown[t.number] = str(exc)
            continue
        table = study.user_attrs.get(f"cost_table:{recipe.hash}")
        base = recipe.pretrain.seed
        for j in range(pretrain_seeds):
            run = recipe.with_overrides({"finetune.seeds": seeds, "pretrain.seed": base + j})
            jobs.append(Job(t.number, str(a["layout"]), run, base + j, table, estimate_seconds(t, seeds), seeds))
    return jobs, already


def reevaluate(study: optuna.Study, trials: Sequence[FrozenTrial], slots, *, seeds: int = defaults.REEVALUATE_SEEDS,
               pretrain_seeds: int = 1, deadline: float = math.inf, fallback_recipe=None, redo: bool = False,
               emit: Callable[[str], None] | None = None, poll: float = 0.5, run_id: str | None = None) -> ReevalSummary:
    """Re-evaluate ``trials`` (see the module docstring) on the Ray cluster ``slots`` describes,
    starting a run only while its estimate fits before ``deadline``; stores on each trial."""
    from hsearch.search import dispatch
    from hsearch.trial.result import TrialResult

    check_counts(seeds, pretrain_seeds)
    emit = emit or (lambda text: None)
    t0 = time.time()
    summary = ReevalSummary(seeds, pretrain_seeds, members=[t.number for t in trials])
    jobs, summary.already = plan(study, trials, seeds, pretrain_seeds, fallback_recipe=fallback_recipe, redo=redo,
                                 unknown=summary.failed)
    by_number = {t.number: t for t in trials}
    score_metric = (study.metric_names or ["mean_accuracy"])[0]
    results: dict[int, dict[int, Any]] = {}
    cost: dict[int, float] = {}
    inflight: dict[Any, tuple[Job, float]] = {}
    pending = list(jobs)
    capacity = dispatch.whole_nodes(slots)
    finite = math.isfinite(deadline)

    def drop(number: int) -> None:
        nonlocal pending
        pending = [j for j in pending if j.number != number]

    while pending or inflight:
        while pending and len(inflight) < capacity:
            job = pending[0]
            if job.estimate > deadline - time.time():
                summary.not_started.append(job.number)
                drop(job.number)
                emit(f"re-evaluation of trial {job.number} not started: estimated {job.estimate:.0f} s, "
                     f"{max(0.0, deadline - time.time()):.0f} s left")
                continue
            pending.pop(0)
            ref = dispatch.submit_whole_node(slots, job.layout, job.recipe, deadline if finite else None,
                                             job.cost_table, job.latency_repeats)
            inflight[ref] = (job, time.time())
            emit(f"re-evaluating trial {job.number} {job.layout}: pretraining seed {job.seed}, "
                 f"{seeds} fine-tuning seed(s), on a whole node")
        for ref in dispatch.wait(list(inflight), timeout=poll):
            job, started = inflight.pop(ref)
            cost[job.number] = cost.get(job.number, 0.0) + time.time() - started
            payload, reason, _ = dispatch.fetch(ref)
            result = TrialResult.from_dict(payload["result"]) if payload is not None else None
            if result is None or not result.ok or result.latency_ms is None:
                why = reason or (f"{result.status}: {result.error or 'no latency'}" if result else "no result")
                summary.failed[job.number] = f"pretraining seed {job.seed}: {why}"
                drop(job.number)
                emit(f"re-evaluation of trial {job.number} failed: {summary.failed[job.number]}")
                continue
            results.setdefault(job.number, {})[job.seed] = result
            if job.number in summary.failed or len(results[job.number]) < pretrain_seeds:
                continue
            runs = [results[job.number][s] for s in sorted(results[job.number])]
            attrs = aggregate(by_number[job.number], runs, score_metric)
            wall = cost[job.number]
            attrs.update({
                "reeval_seconds": round(wall, 3),
                "reeval_cpu_seconds": round(0.0 if slots.use_gpu else wall * slots.node_cpus, 3),
                "reeval_gpu_seconds": round(wall if slots.use_gpu else 0.0, 3),
                "reeval_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "reeval_hostname": payload["env"]["hostname"],
            })
            set_finished_trial_attrs(study, job.number, attrs)
            summary.done.append(job.number)
            lat = attrs[key(LATENCY, "mean")]
            emit(f"re-evaluated trial {job.number} {job.layout}: {score_metric} "
                 f"{attrs[key(score_metric, 'mean')]:.4f}, latency {lat:.3f} ms (mean of {seeds} x {pretrain_seeds})")
        if inflight and finite and time.time() > deadline + GRACE_S:
            for ref, (job, _) in list(inflight.items()):
                dispatch.cancel(ref)
                summary.failed[job.number] = "cancelled: deadline reached"
            inflight.clear()
            pending = []
    summary.seconds = time.time() - t0
    _log(study, summary, run_id)
    return summary


def _log(study: optuna.Study, summary: ReevalSummary, run_id: str | None) -> None:
    log = json.loads(study.user_attrs.get("reevaluations", "[]") or "[]")
    log.append({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "run_id": run_id,
                "seeds": summary.seeds, "pretrain_seeds": summary.pretrain_seeds, "members": summary.members,
                "done": summary.done, "already": summary.already, "failed": summary.failed,
                "not_started": summary.not_started, "seconds": round(summary.seconds, 1)})
    study.set_user_attr("reevaluations", json.dumps(log, sort_keys=True))


# -- `hsearch reevaluate` ---------------------------------------------------------------


@dataclass
class ReevalConfig:
    storage: str | None = None
    study: str | None = None
    top: int | None = None
    seeds: int = defaults.REEVALUATE_SEEDS
    pretrain_seeds: int = 1
    with_seeds: bool = True
    budget: str | None = None  # wall clock for the whole re-evaluation
    address: str | None = None
    data_dir: str | None = None
    recipe: str | None = None  # for studies that hold no recipe:<hash>
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    redo: bool = False


def run_reevaluation(cfg: ReevalConfig, emit: Callable[[str], None] | None = None) -> ReevalSummary:
    """Open the study, check everything a run needs, join/start Ray, re-evaluate, disconnect."""
    from pathlib import Path

    from hsearch import trial as trial_mod
    from hsearch.search import dispatch
    from hsearch.search.driver import run_budget_seconds
    from hsearch.search.study import load_existing_study

    check_counts(cfg.seeds, cfg.pretrain_seeds, cfg.top)
    budget_s = run_budget_seconds(cfg.budget)
    if cfg.data_dir is not None and not Path(cfg.data_dir).is_dir():
        raise ReevalError(f"--data-dir {cfg.data_dir!r} is not a directory")
    study = load_existing_study(cfg.storage, cfg.study)
    fallback = trial_mod.load_recipe(cfg.recipe, dict(cfg.recipe_overrides) or None) if cfg.recipe else None
    chosen = members(study, cfg.top, cfg.with_seeds)
    if not chosen:
        raise ReevalError(f"study {study.study_name!r} has no complete trials to re-evaluate")
    jobs, already = plan(study, chosen, cfg.seeds, cfg.pretrain_seeds, fallback_recipe=fallback, redo=cfg.redo)
    if not jobs:  # nothing to run: no Ray
        return ReevalSummary(cfg.seeds, cfg.pretrain_seeds, members=[t.number for t in chosen], already=already)
    checked = set()
    for job in jobs:  # every input a run refuses, before Ray starts
        if job.recipe.hash not in checked:
            trial_mod.preflight(job.recipe, data_dir=cfg.data_dir)
            checked.add(job.recipe.hash)
    deadline = time.time() + budget_s
    try:
        resources = dispatch.connect(cfg.address, data_dir=cfg.data_dir)
        cpus = max((j.recipe.resources.cpus for j in jobs), default=1)
        slots = dispatch.plan_slots(resources, float(cpus), node_cpus=dispatch.largest_node_cpus())
        return reevaluate(study, chosen, slots, seeds=cfg.seeds, pretrain_seeds=cfg.pretrain_seeds,
                          deadline=deadline, fallback_recipe=fallback, redo=cfg.redo, emit=emit)
    finally:
        dispatch.shutdown()
