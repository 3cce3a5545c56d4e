"""`hsearch run` / `hsearch status` end to end: real trials on a local Ray cluster, SQLite.

Drivers join the session's Ray cluster (``--address``) so its start-up is paid once.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import optuna
from fixtures_search import free_port, write_recipe
from optuna.trial import TrialState

from hsearch.cli import main
from hsearch.search.study import counts_toward_max

SEEDS = [
    ("seed:bert-base", "SSSSSSSSSSSS:post"),
    ("seed:addbert", "AAAAAAAAAAAA:post"),
    ("seed:hbert-v1", "SASASASASASA:sub"),
    ("seed:hbert-v2", "SSAAAAAAAASS:sub"),
]
TRIAL_ATTRS = {"layout", "space", "origin", "recipe", "recipe_hash", "status", "outcome", "mean_accuracy",
               "emotion_accuracy", "massive_accuracy", "mlm_accuracy", "latency_ms", "params", "tokens_seen",
               "tokens_per_second", "hardware", "result", "wall_seconds", "cpu_seconds", "ray_node",
               "artifacts_dir"}


def _run_args(space: Path, recipe: Path, db: Path, ray_cluster, shared_data, tmp_path, *extra: str) -> list[str]:
    return ["run", "--space", str(space), "--recipe", str(recipe), "--storage", f"sqlite:///{db}",
            "--address", ray_cluster.address, "--data-dir", str(shared_data),
            "--artifacts", str(tmp_path / "art"), *extra]


def _study(db: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def test_run_seeds_first_then_sampler_and_status(repo_root, tiny_recipe, ray_cluster, shared_data, tmp_path, capsys):
    db = tmp_path / "h.db"
    args = _run_args(repo_root / "search_spaces" / "hbert.yaml", tiny_recipe, db, ray_cluster, shared_data,
                     tmp_path, "--max-trials", "6", "--seed", "3")
    assert main(args) == 0
    study = _study(db, "hbert-tiny")
    trials = study.get_trials()
    assert len(trials) == 6
    assert [(t.user_attrs["origin"], t.user_attrs["layout"]) for t in trials[:4]] == SEEDS
    assert {t.user_attrs["origin"] for t in trials[4:]} == {"sampler"}
    for t in trials:
        assert t.state == TrialState.COMPLETE, t.user_attrs.get("reason")
        assert len(t.values) == 2 and 0.0 <= t.values[0] <= 1.0 and t.values[1] > 0
        assert TRIAL_ATTRS <= set(t.user_attrs), TRIAL_ATTRS - set(t.user_attrs)
        # The latency objective is the cost table's prediction; the measured one is kept beside it.
        assert t.values == [t.user_attrs["mean_accuracy"], t.user_attrs["latency_ms_predicted"]]
        assert t.user_attrs["latency_ms"] > 0 and t.user_attrs["charge"] == "cost-model"
        assert t.user_attrs["space"] == "hbert" and t.user_attrs["recipe"] == "tiny"
        assert (Path(t.user_attrs["artifacts_dir"]) / "result.json").is_file()
    assert study.metric_names == ["mean_accuracy", "latency_ms"]
    attrs = study.user_attrs
    for key in ("space", "recipe", "recipe_hash", "objective", "sampler", "seed", "cost_ledger", "hardware"):
        assert key in attrs, key
    assert attrs["latency_objective"] == "predicted" and f"cost_table:{trials[0].user_attrs['recipe_hash']}" in attrs
    assert (attrs["space"], attrs["recipe"], attrs["objective"], attrs["sampler"], attrs["seed"]) == (
        "hbert", "tiny", "mean", "tpe", 3)
    ledger = json.loads(attrs["cost_ledger"])
    assert len(ledger["trials"]) == 6 and ledger["total"]["cpu_seconds"] > 0
    assert ledger["runs"][0]["stop_reason"] == "max trials reached (6)"

    # Running the same command again continues the study: nothing new is trained or queued.
    assert main(args) == 0
    assert len(_study(db, "hbert-tiny").get_trials()) == 6

    capsys.readouterr()
    assert main(["status", "--storage", str(db)]) == 0
    out = capsys.readouterr().out
    for _, layout in SEEDS:
        assert layout in out
    assert "complete 6" in out and "*" in out and "CPU-h" in out


def test_missing_data_is_refused_before_work_and_a_run_with_no_result_exits_1(
        repo_root, ray_cluster, shared_data, tmp_path, capsys):
    space = repo_root / "search_spaces" / "hbert.yaml"
    db = tmp_path / "f.db"
    # Data a trial would refuse: the driver refuses it first, and writes nothing.
    bad_data = write_recipe(tmp_path / "nodata.yaml", "nodata", **{"corpus.local_dir": "no-such-corpus"})
    assert main(_run_args(space, bad_data, db, ray_cluster, shared_data, tmp_path, "--max-trials", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-corpus" in err[0], err
    assert not db.exists() and not (tmp_path / "art").exists()
    # A layout whose training diverges: recorded, and the run says it produced no result.
    diverge = write_recipe(tmp_path / "diverge.yaml", "diverge", **{"pretrain.lr": 1.0e6})
    assert main(_run_args(space, diverge, db, ray_cluster, shared_data, tmp_path, "--max-trials", "1")) == 1
    assert "no trial completed" in capsys.readouterr().out
    dispatched = lambda name: [t for t in _study(db, name).get_trials() if t.user_attrs.get("dispatched")]  # noqa: E731
    diverged = dispatched("hbert-diverge")
    assert [t.state for t in diverged] == [TrialState.PRUNED]
    for t in diverged:
        assert t.user_attrs["outcome"] == "diverged" and t.user_attrs["reason"].startswith("diverged: ")
        assert t.constraints == {"hsearch_infeasible": 1.0}


def test_budget_no_trial_starts_that_cannot_finish(repo_root, tiny_recipe, ray_cluster, shared_data, tmp_path):
    db = tmp_path / "b.db"
    budget = 25.0
    t0 = time.time()
    assert main(_run_args(repo_root / "search_spaces" / "hbert.yaml", tiny_recipe, db, ray_cluster, shared_data,
                          tmp_path, "--budget", "25s", "--trial-overhead", "6")) == 0
    elapsed = time.time() - t0
    study = _study(db, "hbert-tiny")
    ledger = json.loads(study.user_attrs["cost_ledger"])
    run = ledger["runs"][-1]
    # The deadline, plus the 10 s a running trial gets to stop by itself, plus recording.
    assert run["seconds"] <= budget + 10 + 8
    assert elapsed <= budget + 45  # includes joining Ray and loading torch in this process
    assert run["stop_reason"].startswith(("time left", "budget spent"))
    started = datetime.strptime(run["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    dispatched = [t for t in study.get_trials() if t.user_attrs.get("dispatched")]
    assert dispatched
    for t in dispatched:
        # Every trial started only when its estimated time still fitted in the budget.
        start = t.datetime_start.timestamp()  # Optuna stores naive local time
        assert start + t.user_attrs["estimate_seconds"] <= started + budget + 1.5
        assert t.state in (TrialState.COMPLETE, TrialState.FAIL)


def test_deadline_cancels_a_running_trial(repo_root, ray_cluster, shared_data, tmp_path):
    # A step budget far beyond the run budget, with an overhead guess that lets it start. The run
    # budget also pays for opening the study and the cost table (9 s on a slow CI machine), so it
    # leaves room for that before the first trial.
    long = write_recipe(tmp_path / "long.yaml", "long", **{"pretrain.budget": "1000000 steps"})
    db = tmp_path / "c.db"
    budget = 30
    t0 = time.time()
    assert main(_run_args(repo_root / "search_spaces" / "hbert.yaml", long, db, ray_cluster, shared_data,
                          tmp_path, "--budget", f"{budget}s", "--trial-overhead", "1", "--max-trials", "1")) == 1
    assert time.time() - t0 < budget + 10 + 8 + 30
    trials = _study(db, "hbert-long").get_trials()
    (t,) = [t for t in trials if t.user_attrs.get("dispatched")]
    assert t.state == TrialState.FAIL and t.user_attrs["outcome"] == "cancelled"
    assert t.user_attrs["reason"].startswith("cancelled")
    assert not counts_toward_max(t)
    # Queued again, ahead of the remaining seeds, for the next run.
    (again,) = [r for r in trials if r.user_attrs.get("retry_of") == t.number]
    assert again.state == TrialState.WAITING and again.params == t.params


def test_bad_inputs_one_line_error_study_untouched(repo_root, tiny_recipe, shared_data, tmp_path, capsys):
    db = tmp_path / "u.db"
    storage = f"sqlite:///{db}"
    study = optuna.create_study(storage=storage, study_name="hbert-tiny", directions=["maximize", "minimize"])
    hbert = str(repo_root / "search_spaces" / "hbert.yaml")
    for key, value in {"objective": "mean", "space": "hbert", "space_file": hbert, "recipe": "tiny"}.items():
        study.set_user_attr(key, value)
    study.add_trial(optuna.create_trial(values=[0.5, 2.0], user_attrs={"layout": "SSSSSSSSSSSS:post"}))
    before = [(t.number, t.state, t.values, t.user_attrs) for t in study.get_trials()], dict(study.user_attrs)

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: x\nkind: [S\n")
    bad_kind = tmp_path / "kind.yaml"
    bad_kind.write_text("name: k\nnum_layers: 2\nkind: {choices: [S, Q]}\nnorm: {choices: [sub]}\n")
    no_seed = tmp_path / "seed.yaml"
    no_seed.write_text("name: s\nnum_layers: 12\nkind: {choices: [S, A]}\nnorm: {choices: [sub], per_layer: false}\n"
                       "seeds: [bert-base]\n")
    extended = str(repo_root / "search_spaces" / "extended.yaml")
    other_recipe = write_recipe(tmp_path / "other.yaml", "other")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    dead = f"127.0.0.1:{free_port()}"
    cases = [
        (["--space", str(bad_yaml)], [str(bad_yaml), "not valid YAML"]),
        (["--space", str(bad_kind)], ["unknown value 'Q' (allowed: S, A, L)"]),
        (["--space", str(no_seed)], ["seed 'bert-base' cannot be expressed", "allowed: sub"]),
        (["--space", hbert, "--budget", "5 parsecs"], ["cannot parse duration '5 parsecs'"]),
        (["--space", hbert, "--storage", f"postgresql+psycopg://u:secret@127.0.0.1:{free_port()}/x"],
         ["cannot open storage", "u:***@"]),
        (["--space", hbert, "--address", dead], [f"--address {dead}", "no Ray cluster"]),
        (["--space", hbert, "--objective", "mlm"], ["made with objective 'mean', not 'mlm'"]),
        (["--space", extended, "--study", "hbert-tiny"], ["made with space 'hbert'", f"--space {hbert}"]),
        (["--space", hbert, "--recipe", str(other_recipe), "--study", "hbert-tiny"],
         ["made with recipe 'tiny', not 'other'"]),
        (["--space", hbert, "--budget", "200M"], ["--budget 200M", "'M' is not a time unit"]),
        (["--space", hbert, "--budget", "0s"], ["must be positive"]),
        (["--space", hbert, "--budget", "5s"], ["--budget 5s: shorter than one trial of recipe tiny"]),
        (["--space", hbert, "--set", "pretrain.budget=1K"], ["pretrain.budget", "too small to take one step"]),
        (["--space", hbert, "--artifacts", str(a_file)], [f"--artifacts {a_file}", "not a folder"]),
        (["--space", hbert, "--storage", "mysql://u:secret@127.0.0.1/x"], ["driver for 'mysql'", "PyMySQL"]),
    ]
    for extra, expected in cases:
        args = ["run", "--data-dir", str(shared_data), *extra]
        if "--recipe" not in extra:
            args += ["--recipe", str(tiny_recipe)]
        if "--storage" not in extra:
            args += ["--storage", storage]
        capsys.readouterr()
        assert main(args) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("hsearch run: error: "), err
        for text in expected:
            assert text in err[0], (text, err[0])
        assert "secret" not in err[0]
    # A run that fails at the Ray step leaves no new SQLite file behind.
    fresh = tmp_path / "fresh.db"
    assert main(["run", "--recipe", str(tiny_recipe), "--data-dir", str(shared_data), "--space", hbert,
                 "--storage", str(fresh), "--address", dead]) == 2
    assert "no Ray cluster" in capsys.readouterr().err and not fresh.exists()
    # status only reads: a mistyped SQLite path is refused, not created empty.
    typo = tmp_path / "typo.db"
    assert main(["status", "--storage", str(typo)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(typo) in err[0] and "not found" in err[0] and not typo.exists()
    study = optuna.load_study(study_name="hbert-tiny", storage=storage)
    after = [(t.number, t.state, t.values, t.user_attrs) for t in study.get_trials()], dict(study.user_attrs)
    assert after == before
