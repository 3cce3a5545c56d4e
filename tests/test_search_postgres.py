"""Two drivers share one study on a real PostgreSQL server (started by the test in /tmp)."""

from __future__ import annotations

import subprocess
from collections import Counter

import optuna
from fixtures_search import hsearch_cmd
from optuna.trial import TrialState


def test_two_drivers_share_one_study(repo_root, tiny_recipe, ray_cluster, shared_data, pg_server, tmp_path):
    args = ["run", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(tiny_recipe),
            "--storage", pg_server.url, "--study", "shared", "--address", ray_cluster.address,
            "--data-dir", str(shared_data), "--artifacts", str(tmp_path / "art"), "--max-trials", "4"]
    drivers = [
        subprocess.Popen(hsearch_cmd(*args, "--seed", str(i)), cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outputs = [d.communicate(timeout=400) for d in drivers]
    for d, (out, err) in zip(drivers, outputs):
        assert d.returncode == 0, err[-3000:]

    study = optuna.load_study(study_name="shared", storage=pg_server.url)
    trials = study.get_trials()
    dispatched = [t for t in trials if t.user_attrs.get("dispatched")]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # All results land: every trial a driver started ends complete, none left running.
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert len(complete) == len(dispatched) and 4 <= len(complete) <= 4 + 3
    # No layout is trained twice, whichever driver asked for it.
    assert max(Counter(t.user_attrs["layout"] for t in dispatched).values()) == 1
    seeds = Counter(t.user_attrs["origin"] for t in complete if t.user_attrs["origin"].startswith("seed:"))
    assert seeds == Counter({f"seed:{s}": 1 for s in ("bert-base", "addbert", "hbert-v1", "hbert-v2")})
    # Both drivers did work (each reports what it started).
    started = [int(out.split(":")[1].split("trial(s)")[0]) for out, _ in outputs]
    assert all(n >= 1 for n in started) and sum(started) == len(dispatched)
    skipped = [t for t in trials if t.user_attrs.get("outcome") == "duplicate"]
    for t in skipped:
        assert t.state == TrialState.FAIL and "duplicate_of" in t.user_attrs
