"""The search driver: Optuna ask/tell in one loop, trials as Ray tasks, a wall-clock budget.

Order of work in :func:`run_search`: validate every input (budget, space, recipe, the
data and output folders a trial needs, an existing study's objective/space/recipe, Ray,
storage) before writing anything, so bad input leaves an existing study untouched and
creates no file; then settle the trials a lost driver left running (failed and retried
once, before the sampler is asked anything), queue unsettled seeds, and loop:
start trials while slots are free and the time left covers the estimated trial time,
record results as they arrive, heartbeat the trials in flight. At the deadline or on
Ctrl-C, running trials are stopped and recorded as ``cancelled``.

Time estimate for a trial: :func:`trial_seconds`.

Multi-fidelity (a recipe with ``fidelity.rungs``, :mod:`hsearch.fidelity`): a free slot goes to
the best paused layout inside its rung's promotion quota (highest rung first), else to a new
layout at rung 0. A layout's trunk state waits between rungs in its artifacts folder
(``state/rung<r>.pt``: the folder must be one every node sees, as for checkpoints), and is
deleted when the layout goes up again, is stopped, or the run ends (:mod:`hsearch.search.rungs`);
at most ``fidelity.max_paused`` layouts wait at once.
Time estimate for a rung: :func:`rung_seconds`.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import socket
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from hsearch import defaults
from hsearch.budget import BudgetError, format_duration, parse_duration
from hsearch.errors import HsearchError
from hsearch.paths import check_output_dir
from hsearch import fidelity
from hsearch.search import artifacts, dispatch, rungs
from hsearch.search.note import write_note
from hsearch.search.space import SearchSpace, load_space
from hsearch.search.study import (
    check_compatible,
    counts_toward_max,
    duplicate_of,
    enqueue_seeds,
    front_numbers,
    make_storage,
    objective_latency,
    metric_name,
    open_study,
    absolute_storage_url,
    record_failure,
    record_result,
    requeue,
    result_attrs,
    retry_stale_trial,
    set_trial_attrs,
    shown,
    sqlite_file,
    update_ledger,
)

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

MAX_SKIPS_IN_A_ROW = 200  # sampler proposals that were duplicates/constraint breaks
log = logging.getLogger("hsearch.run")  # every event of the search, trial progress included


@dataclass
class RunConfig:
    space: str = defaults.SPACE
    recipe: str = defaults.RECIPE
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    budget: str | None = None  # total wall clock of this run
    storage: str = defaults.STORAGE
    study: str | None = None
    sampler: str = defaults.SAMPLER
    objective: str = defaults.OBJECTIVE
    address: str | None = None
    max_trials: int | None = None  # trained trials in the study (all runs, all drivers)
    data_dir: str | None = None
    seed: int | None = None
    artifacts: str = defaults.ARTIFACTS
    artifact_store: str | None = None  # Optuna artifact store URL (default: a folder in ``artifacts``)
    heartbeat: int = defaults.HEARTBEAT_S  # seconds; a trial silent for 2x this is stale
    trial_overhead: float | None = None  # prior for per-trial overhead, seconds
    max_latency_ms: float | None = None  # cap on the predicted latency (else the space's)
    max_params: int | None = None  # cap on the parameter count (else the space's)
    grace: float = 10.0  # seconds running trials get to stop by themselves at the deadline
    poll: float = 0.5
    reevaluate_share: float = defaults.REEVALUATE_SHARE  # of --budget, kept for re-evaluating the front (0: none)
    reevaluate_seeds: int = defaults.REEVALUATE_SEEDS  # fine-tuning seeds per member in that re-evaluation


@dataclass
class Inflight:
    trial: optuna.Trial
    layout: str
    ref: Any
    started: float
    estimate: float
    rung: int | None = None  # multi-fidelity: the rung being trained


@dataclass
class RunSummary:
    study_name: str
    storage: str
    started: int = 0
    complete: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    stop_reason: str = ""
    seconds: float = 0.0
    queued_seeds: list[str] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    reevaluation: Any = None  # hsearch.search.reevaluate.ReevalSummary, when the run re-evaluated its front


def default_study_name(space: SearchSpace, recipe) -> str:
    return f"{space.name}-{recipe.name}"


@dataclass(frozen=True)
class Caps:
    """Limits a layout's predicted cost must keep; a layout over one is never trained."""

    max_latency_ms: float | None = None
    max_params: int | None = None

    @property
    def active(self) -> bool:
        return self.max_latency_ms is not None or self.max_params is not None

    def excess(self, predicted) -> dict[str, float]:
        """Optuna constraint values (feasible when <= 0), one per cap in force."""
        out = {}
        if self.max_latency_ms is not None:
            out["latency_over_cap_ms"] = predicted.latency_ms - self.max_latency_ms
        if self.max_params is not None:
            out["params_over_cap"] = float(predicted.params - self.max_params)
        return out

    def describe(self, name: str, predicted) -> str:
        if name == "latency_over_cap_ms":
            return f"predicted latency {predicted.latency_ms:.3f} ms over the cap of {self.max_latency_ms:g} ms"
        return f"{predicted.params:,} parameters over the cap of {self.max_params:,}"


def caps(space: SearchSpace, max_latency_ms: float | None, max_params: int | None) -> Caps:
    """The run's caps: the flags, else the space's ``constraints``; each must be positive."""
    latency = max_latency_ms if max_latency_ms is not None else space.max_latency_ms
    params = max_params if max_params is not None else space.max_params
    if latency is not None and not (math.isfinite(latency) and latency > 0):
        raise HsearchError(f"--max-latency-ms {latency}: must be a positive finite number of milliseconds")
    if params is not None and params < 1:
        raise HsearchError(f"--max-params {params}: must be a positive number of parameters")
    return Caps(latency, params)


def trial_seconds(recipe, complete: list, prior_overhead: float | None = None) -> float:
    """A trial's expected wall time: its time budget plus the largest overhead (wall time minus
    pretraining) measured on ``complete`` trials of this recipe, times 1.1; before any, the
    ``prior_overhead`` guess (default 60 s + half the pretraining budget)."""
    b = recipe.pretrain.budget
    base = b.amount if b.kind == "time" else 0.0
    overheads = [
        float(t.user_attrs["wall_seconds"]) - float(t.user_attrs.get("pretrain_seconds", 0.0))
        for t in complete
        if "wall_seconds" in t.user_attrs and t.user_attrs.get("recipe") == recipe.name
    ]
    if overheads:
        return base + max(overheads) * 1.1
    if prior_overhead is not None:
        return base + prior_overhead
    return base + 60.0 + 0.5 * base if b.kind == "time" else 600.0


def rung_seconds(recipe, rung: int, trials: list, prior_overhead: float | None = None) -> float:
    """A multi-fidelity task's expected wall time: rung ``rung``'s share of the time budget (its
    steps to run, resumed from the rung below) plus the largest overhead measured at that rung,
    times 1.1; before any, ``prior_overhead`` (default: 30 s below the top rung, the trial prior
    at the top, where fine-tuning runs)."""
    from hsearch.fidelity import RungPlan

    fid, b = recipe.fidelity, recipe.pretrain.budget
    plan = RungPlan.build(10_000, fid.fractions, decay=fid.decay, warmup=recipe.pretrain.warmup)
    base = b.amount * plan.steps_to_run(rung, resumed=rung > 0) / plan.total_steps if b.kind == "time" else 0.0
    overheads = [float(t.user_attrs[rungs.key(rung, "wall_seconds")]) - float(t.user_attrs.get(
                 rungs.key(rung, "pretrain_seconds"), 0.0)) for t in trials
                 if rungs.key(rung, "wall_seconds") in t.user_attrs and t.user_attrs.get("recipe") == recipe.name]
    if overheads:
        return base + max(overheads) * 1.1
    if prior_overhead is not None:
        return base + prior_overhead
    if rung < len(fid.rungs) - 1 and fid.finetune == "top":
        return base + 30.0
    return base + 60.0 + (0.5 * b.amount if b.kind == "time" else 540.0)


def search_seconds(budget_s: float, reevaluate_share: float) -> float:
    """The part of a run's budget the search itself gets: the rest is kept for re-evaluating
    its front at the end."""
    if not (isinstance(reevaluate_share, (int, float)) and 0 <= reevaluate_share < 1):
        raise HsearchError(f"--reevaluate-share {reevaluate_share}: must be at least 0 and below 1")
    return budget_s * (1 - reevaluate_share) if math.isfinite(budget_s) else math.inf


def run_budget_seconds(text: str | None) -> float:
    """``--budget``: a run's total wall clock. Token and step budgets belong to a trial's
    recipe (``pretrain.budget``), so an upper-case ``M`` is refused, not read as minutes."""
    if text is None:
        return math.inf
    try:
        return parse_duration(text, strict_case=True)
    except BudgetError as exc:
        raise HsearchError(f"--budget {text}: {exc}") from None


class Driver:
    def __init__(self, config: RunConfig, progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.cfg = config
        self.progress = progress or (lambda event: None)
        self.inflight: dict[Any, Inflight] = {}
        self.run_id = uuid.uuid4().hex[:8]
        self.driver_id = f"{socket.gethostname()}:{os.getpid()}:{self.run_id}"

    # -- set-up: everything that can fail on bad input, before any write ---------------
    def prepare(self) -> None:
        cfg = self.cfg
        from hsearch import trial

        self.budget_s = run_budget_seconds(cfg.budget)
        if cfg.reevaluate_seeds < 1:
            raise HsearchError(f"--reevaluate-seeds {cfg.reevaluate_seeds}: must be at least 1")
        self.search_s = search_seconds(self.budget_s, cfg.reevaluate_share)
        if cfg.max_trials is not None and cfg.max_trials < 1:
            raise HsearchError(f"--max-trials must be at least 1, got {cfg.max_trials}")
        if cfg.heartbeat < 1:
            raise HsearchError(f"--heartbeat must be at least 1 second, got {cfg.heartbeat}")
        metric_name(cfg.objective)
        if cfg.data_dir is not None and not Path(cfg.data_dir).is_dir():
            raise HsearchError(f"--data-dir {cfg.data_dir!r} is not a directory")
        check_output_dir(cfg.artifacts, "--artifacts")
        self.artifact_store = artifacts.store_url(cfg.artifacts, cfg.artifact_store)
        artifacts.open_store(self.artifact_store, create=False)
        self.space = load_space(cfg.space)
        self.caps = caps(self.space, cfg.max_latency_ms, cfg.max_params)
        self._load_recipe = trial.load_recipe
        self.recipe = trial.load_recipe(cfg.recipe, dict(cfg.recipe_overrides) or None)
        # Check the space's global choices are keys the recipe accepts, and every input a
        # trial refuses before training (budget, data, tokenizer), before anything is written.
        self._recipes: dict[str, Any] = {}
        checked = set()
        for recipe in [self.recipe, *(self.recipe_for(seed.params) for seed in self.space.seeds)]:
            if recipe.hash not in checked:
                trial.preflight(recipe, data_dir=cfg.data_dir)
                checked.add(recipe.hash)
        self.fid = self.recipe.fidelity
        self.top_rung = len(self.fid.rungs) - 1
        self.study_name = cfg.study or default_study_name(self.space, self.recipe)
        earlier: list = []
        if self._storage_exists(cfg.storage):
            storage = self._open_storage()
            if self.study_name in optuna.get_all_study_names(storage):
                existing = optuna.load_study(study_name=self.study_name, storage=storage)
                check_compatible(existing, objective=cfg.objective, space=self.space.name, recipe=self.recipe.name)
                earlier = existing.get_trials(deepcopy=False)
        need = self.estimate(earlier, rung=0)
        if need > self.search_s:
            kept = (f"; the search gets {1 - cfg.reevaluate_share:.0%} of it, --reevaluate-share "
                    f"{cfg.reevaluate_share:g} keeps the rest" if cfg.reevaluate_share else "")
            raise HsearchError(
                f"--budget {cfg.budget}: shorter than one trial of recipe {self.recipe.name} "
                f"(estimated {format_duration(need)}: "
                f"{'its first rung' if self.fid.multi else 'pretraining budget plus fine-tuning and latency'}{kept}); "
                f"give at least {format_duration(need / (1 - cfg.reevaluate_share))}"
            )
        resources = dispatch.connect(cfg.address, data_dir=cfg.data_dir)
        self.slots = dispatch.plan_slots(resources, float(self.recipe.resources.cpus),
                                         node_cpus=dispatch.largest_node_cpus())
        self.hardware = dispatch.hardware_summary(resources)
        self.updates = dispatch.progress_queue()
        self.storage = self._open_storage()  # only now may a new SQLite file appear

    @staticmethod
    def _storage_exists(url: str) -> bool:
        """A server database always "exists" (open it early, to fail fast); a SQLite file
        that does not exist yet is created only once every other check has passed."""
        path = sqlite_file(url)
        if path is None or Path(path).is_file():
            return True
        check_output_dir(Path(path).resolve().parent, f"--storage {shown(url)}:")
        return False

    def _open_storage(self):
        cfg = self.cfg
        return make_storage(cfg.storage, heartbeat_interval=cfg.heartbeat, grace_period=2 * cfg.heartbeat)

    def recipe_for(self, params) -> Any:
        """The recipe a trial with ``params`` trains under (the space's global choices applied)."""
        overrides = self.space.overrides(params)
        if not overrides:
            return self.recipe
        key = json.dumps(overrides, sort_keys=True)
        if key not in self._recipes:
            try:
                self._recipes[key] = self._load_recipe(self.cfg.recipe, {**self.cfg.recipe_overrides, **overrides})
            except HsearchError as exc:
                raise HsearchError(f"{self.space.path}: globals set recipe keys the recipe rejects: {exc}") from None
        return self._recipes[key]

    # -- estimates ---------------------------------------------------------------------
    def estimate(self, trials: list | None = None, rung: int | None = None) -> float:
        """Seconds one trial (multi-fidelity: one task to finish ``rung``) is expected to take;
        ``trials``: the study's trials."""
        if trials is None:
            trials = self.study.get_trials(deepcopy=False)
        if self.fid.multi:
            return rung_seconds(self.recipe, rung or 0, trials, self.cfg.trial_overhead)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        return trial_seconds(self.recipe, complete, self.cfg.trial_overhead)

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> RunSummary:
        try:
            self.prepare()
            return self._run()
        finally:
            dispatch.shutdown()

    def _run(self) -> RunSummary:
        cfg = self.cfg
        t0 = time.time()
        self.deadline = t0 + self.search_s  # the search's; the run ends at t0 + budget_s
        self.end = t0 + self.budget_s
        self.study = open_study(self.storage, self.study_name, objective=cfg.objective, sampler=cfg.sampler, seed=cfg.seed)
        summary = RunSummary(self.study_name, cfg.storage)
        self.summary = summary
        for key, value in {
            "space": self.space.name,
            "space_file": self.space.path,
            "recipe": self.recipe.name,
            "recipe_hash": self.recipe.hash,
            "sampler": cfg.sampler,
            "seed": cfg.seed,
            "budget": cfg.budget,
            "hardware": json.dumps(self.hardware, sort_keys=True),
            "duplicate_policy": "skip",
            "max_latency_ms": self.caps.max_latency_ms,
            "max_params": self.caps.max_params,
            "artifact_store": self.artifact_store,
        }.items():
            self.study.set_user_attr(key, value)
        for recipe in self.recipes():  # the resolved recipes, so a trial can be run again (reevaluate)
            text = json.dumps(recipe.to_dict(), sort_keys=True)
            if self.study.user_attrs.get(f"recipe:{recipe.hash}") != text:
                self.study.set_user_attr(f"recipe:{recipe.hash}", text)
        self.paused: dict[int, int] = {}  # multi-fidelity: layouts waiting for a promotion -> their rung
        summary.retried = self._settle_lost_trials()
        summary.queued_seeds = enqueue_seeds(
            self.study,
            self.space.seeds,
            attrs=lambda s: {
                "space": self.space.name,
                "layout": str(s.layout),
                "recipe": self.recipe_for(s.params).name,
                "recipe_hash": self.recipe_for(s.params).hash,
            },
        )
        self.tables = self._cost_tables()
        self._emit("start", f"study {self.study_name}: {len(summary.queued_seeds)} seed(s) queued")
        last_beat = last_stale = time.time()
        try:
            while True:
                now = time.time()
                if now >= self.deadline:
                    summary.stop_reason = "budget spent"
                    self._stop_at_deadline()
                    break
                stop = self._start_trials()
                if stop and not self.inflight:
                    summary.stop_reason = stop
                    break
                ready = dispatch.wait(list(self.inflight), timeout=min(cfg.poll, max(0.0, self.deadline - now)))
                self._forward_progress()  # before the results, so a trial's last lines come first
                for ref in ready:
                    self._collect(ref)
                if time.time() - last_beat >= cfg.heartbeat / 2:
                    self._heartbeat()
                    last_beat = time.time()
                if time.time() - last_stale >= cfg.heartbeat:
                    summary.retried += self._fail_stale()
                    last_stale = time.time()
        except KeyboardInterrupt:
            summary.stop_reason = "interrupted"
            self._cancel_all("cancelled: interrupted (Ctrl-C)")
            self._stop_paused("the run was interrupted")
            self._finish(t0)
            raise
        self._stop_paused(f"the run ended ({summary.stop_reason})")
        if cfg.reevaluate_share > 0 and math.isfinite(self.budget_s):
            try:
                self._reevaluate_front()
            except KeyboardInterrupt:
                summary.stop_reason += "; re-evaluation interrupted"
                self._finish(t0)
                raise
        self._finish(t0)
        return summary

    def _reevaluate_front(self) -> None:
        """The reserved share (and whatever the search left): the final front and the seeds
        re-evaluated with ``reevaluate_seeds`` fine-tuning seeds and whole-node latency."""
        from hsearch.search import reevaluate

        chosen = reevaluate.members(self.study)
        if not chosen:
            return
        self.deadline = self.end  # the panel's time left is now the run's
        self._emit("reeval", f"re-evaluating {len(chosen)} trial(s): the front and the seeds, "
                             f"{self.cfg.reevaluate_seeds} fine-tuning seeds each, "
                             f"{format_duration(max(0.0, self.end - time.time()))} left")
        try:
            self.summary.reevaluation = reevaluate.reevaluate(
                self.study, chosen, self.slots, seeds=self.cfg.reevaluate_seeds, deadline=self.end,
                emit=lambda text: self._emit("reeval", text), poll=self.cfg.poll, run_id=self.run_id)
        except HsearchError as exc:  # the search's results stand; say why the re-evaluation did not
            self.summary.stop_reason += f"; re-evaluation failed: {exc}"
            self._emit("reeval", f"re-evaluation failed: {exc}")

    def _finish(self, t0: float) -> None:
        self.summary.seconds = time.time() - t0
        update_ledger(
            self.study,
            {
                "run_id": self.run_id,
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
                "seconds": round(self.summary.seconds, 1),
                "budget": self.cfg.budget,
                "trials_started": self.summary.started,
                "stop_reason": self.summary.stop_reason,
                "slots": self.slots.concurrency,
                "gpu": self.slots.use_gpu,
                "reevaluated": self.summary.reevaluation.done if self.summary.reevaluation else None,
            },
        )
        self._emit("end", f"stopped: {self.summary.stop_reason}")

    def _settle_lost_trials(self) -> list[int]:
        """Fail and retry the trials a lost driver left RUNNING, before anything new starts.

        A driver on this host is known lost when its process is gone (its local Ray node and
        trials die with it), so its trials are settled at once. For a driver elsewhere only
        its heartbeat tells: wait out one grace period (2 x heartbeat) for each such trial to
        beat again or go stale, so the retries run first and the sampler sees the seeds.
        """
        host = socket.gethostname()
        retried: list[int] = []
        foreign = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            d_host, _, rest = str(t.user_attrs.get("driver", "")).partition(":")
            pid = rest.partition(":")[0]
            local = d_host == host and pid.isdigit()
            if local and not _pid_alive(int(pid)) and rungs.last_rung(t) is not None:
                self._adopt(t, f"its driver (process {pid} on {host}) is gone")
            elif local and not _pid_alive(int(pid)):
                self._drop_states(t)  # a rung it was training may have saved some
                set_trial_attrs(self.study, t, {"outcome": "stale",
                                                "reason": f"driver lost: process {pid} on {host} is gone"})
                if self.storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                    retry_stale_trial(self.study, self.storage.get_trial(t._trial_id))
                    if "retry_of" not in t.user_attrs:
                        retried.append(t.number)
                        self._emit("stale", f"trial {t.number} was left running by a lost driver: FAIL, retried once")
            elif not local:  # a live driver here keeps its trials; one elsewhere shows by its heartbeat
                foreign.append(t.number)
        end = time.time() + 2 * self.cfg.heartbeat + 1
        while foreign and time.time() < end:
            retried += self._fail_stale()
            running = {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            foreign = [n for n in foreign if n in running]
            if foreign:
                time.sleep(min(1.0, self.cfg.poll * 2))
        return retried + self._fail_stale()

    def _adopt(self, t, why: str) -> None:
        """A lost driver's layout that finished a rung: paused again at that rung, promotable by
        this driver (nothing it trained is trained again; a rung it was training starts over from
        the state the rung below saved)."""
        rung = rungs.last_rung(t)
        state = self._state_path(t, rung)
        for later in range(rung + 1, self.top_rung):  # what the lost promotion may have saved
            self._drop_state(t, later)
        if rung == self.top_rung:  # its top-rung result was stored, the driver died before telling
            self._drop_states(t)
            set_trial_attrs(self.study, t, {"fidelity_state": rungs.TOP})
            self.study.tell(t.number, values=[t.user_attrs[rungs.key(rung, "score")],
                                              t.user_attrs[rungs.key(rung, "latency_ms")]])
            return
        if not os.path.isfile(state):
            self._stop(t, f"{why}; no trunk state of rung {rung} to resume ({state})")
            return
        set_trial_attrs(self.study, t, {"driver": self.driver_id, "fidelity_state": rungs.PAUSED})
        # Beat at once: its last beat is the lost driver's, and the stale-trial check that ends
        # the settling would otherwise fail (and retrain) the layout just adopted.
        self.storage.record_heartbeat(t._trial_id)
        self.paused[t.number] = rung
        self._emit("adopted", f"trial {t.number} {t.user_attrs.get('layout', '?')}: paused at rung {rung} ({why})")

    def _state_path(self, t, rung: int) -> str:
        return os.path.join(str(t.user_attrs["artifacts_dir"]), "state", f"rung{rung}.pt")

    def _drop_state(self, t, rung: int) -> None:
        """Delete the trunk state this search wrote for ``rung`` (hsearch only deletes its own files)."""
        if rung >= 0 and "artifacts_dir" in t.user_attrs:
            try:
                os.remove(self._state_path(t, rung))
            except FileNotFoundError:
                pass

    def _drop_states(self, t) -> None:
        """Every trunk state file of ``t``: ``state/rung<r>.pt``, and the ``.tmp`` a worker killed
        mid-write leaves (all hsearch's own; nothing else in the folder is touched)."""
        folder = Path(str(t.user_attrs.get("artifacts_dir", ""))) / "state"
        if "artifacts_dir" in t.user_attrs and folder.is_dir():
            for path in folder.iterdir():
                if re.fullmatch(r"rung\d+\.pt(\.tmp)?", path.name):
                    path.unlink(missing_ok=True)

    def _stop(self, t, reason: str) -> None:
        """A layout that will not be promoted: PRUNED, state deleted. TPE sees it as infeasible,
        graded by how far it got (``top - rung``) plus its place in its rung's ranking (0 best, up
        to 1), so it ranks below every top-rung layout and a layout stopped higher ranks first."""
        rung = rungs.last_rung(t)
        rung = -1 if rung is None else rung
        self.paused.pop(t.number, None)
        self._drop_state(t, rung)
        grade = float(self.top_rung - rung)
        if rung >= 0:
            ranked = fidelity.ranked(rungs.populations(self.study.get_trials(deepcopy=False), rung + 1)[rung])
            place = next((i for i, e in enumerate(ranked) if e.number == t.number), len(ranked))
            grade += place / max(1, len(ranked))
        record_failure(self.study, optuna.Trial(self.study, t._trial_id), "stopped", f"stopped at rung {rung}: {reason}",
                       extra={"fidelity_state": rungs.STOPPED, "stopped_at_rung": rung}, state=TrialState.PRUNED,
                       infeasibility=grade)
        write_note(self.study, t.number)

    def _stop_paused(self, reason: str) -> None:
        if not getattr(self, "paused", None):
            return
        for number in list(self.paused):
            self._stop(self.study._storage.get_trial(self._trial_id(number)), reason)
        self._emit("stopped", f"paused layouts stopped: {reason}")

    def _trial_id(self, number: int) -> int:
        return self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number)

    def _enforce_cap(self) -> None:
        """At most ``fidelity.max_paused`` paused layouts keep their state: beyond it the lowest
        rung's worst are stopped (:func:`hsearch.fidelity.over_cap`), which bounds the disk."""
        trials = self.study.get_trials(deepcopy=False)
        by_number = {t.number: t for t in trials}
        for number in fidelity.over_cap(rungs.populations(trials, self.top_rung), self.paused, self.fid.max_paused):
            rung = self.paused[number]
            self._stop(by_number[number], f"more than fidelity.max_paused={self.fid.max_paused} layouts paused")
            self._emit("stopped", f"trial {number} {by_number[number].user_attrs.get('layout', '?')}: stopped at "
                                  f"rung {rung} (more than {self.fid.max_paused} paused)")

    def _fail_stale(self) -> list[int]:
        before = {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))}
        optuna.storages.fail_stale_trials(self.study)
        retried = [
            t.user_attrs["retry_of"]
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if t.number not in before and "retry_of" in t.user_attrs
        ]
        for n in retried:
            self._emit("stale", f"trial {n} was left running by a lost driver: FAIL, retried once")
            self._drop_states(self.study._storage.get_trial(self._trial_id(n)))
        return retried

    def _cost_tables(self) -> dict[str, Any]:
        """recipe hash -> its cost table, for the recipes this search trains, when trials are charged
        on the cost model or a cap needs predictions. Measured (or loaded) on a whole node before any
        trial starts, so nothing else runs while it times, and kept on the study
        (``cost_table:<recipe hash>``) so a resumed search charges its trials as before."""
        from hsearch.cost.table import CostTable

        if self.recipe.pretrain.charge != "cost-model" and not self.caps.active:
            return {}
        variants = [f"{k}/{n}" for k in self.space.kinds for n in self.space.norms]
        tables = {}
        for recipe in self.recipes():
            attr = f"cost_table:{recipe.hash}"
            self._emit("cost", f"cost table for recipe {recipe.name} ({recipe.hash[:8]}): measuring or loading")
            text = dispatch.measure_cost(self.slots, recipe, self.space.num_layers, variants,
                                         self.space.norm_per_layer, self.study.user_attrs.get(attr))
            table = CostTable.from_json(text)
            if self.study.user_attrs.get(attr) != text:
                self.study.set_user_attr(attr, text)
            tables[recipe.hash] = table
            self._emit("cost", f"cost table {table.key[:8]} ready ({table.seconds:.0f} s to measure)")
        self.study.set_user_attr("latency_objective", "predicted")
        return tables

    def recipes(self) -> list[Any]:
        """Every recipe a trial of this space can get (one per combination of global choices)."""
        out = {}
        for values in itertools.product(*(g.choices for g in self.space.globals)):
            recipe = self.recipe_for({g.name: v for g, v in zip(self.space.globals, values)})
            out.setdefault(recipe.hash, recipe)
        return list(out.values())

    def _forward_progress(self) -> None:
        """Running trials' updates as events (and so as log lines): phase changes, and at most
        every ``dispatch.PROGRESS_EVERY_S`` during pretraining."""
        for u in dispatch.drain(self.updates):
            where = f"trial {u.get('trial')} {u.get('layout', '')}" + (f" rung {u['rung']}" if "rung" in u else "")
            phase = u.get("phase", "?")
            if phase == "pretrain" and "step" in u:
                text = f"{where}: pretrain step {u['step']}"
                if isinstance(u.get("loss"), float):
                    text += f" loss {u['loss']:.3f}"
                if isinstance(u.get("budget_fraction"), float):
                    text += f" ({u['budget_fraction']:.0%} of the budget)"
            elif phase == "done":
                continue  # the result says it
            else:
                text = f"{where}: {phase}" + (f" ({u['message']})" if u.get("message") else "")
            self._emit("progress", text)

    def _heartbeat(self) -> None:
        for item in self.inflight.values():
            self.storage.record_heartbeat(item.trial._trial_id)
        for number in getattr(self, "paused", {}):
            self.storage.record_heartbeat(self._trial_id(number))

    def _trained_in_study(self) -> int:
        return sum(counts_toward_max(t) for t in self.study.get_trials(deepcopy=False))

    def _start_trials(self) -> str | None:
        """Fill free slots; returns why no more trials will start, if that is so."""
        while len(self.inflight) < self.slots.concurrency:
            left = self.deadline - time.time()
            if self.fid.multi and self._promote(left):
                continue
            if self.cfg.max_trials is not None and self._trained_in_study() >= self.cfg.max_trials:
                return f"max trials reached ({self.cfg.max_trials})"
            estimate = self.estimate(rung=0)
            if estimate > left:
                return f"time left {format_duration(left)} < estimated trial time {format_duration(estimate)}"
            picked = self._ask()
            if picked is None:
                return "the sampler keeps proposing layouts already trained (space exhausted?)"
            trial, layout, recipe = picked
            out_dir = os.path.abspath(os.path.join(self.cfg.artifacts, self.study_name, f"trial-{trial.number}"))
            set_trial_attrs(self.study, trial, {"dispatched": True, "artifacts_dir": out_dir,
                                                "estimate_seconds": round(estimate, 1)})
            self._submit(trial, layout, recipe, out_dir, estimate, 0 if self.fid.multi else None)
            self.summary.started += 1
        return None

    def _submit(self, trial, layout: str, recipe, out_dir: str, estimate: float, rung: int | None) -> None:
        table = self.tables.get(recipe.hash)
        state = os.path.join(out_dir, "state")
        ref = dispatch.submit(self.slots, layout, recipe, out_dir, self.deadline if math.isfinite(self.deadline) else None,
                              table.to_json() if table is not None else None, rung=rung,
                              resume_state=os.path.join(state, f"rung{rung - 1}.pt") if rung else None,
                              save_state=os.path.join(state, f"rung{rung}.pt")
                              if rung is not None and rung < self.top_rung else None,
                              progress_to=self.updates, tag={"trial": trial.number, "layout": layout},
                              upload=(self.artifact_store, absolute_storage_url(self.cfg.storage), self.study_name,
                                      trial.number) if rung is None or rung == self.top_rung else None)
        if rung is not None:
            set_trial_attrs(self.study, trial, {"fidelity_state": rungs.RUNNING, "driver": self.driver_id})
        self.inflight[ref] = Inflight(trial, layout, ref, time.time(), estimate, rung)
        what = f" rung {rung}" if rung is not None else ""
        self._emit("started", f"trial {trial.number} {layout}{what} ({trial.user_attrs.get('origin', 'sampler')})")

    def _promote(self, left: float) -> bool:
        """Start the ASHA promotion a free slot should take, if one fits in the time left."""
        trials = self.study.get_trials(deepcopy=False)
        for t in trials:  # failed meanwhile by another driver's stale check (our beats lapsed)
            if t.number in self.paused and t.state != TrialState.RUNNING:
                self.paused.pop(t.number)
                self._emit("stale", f"trial {t.number} was paused but is {t.state.name} in the study: not promoted")
        pick = fidelity.next_promotion(rungs.populations(trials, self.top_rung), self.paused, self.fid.eta)
        if pick is None:
            return False
        number, rung = pick
        estimate = self.estimate(trials, rung=rung)
        if estimate > left:
            return False
        t = next(t for t in trials if t.number == number)
        self.paused.pop(number)
        trial = optuna.Trial(self.study, t._trial_id)
        self._submit(trial, t.user_attrs["layout"], self.recipe_for(t.params), t.user_attrs["artifacts_dir"],
                     estimate, rung)
        return True

    def _ask(self):
        for _ in range(MAX_SKIPS_IN_A_ROW):
            trial = self._pop_retry() or self.study.ask()
            self.storage.record_heartbeat(trial._trial_id)
            params = self.space.suggest(trial)
            layout = self.space.layout(params)
            recipe = self.recipe_for(params)
            origin = trial.user_attrs.get("origin", "sampler")
            attrs = {"layout": str(layout), "space": self.space.name, "origin": origin,
                     "recipe": recipe.name, "recipe_hash": recipe.hash, "driver": self.driver_id}
            set_trial_attrs(self.study, trial, attrs)
            broken = self.space.violations(layout)
            table = self.tables.get(recipe.hash)
            if table is not None:
                predicted = table.predict(layout)
                set_trial_attrs(self.study, trial, {"latency_ms_predicted": predicted.latency_ms,
                                                    "step_seconds_predicted": predicted.step_seconds,
                                                    "params_predicted": predicted.params})
                over = self.caps.excess(predicted)
                for name, value in over.items():
                    trial.set_constraint(name, value)
                broken += [self.caps.describe(name, predicted) for name, value in over.items() if value > 0]
            if broken:
                record_failure(self.study, trial, "constraint", "constraint: " + "; ".join(broken), state=TrialState.PRUNED)
                self.summary.skipped += 1
                continue
            dup = duplicate_of(self.study.get_trials(deepcopy=False), trial.number, str(layout), recipe.hash)
            if dup is not None:
                record_failure(
                    self.study, trial, "duplicate",
                    f"duplicate of trial {dup} (same layout, same recipe hash): skipped, not trained again",
                    extra={"duplicate_of": dup},
                )
                self.summary.skipped += 1
                self._emit("skipped", f"trial {trial.number} {layout}: duplicate of trial {dup}")
                continue
            return trial, str(layout), recipe
        return None

    def _requeue(self, trial: optuna.Trial) -> None:
        # A cancelled trial is not the layout's fault: the next run evaluates it first.
        requeue(self.study, self.storage.get_trial(trial._trial_id))

    def _pop_retry(self) -> optuna.Trial | None:
        """A queued retry of a lost trial goes before queued seeds and new samples.

        Optuna pops queued trials in number order, which would put a retry behind seeds
        queued earlier and, with --max-trials, possibly never run it.
        """
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            if "retry_of" not in t.user_attrs:
                continue
            try:
                # Same atomic WAITING -> RUNNING step Optuna uses; False if another driver won.
                if self.storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                    return optuna.Trial(self.study, t._trial_id)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        return None

    def _collect(self, ref) -> None:
        item = self.inflight.pop(ref)
        try:
            self._record(item, ref)
        finally:  # the dashboard's trial page: what a person wants first (never raises)
            write_note(self.study, item.trial.number)

    def _record(self, item: Inflight, ref) -> None:
        from hsearch.trial.result import TrialResult

        payload, reason, outcome = dispatch.fetch(ref)
        cost = self._cost(item)
        if item.rung is not None:
            frozen = self.study._storage.get_trial(item.trial._trial_id)
            rung_cost, cost = cost, rungs.summed_cost(frozen, cost)  # a layout's cost: all its rungs
            if item.rung > 0 and (payload is None or payload["result"]["status"] == "cancelled"):
                self._back_to_pause(item, frozen, reason or "cancelled", cost)
                return
        if payload is None:
            if item.rung is not None:
                self._drop_state(frozen, item.rung)
            record_failure(self.study, item.trial, outcome, reason, extra=cost)
            self._count(outcome)
            self._emit("finished", f"trial {item.trial.number} {item.layout}: {reason}")
            return
        result = TrialResult.from_dict(payload["result"])
        env = payload["env"]
        extra = {**cost, "cuda_visible_devices": env["cuda_visible_devices"], "ray_node": env["ray_node"],
                 "hostname": env["hostname"], "worker_pid": env["worker_pid"],
                 "artifacts": env.get("artifacts"), "artifacts_error": env.get("artifacts_error")}
        if result.status == "cancelled" and time.time() >= self.deadline:
            result.error = result.error or "deadline reached"
        if item.rung is not None:
            frozen = self.study._storage.get_trial(item.trial._trial_id)
            self._drop_state(frozen, item.rung - 1)  # superseded by this rung's (or by the end)
            if result.status == "complete":
                extra.update(self._rung_attrs(item, result, rung_cost, env["ray_node"]))
                if item.rung < self.top_rung:
                    attrs = {k: v for k, v in result_attrs(result).items() if k != "status"}
                    score = {rungs.key(item.rung, "score"): extra.pop(rungs.key(item.rung, "score"))}
                    # The score goes last: it marks the rung done (rungs.last_rung) for a resume.
                    set_trial_attrs(self.study, item.trial, {**attrs, **extra, "fidelity_state": rungs.PAUSED,
                                                             "rung": item.rung, **score})
                    self.paused[item.trial.number] = item.rung
                    self._emit("finished", f"trial {item.trial.number} {item.layout}: rung {item.rung} "
                                           f"mlm {result.mlm_accuracy:.4f} latency {objective_latency(result):.2f} ms"
                                           f", paused")
                    self._enforce_cap()
                    update_ledger(self.study)
                    return
                extra.update(fidelity_state=rungs.TOP, rung=item.rung)
            else:
                self._drop_state(frozen, item.rung)
        state = record_result(self.study, item.trial, result, self.cfg.objective, extra)
        if result.status == "cancelled":
            self._requeue(item.trial)
        self._count(result.status if state != TrialState.FAIL or result.status != "complete" else "failed")
        text = f"trial {item.trial.number} {item.layout}: {result.status}"
        if state == TrialState.COMPLETE:
            text += f" score {result.objective(self.cfg.objective):.4f} latency {objective_latency(result):.2f} ms"
        elif result.error:
            text += f" ({result.error.splitlines()[0][:120]})"
        self._emit("finished", text)
        update_ledger(self.study)

    def _rung_attrs(self, item: Inflight, result, cost: dict[str, float], node: str | None) -> dict[str, Any]:
        (record,) = [r for r in result.rungs if r["rung"] == item.rung]
        if item.rung == self.top_rung or self.fid.finetune == "every":
            score = result.objective(self.cfg.objective)
        else:
            score = -result.mlm_loss if self.fid.score == "mlm-loss" else result.mlm_accuracy
        attrs = rungs.rung_attrs(item.rung, self.fid.fractions[item.rung], record, score, objective_latency(result),
                                 cost, node)
        attrs[rungs.key(item.rung, "pretrain_seconds")] = round(result.pretrain_seconds, 3)
        return attrs

    def _back_to_pause(self, item: Inflight, frozen, reason: str, cost: dict[str, float]) -> None:
        """A promotion that did not finish (deadline, cancel, worker lost) leaves the layout paused at
        the rung below, whose state is still on disk; the run's end stops it."""
        self._drop_state(frozen, item.rung)
        set_trial_attrs(self.study, item.trial, {**cost, "fidelity_state": rungs.PAUSED})
        self.paused[item.trial.number] = item.rung - 1
        self._emit("finished", f"trial {item.trial.number} {item.layout}: rung {item.rung} not finished ({reason})")

    def _cost(self, item: Inflight) -> dict[str, float]:
        """What a trial held: wall time, and CPU or GPU seconds of its slot."""
        wall = time.time() - item.started
        return {
            "wall_seconds": round(wall, 3),
            "cpu_seconds": round(0.0 if self.slots.use_gpu else wall * self.slots.cpus_per_trial, 3),
            "gpu_seconds": round(wall if self.slots.use_gpu else 0.0, 3),
        }

    def _count(self, outcome: str) -> None:
        if outcome == "complete":
            self.summary.complete += 1
        elif outcome == "cancelled":
            self.summary.cancelled += 1
        else:
            self.summary.failed += 1

    def _stop_at_deadline(self) -> None:
        """Trials poll the deadline themselves; give them ``grace`` seconds, then force."""
        end = time.time() + self.cfg.grace
        while self.inflight and time.time() < end:
            for ref in dispatch.wait(list(self.inflight), timeout=0.5):
                self._collect(ref)
        self._cancel_all("cancelled: deadline reached, trial still running")

    def _cancel_all(self, reason: str) -> None:
        for ref, item in list(self.inflight.items()):
            dispatch.cancel(ref)
            if item.rung:  # a promotion: back to its paused rung
                try:
                    self._back_to_pause(item, self.study._storage.get_trial(item.trial._trial_id), reason,
                                        rungs.summed_cost(self.study._storage.get_trial(item.trial._trial_id),
                                                          self._cost(item)))
                except Exception:  # noqa: BLE001 - best effort while shutting down
                    pass
                continue
            try:
                record_failure(self.study, item.trial, "cancelled", reason, extra=self._cost(item))
                self._requeue(item.trial)
            except Exception:  # noqa: BLE001 - best effort while shutting down
                pass
            self.summary.cancelled += 1
            self._emit("finished", f"trial {item.trial.number} {item.layout}: {reason}")
        self.inflight.clear()

    # -- display ------------------------------------------------------------------------
    def _emit(self, kind: str, text: str) -> None:
        left = self.deadline - time.time() if math.isfinite(getattr(self, "deadline", math.inf)) else None
        log.info("%s%s", f"[{format_duration(max(0.0, left))} left] " if left is not None else "", text)
        front = []
        study = getattr(self, "study", None)
        if study is not None:
            trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            best = front_numbers(trials, study)
            front = [(t.number, t.user_attrs.get("layout", "?"), t.values[0], t.values[1])
                     for t in trials if t.number in best]
        s = self.summary
        self.progress({
            "kind": kind, "text": text, "time_left": left, "study": self.study_name,
            "started": s.started, "complete": s.complete, "failed": s.failed, "cancelled": s.cancelled,
            "skipped": s.skipped, "running": len(self.inflight), "front": sorted(front, key=lambda r: r[3]),
            "metric": metric_name(self.cfg.objective),
        })


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def run_search(config: RunConfig, progress: Callable[[dict[str, Any]], None] | None = None) -> RunSummary:
    """Run (or resume) the search described by ``config``; see the module docstring."""
    return Driver(config, progress).run()
