"""The Optuna study: storage, sampler, seeds, and how a TrialResult is recorded.

How outcomes map to Optuna states (stable; analysis and ``status`` rely on it):

* ``complete`` -> COMPLETE with values ``[score, latency_ms]``.
* ``diverged`` -> PRUNED with user attr ``reason`` and constraint ``hsearch_infeasible`` = 1
  (complete trials get 0), so TPE, which ranks infeasible trials last, learns to avoid
  the region. NSGA-II/GP/random
  ignore non-complete trials; the trial is still stored with its reason.
* sampled layout breaking a space constraint -> PRUNED the same way, never trained.
* ``failed`` / ``oom`` / task error / worker death -> FAIL with ``reason``.
* ``cancelled`` (deadline, Ctrl-C) -> FAIL with ``reason`` ``cancelled: ...``, and queued
  again (``retry_of``) so the next run evaluates it before anything new.
* duplicate of a layout already complete or in flight under the same recipe hash ->
  FAIL with ``reason`` ``duplicate`` and ``duplicate_of`` (the earlier trial number):
  it is *skipped*, not re-trained and its result not copied, so the front has no twins.
* left RUNNING by a dead driver -> FAIL by Optuna's stale-trial check; retried once
  as a new trial with the same params and user attrs ``origin`` ``retry:<n>``,
  ``retry_of`` ``<n>``.

Every trial carries user attrs ``layout``, ``space``, ``origin`` (``seed:<name>`` |
``sampler`` | ``retry:<n>``), ``recipe``, ``recipe_hash``, ``driver`` (host:pid:run of the
driver that started it), seeds and their retries ``seed_label``, and, once a worker
reported, :func:`result_attrs` plus ``outcome``, ``wall_seconds``, ``cpu_seconds``,
``gpu_seconds``, ``cuda_visible_devices``, ``ray_node``, ``artifacts_dir``.

A seed is queued again on a later run when none of its attempts settled it: an attempt
settles a seed when it completed, diverged, ran out of memory, broke a constraint, was a
duplicate, or is still queued or running; failures that are not the layout's (an
exception, a lost worker) do not, up to :data:`MAX_SEED_ATTEMPTS` attempts.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import time
import warnings
from typing import Any, Callable, Iterable, Mapping

import optuna
from optuna.storages import RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from hsearch import defaults
from hsearch.errors import HsearchError
from hsearch.front import front_indices
from hsearch.trial.result import COMPLETE, DIVERGED, TrialResult

DIRECTIONS = ("maximize", "minimize")
LATENCY_METRIC = "latency_ms"
MAX_SEED_ATTEMPTS = 3  # a seed that keeps failing for reasons not its layout's is not queued forever
SETTLING_OUTCOMES = ("complete", "diverged", "oom", "constraint", "duplicate")  # the layout's own verdicts

optuna.logging.set_verbosity(optuna.logging.WARNING)
# We heartbeat trials ourselves in the ask/tell loop; Optuna warns that it expects optimize().
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class StudyError(HsearchError, ValueError):
    """A storage or study that cannot be used as asked."""


def metric_name(objective: str) -> str:
    if objective not in defaults.OBJECTIVES:
        raise StudyError(f"unknown objective {objective!r} (allowed: {', '.join(defaults.OBJECTIVES)})")
    return "mean_accuracy" if objective == "mean" else f"{objective}_accuracy"


def shown(url: str) -> str:
    """The URL as it may appear in messages: a database password is masked."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


JOURNAL = "journal://"  # journal://FILE: Optuna's JournalStorage on a file (journal:///abs/study.log)
HEARTBEAT_ATTR = "hsearch:heartbeat"  # journal storage: a running trial's last heartbeat (epoch seconds)
FINISHED_ATTRS = "hsearch:finished_attrs:"  # journal storage: + trial id -> user attrs added after it finished


def make_storage(url: str, *, heartbeat_interval: int | None = None,
                 grace_period: int | None = None) -> optuna.storages.BaseStorage:
    """An RDB storage (sqlite:///file.db, postgresql+psycopg://...) or a journal file
    (journal://FILE, :class:`HsearchJournalStorage`); one-line error if unreachable."""
    kwargs: dict[str, Any] = {}
    if heartbeat_interval:
        kwargs.update(
            heartbeat_interval=int(heartbeat_interval),
            grace_period=int(grace_period or 2 * heartbeat_interval),
            heartbeat_stale_trial_callback=retry_stale_trial,
        )
    if url.startswith(JOURNAL):
        return _journal_storage(url, **kwargs)
    _refuse_journal_as_sqlite(url)
    engine_kwargs = {}
    if url.startswith("postgresql"):
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    elif url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}
    for attempt in range(5):
        try:
            return RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
        except ImportError as exc:  # the URL's database driver is not installed
            scheme = url.split("://", 1)[0]
            raise StudyError(
                f"cannot open storage {shown(url)!r}: the database driver for {scheme!r} is not installed "
                f"({exc}); install it (e.g. pip install PyMySQL and use mysql+pymysql://) or use sqlite:/// "
                "or postgresql+psycopg://"
            ) from None
        except Exception as exc:  # sqlalchemy/driver errors vary by backend
            # Two drivers creating Optuna's tables in an empty database race on
            # CREATE TYPE/TABLE; the loser sees an IntegrityError and can simply retry.
            if type(exc).__name__ in ("IntegrityError", "ProgrammingError") and attempt < 4:
                time.sleep(0.5 + attempt)
                continue
            detail = " ".join(str(exc).split())[:300]
            raise StudyError(f"cannot open storage {shown(url)!r}: {type(exc).__name__}: {detail}") from None
    raise AssertionError("unreachable")


_SQLITE_HEADER = b"SQLite format 3\x00"


def _file_head(path: str, n: int = 64) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _refuse_journal_as_sqlite(url: str) -> None:
    """``sqlite:///study.log`` (a bare path becomes a SQLite URL) naming an Optuna journal file."""
    path = url[len("sqlite:///"):].split("?", 1)[0] if url.startswith("sqlite:///") else ""
    if path and os.path.isfile(path) and _file_head(path).lstrip().startswith(b'{"op_code"'):
        raise StudyError(f"--storage {url}: {path} is an Optuna journal file, not SQLite: "
                         f"use --storage journal://{os.path.abspath(path)}")


def journal_file(url: str) -> str | None:
    """The file a ``journal://FILE`` URL names (``journal:///abs/study.log`` is /abs/study.log,
    ``journal://study.log`` is relative to the working directory); None for other URLs.

    A journal URL that names no file, or a file in a folder that does not exist, is a one-line
    StudyError here, so ``hsearch run`` refuses it before any work."""
    if not url.startswith(JOURNAL):
        return None
    path = url[len(JOURNAL):]
    if not path or "?" in path or path.endswith("/"):
        raise StudyError(f"--storage {url}: a journal storage is journal:// and a file path, "
                         "e.g. journal:///shared/hsearch/study.log")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise StudyError(f"--storage {url}: folder {folder} does not exist (create it first)")
    return path


def _journal_storage(url: str, **heartbeat: Any) -> "HsearchJournalStorage":
    from optuna.storages.journal import JournalFileBackend

    path = journal_file(url)
    if os.path.isdir(path):
        raise StudyError(f"--storage {url}: {path} is a folder, not a journal file")
    if os.path.isfile(path) and _file_head(path).startswith(_SQLITE_HEADER):
        raise StudyError(f"--storage {url}: {path} is a SQLite database, not a journal file: "
                         f"use --storage sqlite:///{path}")
    head = _file_head(path, 16) if os.path.isfile(path) else b""
    if head and not head.lstrip().startswith(b'{"op_code"'):  # Optuna would skip a bad last line
        raise StudyError(f"--storage {url}: {path} is not an Optuna journal file (it does not start with "
                         "a journal entry)")
    try:
        return HsearchJournalStorage(JournalFileBackend(path), **heartbeat)
    except Exception as exc:  # unreadable file, not JSON lines, no permission
        detail = " ".join(str(exc).split())[:300]
        raise StudyError(f"cannot open storage {url!r}: {type(exc).__name__}: {detail}") from None


class HsearchJournalStorage(optuna.storages.JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with the two things the search needs from an RDB storage.

    * Heartbeats: a running trial's last beat is its trial system attr ``hsearch:heartbeat``
      (this machine's clock, seconds since the epoch: the machines sharing the file need
      synchronised clocks, e.g. NTP); a RUNNING trial whose beat is older than the grace period
      is stale (one that never beat is not, as in Optuna's RDB storage).
    * User attrs added after a trial finished (:func:`set_finished_trial_attrs`, the
      re-evaluation's ``reeval_*``): Optuna's journal ignores updates of finished trials, so they
      are kept as the study system attr ``hsearch:finished_attrs:<trial id>`` (a dict) and merged
      into the trial's user attrs when read through this class. A plain Optuna reader (or
      ``optuna-dashboard FILE``) sees them only in the study's system attrs.
    """

    def __init__(self, backend, *, heartbeat_interval: int | None = None, grace_period: int | None = None,
                 heartbeat_stale_trial_callback: Callable | None = None) -> None:
        super().__init__(backend)
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period or (2 * heartbeat_interval if heartbeat_interval else None)
        self._stale_callback = heartbeat_stale_trial_callback

    # heartbeats
    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # finished meanwhile (another driver failed it as stale): nothing to keep alive

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        if not self._grace_period:
            return []
        now = time.time()
        return [t._trial_id for t in super().get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
                if HEARTBEAT_ATTR in t.system_attrs and now - float(t.system_attrs[HEARTBEAT_ATTR]) > self._grace_period]

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self._stale_callback

    # user attrs of finished trials
    def _late_attrs(self, study_id: int) -> dict[int, dict[str, Any]]:
        attrs = super().get_study_system_attrs(study_id)
        return {int(k[len(FINISHED_ATTRS):]): v for k, v in attrs.items()
                if k.startswith(FINISHED_ATTRS) and isinstance(v, dict)}

    @staticmethod
    def _merged(trial: FrozenTrial, extra: Mapping[str, Any] | None) -> FrozenTrial:
        if not extra:
            return trial
        trial = copy.copy(trial)  # never change the replayed trial itself
        trial.user_attrs = {**trial.user_attrs, **extra}
        return trial

    def get_trial(self, trial_id: int) -> FrozenTrial:
        trial = super().get_trial(trial_id)
        study_id = getattr(self._replay_result, "_trial_id_to_study_id", {}).get(trial_id)
        if study_id is None or not trial.state.is_finished():
            return trial
        return self._merged(trial, self._late_attrs(study_id).get(trial_id))

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states=None) -> list[FrozenTrial]:
        trials = super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
        late = self._late_attrs(study_id)
        return [self._merged(t, late.get(t._trial_id)) for t in trials] if late else trials

    def set_finished_trial_user_attrs(self, study_id: int, trial_id: int, attrs: Mapping[str, Any]) -> None:
        key = f"{FINISHED_ATTRS}{trial_id}"
        old = super().get_study_system_attrs(study_id).get(key)
        merged = {**(old if isinstance(old, dict) else {}), **{k: v for k, v in attrs.items() if v is not None}}
        self.set_study_system_attr(study_id, key, merged)


def retry_stale_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Stale-trial callback: queue the same params once more, labelled as a retry."""
    if "retry_of" in trial.user_attrs:
        return  # a retry that went stale again is not retried a second time
    requeue(study, trial)


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue ``trial``'s params again as a new trial (origin ``retry:<n>``, ``retry_of``).

    Used for trials lost with their driver and for trials cancelled at the deadline or
    by Ctrl-C, so the next run evaluates them before anything new.
    """
    attrs = {k: v for k, v in trial.user_attrs.items()
             if k in ("layout", "space", "recipe", "recipe_hash", "seed_label")}
    attrs.update(origin=f"retry:{trial.number}", retry_of=trial.number)
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=attrs,
            system_attrs={"failed_trial": trial.number, "retry_history": [trial.number]},
        )
    )


INFEASIBLE = "hsearch_infeasible"  # constraint name: > 0 for diverged / constraint-breaking trials


def _mark_feasibility(trial, infeasible: bool) -> None:
    # TPE ranks trials with a positive constraint value below every feasible one.
    if isinstance(trial, optuna.Trial):
        trial.set_constraint(INFEASIBLE, 1.0 if infeasible else 0.0)


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """Optuna 5 does not store the sampler: the driver builds it on every load."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise StudyError(f"unknown sampler {name!r} (allowed: {', '.join(defaults.SAMPLERS)})")


def open_study(
    storage: str | optuna.storages.BaseStorage,
    study_name: str,
    *,
    objective: str = defaults.OBJECTIVE,
    sampler: str = defaults.SAMPLER,
    seed: int | None = None,
) -> optuna.Study:
    """Create or load the two-objective study ``[score (max), latency_ms (min)]``.

    An existing study must have been made for the same objective; otherwise its values
    would mean two different things.
    """
    if isinstance(storage, str):
        storage = make_storage(storage)
    metric = metric_name(objective)
    names = optuna.get_all_study_names(storage)
    if study_name not in names:
        study = optuna.create_study(
            storage=storage,
            study_name=study_name,
            directions=list(DIRECTIONS),
            sampler=make_sampler(sampler, seed),
            load_if_exists=True,  # another driver may create it at the same moment
        )
        if study.metric_names is None:
            study.set_metric_names([metric, LATENCY_METRIC])
        study.set_user_attr("objective", objective)
    else:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=make_sampler(sampler, seed))
    check_compatible(study, objective=objective)
    return study


def check_compatible(study: optuna.Study, *, objective: str | None = None, space: str | None = None,
                     recipe: str | None = None) -> None:
    """Refuse to resume ``study`` with another objective, space or recipe: its values and
    parameters would then mean two different things. ``None`` skips a check."""
    if [d.name.lower() for d in study.directions] != list(DIRECTIONS):
        raise StudyError(f"study {study.study_name!r} is not an hsearch study (directions {study.directions})")
    attrs = study.user_attrs
    for flag, key, want, where in (("--objective", "objective", objective, None),
                                   ("--space", "space", space, attrs.get("space_file")),
                                   ("--recipe", "recipe", recipe, None)):
        have = attrs.get(key)
        if want is None or have is None or have == want:
            continue
        made = f"{have!r}" + (f" ({where})" if where else "")
        raise StudyError(
            f"study {study.study_name!r} was made with {key} {made}, not {want!r} "
            f"(use {flag} {where or have} to resume it, or --study NAME for a new study)"
        )


# -- seeds and duplicates ------------------------------------------------------------


def seed_label(t: FrozenTrial) -> str | None:
    """The seed a trial evaluates: ``seed_label``, or an ``origin`` of ``seed:<label>``."""
    label = t.user_attrs.get("seed_label")
    origin = str(t.user_attrs.get("origin", ""))
    return label if label else (origin.split(":", 1)[1] if origin.startswith("seed:") else None)


def _settles(t: FrozenTrial) -> bool:
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING):
        return True
    return t.user_attrs.get("outcome") in SETTLING_OUTCOMES


def enqueue_seeds(study: optuna.Study, seeds: Iterable, attrs: Callable[[Any], Mapping[str, Any]]) -> list[str]:
    """Queue the space's seeds that no attempt has settled (module docstring); returns the labels.

    Resuming or a second driver never queues a seed twice while an attempt is queued, running
    or has given its layout's verdict. ``attrs(seed)`` adds the layout and recipe hash now, so
    a racing driver's duplicate check sees this queued trial.
    """
    attempts: dict[str, list[FrozenTrial]] = {}
    for t in study.get_trials(deepcopy=False):
        label = seed_label(t)
        if label is not None:
            attempts.setdefault(label, []).append(t)
    queued = []
    for seed in seeds:
        tried = attempts.get(seed.label, [])
        if any(_settles(t) for t in tried) or len(tried) >= MAX_SEED_ATTEMPTS:
            continue
        study.enqueue_trial(dict(seed.params),
                            user_attrs={"origin": f"seed:{seed.label}", "seed_label": seed.label, **attrs(seed)})
        queued.append(seed.label)
    return queued


def duplicate_of(trials: Iterable[FrozenTrial], trial_number: int, layout: str, recipe_hash: str) -> int | None:
    """The earlier trial that already trains or trained this layout under this recipe.

    Complete trials always win; an in-flight or queued one wins when its number is lower,
    so two drivers racing on the same layout agree on which one trains it.
    """
    best = None
    for t in trials:
        if t.number == trial_number or t.user_attrs.get("recipe_hash") != recipe_hash:
            continue
        if t.user_attrs.get("layout") != layout:
            continue
        if t.state == TrialState.COMPLETE:
            return t.number
        if t.state in (TrialState.RUNNING, TrialState.WAITING) and t.number < trial_number:
            if "duplicate_of" not in t.user_attrs and (best is None or t.number < best):
                best = t.number
    return best


# -- recording ------------------------------------------------------------------------


def _set_attrs(study: optuna.Study, trial: optuna.Trial | FrozenTrial | int, attrs: Mapping[str, Any]) -> None:
    number = trial if isinstance(trial, int) else trial.number
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    for key, value in attrs.items():
        if value is not None:
            study._storage.set_trial_user_attr(trial_id, key, value)


def set_trial_attrs(study: optuna.Study, trial, attrs: Mapping[str, Any]) -> None:
    _set_attrs(study, trial, attrs)


def set_finished_trial_attrs(study: optuna.Study, number: int, attrs: Mapping[str, Any]) -> None:
    """User attrs on a trial that has already finished (the re-evaluation's ``reeval_*``).

    Optuna's API refuses that (``check_trial_is_updatable``, also in
    ``storage.set_trial_user_attr``), so on an RDB storage the rows are written here through its
    own tables, in one transaction; on a journal file (:class:`HsearchJournalStorage`) they are
    kept on the study and merged in when trials are read. Values are JSON, as Optuna stores them;
    ``None`` is skipped. The ``study`` object keeps its cached copy of the finished trial: load the
    study again to read them.
    """
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    storage = study._storage
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    if isinstance(storage, HsearchJournalStorage):
        storage.set_finished_trial_user_attrs(study._study_id, trial_id, attrs)
        return
    rdb = getattr(storage, "_backend", storage)
    if not isinstance(rdb, RDBStorage):
        raise StudyError(f"study {study.study_name!r}: attributes of finished trials can only be added on an "
                         f"RDB storage (sqlite:///, postgresql://) or a journal:// file, not {type(rdb).__name__}")
    with _create_scoped_session(rdb.scoped_session) as session:
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        for key, value in attrs.items():
            if value is None:
                continue
            text = json.dumps(value)
            row = models.TrialUserAttributeModel.find_by_trial_and_key(trial, key, session)
            if row is None:
                session.add(models.TrialUserAttributeModel(trial_id=trial_id, key=key, value_json=text))
            else:
                row.value_json = text


def result_attrs(result: TrialResult) -> dict[str, Any]:
    """A result as Optuna user attrs: flat, stable names the dashboard can sort and plot.

    Scalars stay scalars; ``result`` holds the whole result as JSON so nothing is lost.
    Renaming a key breaks old studies (analysis and ``status`` read them back).
    """
    attrs: dict[str, Any] = {
        "layout": result.layout,
        "status": result.status,
        "recipe": result.recipe_name,
        "recipe_hash": result.recipe_hash,
        "seed": result.seed,
        "mlm_accuracy": result.mlm_accuracy,
        "mlm_loss": result.mlm_loss,
        "mean_accuracy": result.mean_accuracy,
        "latency_ms": result.latency_ms,
        "latency_ms_median": result.latency_ms_median,
        "latency_ms_spread": result.latency_ms_spread,
        "latency_path": result.latency_path,
        "latency_ms_predicted": result.latency_ms_predicted,
        "step_seconds_predicted": result.step_seconds_predicted,
        "pretrain_seconds_predicted": result.pretrain_seconds_predicted,
        "charge": result.charge,
        "cost_table": result.cost_table,
        "params": result.params,
        "tokens_seen": result.tokens_seen,
        "optimizer_steps": result.optimizer_steps,
        "tokens_per_second": result.tokens_per_second,
        "pretrain_seconds": result.pretrain_seconds,
        "total_seconds": result.total_seconds,
        "budget": result.budget,
        "device": result.hardware.get("device_name"),
        "hardware": json.dumps(result.hardware, sort_keys=True),
        "error": result.error,
        "checkpoint_dir": result.checkpoint_dir,
    }
    for name, task in result.tasks.items():
        attrs[f"{name}_accuracy"] = task.score_mean
        attrs[f"{name}_accuracy_std"] = task.score_std
        attrs[f"{name}_test_accuracy"] = task.report_mean
    attrs["result"] = json.dumps(result.to_dict(), sort_keys=True)
    return {k: v for k, v in attrs.items() if v is not None}


def objective_latency(result: TrialResult) -> float:
    """The latency the search minimises: the cost table's prediction (deterministic, the same
    wherever it is asked) when the trial had a table, else the measured steady latency."""
    value = result.latency_ms_predicted if result.latency_ms_predicted is not None else result.latency_ms
    if value is None or not math.isfinite(value):
        raise ValueError("trial has no finite latency")
    return float(value)


def record_result(
    study: optuna.Study,
    trial,
    result: TrialResult,
    objective: str,
    extra: Mapping[str, Any] | None = None,
) -> TrialState:
    """Store the result's attributes on the trial and tell Optuna its outcome."""
    attrs = result_attrs(result)
    attrs.update(extra or {})
    values = None
    state = TrialState.FAIL
    reason = None
    if result.status == COMPLETE:
        try:
            values = [result.objective(objective), objective_latency(result)]
            state = TrialState.COMPLETE
        except (TypeError, ValueError) as exc:
            reason = f"complete but not scorable: {exc}"
    elif result.status == DIVERGED:
        state = TrialState.PRUNED
        reason = f"diverged: {result.error or 'loss became NaN/inf'}"
    else:
        reason = f"{result.status}: {result.error or 'no error text'}"
    # A "complete" result without a usable score is a failure of that trial.
    attrs["outcome"] = "failed" if result.status == COMPLETE and state == TrialState.FAIL else result.status
    if reason:
        attrs["reason"] = reason[:2000]
    _set_attrs(study, trial, attrs)
    if state != TrialState.FAIL:
        _mark_feasibility(trial, state == TrialState.PRUNED)
    study.tell(trial, values=values, state=state)
    return state


def record_failure(study: optuna.Study, trial, outcome: str, reason: str, extra: Mapping[str, Any] | None = None,
                   state: TrialState = TrialState.FAIL, infeasibility: float = 1.0) -> None:
    """A trial that produced no TrialResult (task error, worker death, cancel, skip, a layout
    stopped at a lower rung). ``infeasibility``: its constraint value; TPE ranks infeasible trials
    by it, lowest first, and all of them below the feasible ones."""
    attrs = dict(extra or {})
    attrs.update(outcome=outcome, reason=reason[:2000])
    _set_attrs(study, trial, attrs)
    if state != TrialState.FAIL and isinstance(trial, optuna.Trial):
        trial.set_constraint(INFEASIBLE, infeasibility)
    study.tell(trial, state=state)


# -- cost ledger ----------------------------------------------------------------------


def update_ledger(study: optuna.Study, run_info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Recompute the cost ledger from the trials' own cost attrs (safe with several drivers)."""
    per_trial = {}
    totals = {"wall_seconds": 0.0, "cpu_seconds": 0.0, "gpu_seconds": 0.0}
    for t in study.get_trials(deepcopy=False):
        if "wall_seconds" not in t.user_attrs:
            continue
        row = {k: round(float(t.user_attrs.get(k, 0.0)), 3) for k in totals}
        row["outcome"] = t.user_attrs.get("outcome", t.state.name.lower())
        per_trial[str(t.number)] = row
        for k in totals:
            totals[k] += row[k]
    old = json.loads(study.user_attrs.get("cost_ledger", "{}") or "{}")
    runs = list(old.get("runs", []))
    if run_info is not None:
        runs = [r for r in runs if r.get("run_id") != run_info.get("run_id")] + [dict(run_info)]
    ledger = {"trials": per_trial, "total": {k: round(v, 3) for k, v in totals.items()}, "runs": runs}
    study.set_user_attr("cost_ledger", json.dumps(ledger, sort_keys=True))
    return ledger


def counts_toward_max(t: FrozenTrial) -> bool:
    """Trained trials (or in training); skips, stale and cancelled ones do not count."""
    if not t.user_attrs.get("dispatched"):
        return False
    if t.state == TrialState.RUNNING:
        return True
    return t.user_attrs.get("outcome") not in (None, "cancelled", "stale")




def sqlite_file(url: str) -> str | None:
    """The local file a file-backed storage URL names: a ``sqlite:///`` database or a
    ``journal://`` file (None for server URLs and in-memory SQLite). The driver creates it only
    once every other check has passed."""
    if url.startswith(JOURNAL):
        return journal_file(url)
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def absolute_storage_url(url: str) -> str:
    """``url`` with a relative SQLite or journal path made absolute, so a worker in another
    working directory opens the same file."""
    for prefix, path in (("sqlite:///", sqlite_file(url)), (JOURNAL, journal_file(url))):
        if path is not None and url.startswith(prefix) and not os.path.isabs(path):
            return url.replace(path, os.path.abspath(path), 1)
    return url


def existing_storage_url(storage: str | os.PathLike | None) -> str:
    """:func:`hsearch.defaults.storage_url`, refused when it names a SQLite or journal file that
    does not exist: read-only commands must not make Optuna create an empty one."""
    url = defaults.storage_url(storage)
    path = sqlite_file(url)
    if path is not None and not os.path.isfile(path):
        what = "journal" if url.startswith(JOURNAL) else "SQLite"
        raise StudyError(f"--storage {url}: {what} file {path} not found (run `hsearch run` first)")
    return url


def load_existing_study(storage: str | os.PathLike | None, study_name: str | None) -> optuna.Study:
    """Open a study that exists; with no name the storage must hold exactly one."""
    url = existing_storage_url(storage)
    store = make_storage(url)
    names = optuna.get_all_study_names(store)
    if study_name is None:
        if len(names) != 1:
            what = "no study yet (start one with hsearch run)" if not names else f"{len(names)} studies; pass --study"
            raise StudyError(f"--storage {shown(url)} holds {what} (studies: {', '.join(names) or 'none'})")
        study_name = names[0]
    elif study_name not in names:
        raise StudyError(f"--study {study_name!r} not found in {shown(url)} (studies: {', '.join(names) or 'none'})")
    return optuna.load_study(study_name=study_name, storage=store)


def front_numbers(trials: Iterable[FrozenTrial], study: optuna.Study) -> set[int]:
    """Numbers of the complete trials on the Pareto front (:mod:`hsearch.front`)."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    maximize = [d == optuna.study.StudyDirection.MAXIMIZE for d in study.directions]
    return {done[i].number for i in front_indices([t.values for t in done], maximize)}
