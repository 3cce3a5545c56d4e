"""A new driver settles a lost driver's trials before sampling: which ones, and how fast."""

from __future__ import annotations

import socket
import subprocess
import sys

import optuna
from optuna.trial import TrialState

from hsearch.search.driver import Driver, RunConfig, RunSummary
from hsearch.search.study import make_storage, open_study


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: no such process now


def test_lost_local_driver_settled_at_once_live_one_left_alone(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = make_storage(url, heartbeat_interval=1, grace_period=2)
    study = open_study(storage, "s")
    host = socket.gethostname()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owners = {"lost": f"{host}:{_dead_pid()}:old", "live": f"{host}:{live.pid}:other"}
        numbers = {}
        for name, driver in owners.items():
            t = study.ask()
            t.suggest_categorical("x", ["a", "b"])
            t.set_user_attr("driver", driver)
            t.set_user_attr("layout", "SA:sub")
            storage.record_heartbeat(t._trial_id)
            numbers[name] = t.number
        d = Driver(RunConfig(storage=url, heartbeat=1))
        d.study, d.storage, d.summary, d.study_name = study, storage, RunSummary("s", url), "s"

        def no_waiting(seconds):
            raise AssertionError("waited for a heartbeat to tell a lost driver from a live one")

        monkeypatch.setattr("hsearch.search.driver.time.sleep", no_waiting)
        retried = d._settle_lost_trials()
    finally:
        live.kill()
    trials = {t.number: t for t in optuna.load_study(study_name="s", storage=url).get_trials()}
    lost = trials[numbers["lost"]]
    assert lost.state == TrialState.FAIL and lost.user_attrs["outcome"] == "stale"
    assert f"process {owners['lost'].split(':')[1]} on {host} is gone" in lost.user_attrs["reason"]
    assert retried == [numbers["lost"]]
    (retry,) = [t for t in trials.values() if t.user_attrs.get("retry_of") == numbers["lost"]]
    assert retry.state == TrialState.WAITING
    # A driver alive on this host keeps its trial (and neither needed a heartbeat to tell).
    assert trials[numbers["live"]].state == TrialState.RUNNING


def test_state_cleanup_deletes_only_hsearchs_state_files(tmp_path):
    # A lost trial's trunk states (and a half-written one) go; a user's files beside them stay.
    d = Driver(RunConfig(storage=f"sqlite:///{tmp_path / 's.db'}"))
    d.top_rung = 2
    state = tmp_path / "trial-0" / "state"
    state.mkdir(parents=True)
    for name in ("rung0.pt", "rung1.pt", "rung0.pt.tmp", "notes.txt", "rungs.pt"):
        (state / name).write_text("x")
    trial = optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"artifacts_dir": str(tmp_path / "trial-0")})
    d._drop_state(trial, 1)
    assert not (state / "rung1.pt").exists() and (state / "rung0.pt").exists()
    d._drop_states(trial)
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt", "rungs.pt"]
