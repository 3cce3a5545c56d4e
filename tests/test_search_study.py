"""Study bookkeeping on a real SQLite storage: outcomes, seeds, duplicates, stale trials."""

from __future__ import annotations

import json
import time

import optuna
import pytest
from optuna.trial import TrialState

from hsearch.search.space import load_space
from hsearch.search.study import (
    StudyError,
    duplicate_of,
    enqueue_seeds,
    load_existing_study,
    make_sampler,
    make_storage,
    open_study,
    record_failure,
    record_result,
    update_ledger,
)
from hsearch.trial.result import TaskScore, TrialResult


def _result(status: str, layout: str = "SASA:sub", **kw) -> TrialResult:
    return TrialResult(status=status, layout=layout, recipe_name="r", recipe_hash="h", seed=0, **kw)


def _complete(layout: str, acc: float, lat: float) -> TrialResult:
    task = TaskScore("emotion", "validation", "test", acc, 0.0, acc, 0.0, 6, 100)
    return _result("complete", layout, mean_accuracy=acc, latency_ms=lat, tasks={"emotion": task},
                   hardware={"device_name": "cpu"}, pretrain_seconds=2.0, total_seconds=5.0)


@pytest.fixture
def storage_url(tmp_path):
    return f"sqlite:///{tmp_path / 's.db'}"


def test_outcomes_map_to_states_and_attrs(storage_url):
    study = open_study(storage_url, "s", objective="mean", sampler="tpe", seed=0)
    assert study.metric_names == ["mean_accuracy", "latency_ms"]
    assert study.user_attrs["objective"] == "mean"

    t = study.ask()
    assert record_result(study, t, _complete("SASA:sub", 0.7, 3.0), "mean", {"wall_seconds": 9.0}) == TrialState.COMPLETE
    t = study.ask()
    assert record_result(study, t, _result("diverged", error="loss nan at step 3"), "mean") == TrialState.PRUNED
    t = study.ask()
    assert record_result(study, t, _result("oom", error="CUDA out of memory"), "mean") == TrialState.FAIL
    t = study.ask()
    # "complete" without a latency cannot be placed on the front: a failure with a reason.
    assert record_result(study, t, _result("complete", mean_accuracy=0.5), "mean") == TrialState.FAIL
    t = study.ask()
    record_failure(study, t, "error", "raised DataError: corpus folder missing")

    done = study.get_trials()
    assert done[0].values == [0.7, 3.0]
    a = done[0].user_attrs
    assert (a["layout"], a["status"], a["outcome"], a["emotion_accuracy"], a["wall_seconds"]) == (
        "SASA:sub", "complete", "complete", 0.7, 9.0)
    assert json.loads(a["result"])["mean_accuracy"] == 0.7
    assert done[0].constraints == {"hsearch_infeasible": 0.0}
    assert done[1].user_attrs["reason"] == "diverged: loss nan at step 3"
    assert done[1].constraints == {"hsearch_infeasible": 1.0}  # TPE ranks it below feasible trials
    assert done[2].user_attrs["reason"].startswith("oom: CUDA out of memory")
    assert done[3].user_attrs["outcome"] == "failed" and "not scorable" in done[3].user_attrs["reason"]
    assert done[4].state == TrialState.FAIL and done[4].user_attrs["outcome"] == "error"

    ledger = update_ledger(study, {"run_id": "x", "seconds": 1.0})
    assert ledger["total"]["wall_seconds"] == 9.0 and ledger["runs"][0]["run_id"] == "x"
    assert json.loads(study.user_attrs["cost_ledger"]) == ledger

    # Reopening for another objective would mix meanings: refused.
    with pytest.raises(StudyError, match="made with objective 'mean', not 'mlm'"):
        open_study(storage_url, "s", objective="mlm")


def test_seeds_are_queued_once_and_duplicates_found(storage_url, repo_root):
    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    study = open_study(storage_url, "s")
    attrs = lambda s: {"layout": str(s.layout), "recipe_hash": "h"}  # noqa: E731
    assert enqueue_seeds(study, space.seeds, attrs) == ["bert-base", "addbert", "hbert-v1", "hbert-v2"]
    assert enqueue_seeds(study, space.seeds, attrs) == []  # resume / a second driver
    t0 = study.ask()
    assert t0.user_attrs["origin"] == "seed:bert-base" and space.layout(space.suggest(t0)) == space.seeds[0].layout
    trials = study.get_trials(deepcopy=False)
    # Trial 5 proposing addbert: trial 1 (queued, lower number) already owns that layout.
    assert duplicate_of(trials, 5, "AAAAAAAAAAAA:post", "h") == 1
    assert duplicate_of(trials, 5, "AAAAAAAAAAAA:post", "other-recipe") is None
    # The owner itself is not its own duplicate.
    assert duplicate_of(trials, 1, "AAAAAAAAAAAA:post", "h") is None


def test_a_seed_that_failed_for_no_fault_of_its_layout_is_queued_again(storage_url, repo_root):
    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    study = open_study(storage_url, "s")
    attrs = lambda s: {"layout": str(s.layout), "recipe_hash": "h"}  # noqa: E731
    enqueue_seeds(study, space.seeds, attrs)
    verdicts = {  # seed -> what became of its one attempt
        "bert-base": ("error", "raised FileNotFoundError: data/emotion/train.jsonl"),  # input, not the layout
        "addbert": ("diverged", None),  # the layout's own verdict
        "hbert-v1": ("oom", "oom: CUDA out of memory"),  # the layout's memory
        "hbert-v2": None,  # completes
    }
    for label, verdict in verdicts.items():
        t = study.ask()
        space.suggest(t)
        assert t.user_attrs["seed_label"] == label
        if verdict is None:
            record_result(study, t, _complete(t.user_attrs["layout"], 0.5, 3.0), "mean")
        elif verdict[0] == "diverged":
            record_result(study, t, _result("diverged", t.user_attrs["layout"], error="loss NaN"), "mean")
        else:
            record_failure(study, t, verdict[0], verdict[1])
    # Only the seed whose failure was not its layout's runs again, and only up to 3 attempts.
    assert enqueue_seeds(study, space.seeds, attrs) == ["bert-base"]
    assert enqueue_seeds(study, space.seeds, attrs) == []  # queued now: not twice
    for _ in range(2):
        t = study.ask()
        space.suggest(t)
        assert t.user_attrs["seed_label"] == "bert-base"
        record_failure(study, t, "error", "worker died")
        enqueue_seeds(study, space.seeds, attrs)
    assert [t.user_attrs.get("seed_label") for t in study.get_trials()].count("bert-base") == 3
    assert enqueue_seeds(study, space.seeds, attrs) == []


def test_stale_trial_failed_and_retried_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'hb.db'}"
    storage = make_storage(url, heartbeat_interval=1, grace_period=1)
    study = open_study(storage, "s")
    study.enqueue_trial({"x": "a"}, user_attrs={"origin": "seed:x", "seed_label": "x", "layout": "SA:sub",
                                                "recipe_hash": "h"})
    t = study.ask()
    t.suggest_categorical("x", ["a", "b"])
    storage.record_heartbeat(t._trial_id)
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    retry = trials[1]
    assert retry.state == TrialState.WAITING and retry.params == {"x": "a"}
    assert retry.user_attrs["retry_of"] == 0 and retry.user_attrs["origin"] == "retry:0"
    assert retry.user_attrs["seed_label"] == "x"  # still known as the seed's evaluation
    # The retry goes stale too: it is not retried a second time.
    t2 = study.ask()
    t2.suggest_categorical("x", ["a", "b"])
    assert t2.number == 1
    storage.record_heartbeat(t2._trial_id)
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    assert [s.state for s in study.get_trials()] == [TrialState.FAIL, TrialState.FAIL]


def test_storage_and_sampler_errors(tmp_path):
    with pytest.raises(StudyError, match="cannot open storage"):
        make_storage(f"sqlite:///{tmp_path}/no/such/dir/x.db")
    with pytest.raises(StudyError, match="database driver for 'mysql' is not installed.*PyMySQL"):
        make_storage("mysql://u:p@127.0.0.1/x")
    with pytest.raises(StudyError, match="allowed: tpe, nsga2, gp, random"):
        make_sampler("cmaes", None)
    open_study(f"sqlite:///{tmp_path / 'e.db'}", "y")
    with pytest.raises(StudyError, match="--study 'x' not found .* \\(studies: y\\)"):
        load_existing_study(f"sqlite:///{tmp_path / 'e.db'}", "x")
    with pytest.raises(StudyError, match="SQLite file .*missing.db not found"):
        load_existing_study(str(tmp_path / "missing.db"), None)
    assert not (tmp_path / "missing.db").exists()
