"""Crash-safe resume: SIGKILL the driver while a trial runs, run the same command again."""

from __future__ import annotations

import json
from collections import Counter

from fixtures_search import run_cli, sigkill_driver_when, study_trials, write_recipe
from optuna.trial import TrialState

from hsearch.cli import main


def _trials(url: str):
    return study_trials(url, "hbert-tiny")


def test_sigkill_then_rerun_retries_stale_trial_once(repo_root, ray_cluster, shared_data, tmp_path, capsys):
    # 5 s of pretraining: long enough that the trial seen running is still running when killed.
    recipe = write_recipe(tmp_path / "slow.yaml", "tiny", **{"pretrain.budget": "5s"})
    db = tmp_path / "r.db"
    url = f"sqlite:///{db}"
    args = ["run", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(recipe),
            "--storage", url, "--address", ray_cluster.address, "--data-dir", str(shared_data),
            "--artifacts", str(tmp_path / "art"), "--max-trials", "3", "--heartbeat", "2", "--seed", "0"]
    # Kill once one trial has finished and another is in flight that started after it
    # finished: that one has its whole 5 s budget ahead, so it cannot complete before the
    # kill lands (trials started together also finish together).
    def ready():
        ts = _trials(url)
        done = [t for t in ts if t.state == TrialState.COMPLETE]
        last_done = max((t.datetime_complete for t in done), default=None)
        running = [t for t in ts if t.state == TrialState.RUNNING and t.user_attrs.get("dispatched")
                   and last_done is not None and t.datetime_start > last_done]
        return (done, running) if done and running else None

    sigkill_driver_when(args, tmp_path, ready, timeout=240, interval=0.3, what="a complete and a running trial")
    killed = {t.number for t in _trials(url) if t.state == TrialState.RUNNING}
    assert killed, "the killed driver left no trial RUNNING"
    snapshot = {t.number: t.values for t in _trials(url) if t.state == TrialState.COMPLETE}
    before = {t.number for t in _trials(url)}

    # At once, without waiting out the heartbeat: the new driver sees the old one is gone.
    second = run_cli(args, cwd=tmp_path, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "left running by a lost driver" in second.stderr

    trials = _trials(url)
    by_number = {t.number: t for t in trials}
    started_now = [t for t in trials if t.number not in before and t.user_attrs.get("dispatched")]
    first_sampled = min((t.datetime_start for t in started_now if t.user_attrs["origin"] == "sampler"), default=None)
    for n in killed:
        assert by_number[n].state == TrialState.FAIL and by_number[n].user_attrs["outcome"] == "stale"
        assert "driver lost: process" in by_number[n].user_attrs["reason"]
        retries = [t for t in trials if t.user_attrs.get("retry_of") == n]
        assert len(retries) == 1, f"trial {n} retried {len(retries)} times"
        retry = retries[0]
        assert retry.state == TrialState.COMPLETE and retry.params == by_number[n].params
        assert retry.user_attrs["origin"] == f"retry:{n}"
        assert retry.user_attrs["layout"] == by_number[n].user_attrs["layout"]
        # The retry ran before the sampler was asked for anything new.
        assert first_sampled is None or retry.datetime_start <= first_sampled
    # No completed trial lost or changed.
    for n, values in snapshot.items():
        assert by_number[n].state == TrialState.COMPLETE and by_number[n].values == values
    # No seed queued or evaluated twice.
    origins = Counter(t.user_attrs.get("origin") for t in trials)
    assert all(origins[f"seed:{s}"] == 1 for s in ("bert-base", "addbert", "hbert-v1", "hbert-v2"))
    layouts = Counter(t.user_attrs["layout"] for t in trials if t.state == TrialState.COMPLETE)
    assert max(layouts.values()) == 1
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
    assert not [t for t in trials if t.state == TrialState.RUNNING]

    capsys.readouterr()
    assert main(["status", "--storage", url]) == 0
    assert "retried as #" in capsys.readouterr().out
    # pareto shows each seed by its completed evaluation, a retry's where the first was lost.
    assert main(["pareto", "--storage", url, "--format", "json"]) == 0
    shown = {r["trial"] for r in json.loads(capsys.readouterr().out)["seeds"]}
    for n in killed:
        (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == n]
        assert retry.user_attrs["seed_label"] == by_number[n].user_attrs["seed_label"]
        assert retry.number in shown and n not in shown
