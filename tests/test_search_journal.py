"""Journal storage (``journal://FILE``): a study on an Optuna journal file, as used by machines
that share a file system but run no database server."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import optuna
import pytest
from fixtures_dashboard import dashboard, get_json
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from hsearch.cli import main
from hsearch.search.study import (
    HsearchJournalStorage,
    StudyError,
    existing_storage_url,
    load_existing_study,
    make_storage,
    open_study,
    record_result,
    set_finished_trial_attrs,
    sqlite_file,
)
from hsearch.trial.result import TaskScore, TrialResult


def _complete(layout: str, acc: float, lat: float) -> TrialResult:
    task = TaskScore("emotion", "validation", "test", acc, 0.01, acc, 0.0, 6, 100, seeds=[0, 1])
    return TrialResult(status="complete", layout=layout, recipe_name="r", recipe_hash="h", seed=0,
                       mean_accuracy=acc, latency_ms=lat, tasks={"emotion": task}, hardware={"device_name": "cpu"})


def test_journal_round_trip_in_a_fresh_process(tmp_path):
    path = tmp_path / "study.log"
    url = f"journal://{path}"  # journal:///abs/... : an absolute path
    assert sqlite_file(url) == str(path)
    storage = make_storage(url)
    assert isinstance(storage, HsearchJournalStorage)
    study = open_study(storage, "j", objective="mean", sampler="random", seed=0)
    for layout, acc, lat in (("SSSS:post", 0.6, 3.0), ("AAAA:post", 0.5, 1.0), ("SASA:sub", 0.4, 2.0)):
        t = study.ask()
        assert record_result(study, t, _complete(layout, acc, lat), "mean") == TrialState.COMPLETE
    t = study.ask()
    record_result(study, t, TrialResult(status="diverged", layout="LLLL:pre", recipe_name="r", recipe_hash="h",
                                        seed=0, error="loss nan"), "mean")
    # attrs on a finished trial: Optuna's journal ignores those updates; hsearch keeps them on the study
    set_finished_trial_attrs(study, 0, {"reeval_seeds": 3, "skipped": None})
    set_finished_trial_attrs(study, 0, {"reeval_mean_accuracy_mean": 0.58})
    code = (
        "import json, sys\n"
        "from hsearch.search.study import load_existing_study, front_numbers\n"
        "s = load_existing_study(sys.argv[1], None)\n"
        "ts = s.get_trials()\n"
        "print(json.dumps({'name': s.study_name, 'metrics': s.metric_names, 'objective': s.user_attrs['objective'],"
        " 'states': [t.state.name for t in ts], 'values': [t.values for t in ts],"
        " 'layouts': [t.user_attrs['layout'] for t in ts], 'front': sorted(front_numbers(ts, s)),"
        " 'first': {k: v for k, v in ts[0].user_attrs.items() if k.startswith('reeval') or k == 'skipped'},"
        " 'one': s._storage.get_trial(ts[0]._trial_id).user_attrs.get('reeval_seeds'),"
        " 'reason': ts[3].user_attrs['reason']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(out.stdout)
    assert got["name"] == "j" and got["metrics"] == ["mean_accuracy", "latency_ms"] and got["objective"] == "mean"
    assert got["states"] == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"]
    assert got["values"][:3] == [[0.6, 3.0], [0.5, 1.0], [0.4, 2.0]]
    assert got["layouts"] == ["SSSS:post", "AAAA:post", "SASA:sub", "LLLL:pre"]
    assert got["front"] == [0, 1]
    assert got["first"] == {"reeval_seeds": 3, "reeval_mean_accuracy_mean": 0.58} and got["one"] == 3
    assert got["reason"].startswith("diverged: loss nan")
    # a plain Optuna reader opens the same file (the late attrs sit in the study's system attrs)
    plain = optuna.load_study(study_name="j", storage=JournalStorage(JournalFileBackend(str(path))))
    assert len(plain.trials) == 4 and "reeval_seeds" not in plain.trials[0].user_attrs


def test_journal_heartbeats_fail_and_retry_stale_trials(tmp_path):
    storage = make_storage(f"journal://{tmp_path / 'hb.log'}", heartbeat_interval=1, grace_period=1)
    study = open_study(storage, "hb", sampler="random", seed=0)
    silent = study.ask()  # never beat: not stale (as with Optuna's RDB storage)
    lost = study.ask()
    lost.suggest_categorical("x", ["a", "b"])
    storage.record_heartbeat(lost._trial_id)
    optuna.storages.fail_stale_trials(study)
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING, TrialState.RUNNING]
    time.sleep(1.3)
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.FAIL, TrialState.WAITING]
    assert trials[2].user_attrs == {"origin": f"retry:{lost.number}", "retry_of": lost.number}
    assert trials[2].params == trials[1].params
    storage.record_heartbeat(lost._trial_id)  # finished meanwhile: ignored, as RDB does
    study.tell(silent, [0.1, 1.0])


def _optuna_study(path) -> None:
    """A small study built with Optuna alone, as another tool might have written it."""
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(str(path))), study_name="plain",
                                directions=["maximize", "minimize"])
    study.set_metric_names(["mean_accuracy", "latency_ms"])
    for layout, acc, lat in (("SSSS:post", 0.61, 3.5), ("AAAA:post", 0.52, 1.25), ("SASA:sub", 0.43, 2.75)):
        study.add_trial(optuna.trial.create_trial(
            values=[acc, lat], user_attrs={"layout": layout, "mean_accuracy": acc, "latency_ms": lat,
                                           "outcome": "complete", "origin": "sampler"}))
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={
        "layout": "LLLL:pre", "outcome": "oom", "reason": "oom: CUDA out of memory"}))


def test_read_only_commands_on_a_journal_file(tmp_path, capsys):
    path = tmp_path / "plain.log"
    _optuna_study(path)
    url = f"journal://{path}"
    assert main(["status", "--storage", url]) == 0
    out = capsys.readouterr().out
    for text in ("SSSS:post", "AAAA:post", "SASA:sub", "LLLL:pre", "0.61", "oom"):
        assert text in out, (text, out)
    assert main(["pareto", "--storage", url, "--format", "json"]) == 0
    front = json.loads(capsys.readouterr().out)
    layouts = {row["layout"] for row in (front["front"] if isinstance(front, dict) else front)}
    assert layouts == {"SSSS:post", "AAAA:post"}


def test_journal_errors_are_one_line_and_create_no_file(tmp_path, capsys):
    missing = tmp_path / "missing.log"
    rc = main(["status", "--storage", f"journal://{missing}"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and f"journal file {missing} not found" in err
    with pytest.raises(StudyError, match="journal file .*missing.log not found"):
        load_existing_study(f"journal://{missing}", None)
    with pytest.raises(StudyError, match="journal file"):
        existing_storage_url(f"journal://{missing}")
    assert not missing.exists()

    cases = {
        "journal://": "a journal storage is journal:// and a file path",
        f"journal://{tmp_path}/": "a journal storage is journal:// and a file path",
        f"journal://{tmp_path / 'no' / 'dir' / 'x.log'}": "folder .*dir does not exist",
        f"journal://{tmp_path}/x.log?lock=open": "a journal storage is journal:// and a file path",
    }
    (tmp_path / "folder.log").mkdir()
    cases[f"journal://{tmp_path / 'folder.log'}"] = "is a folder, not a journal file"
    db = tmp_path / "real.db"
    open_study(f"sqlite:///{db}", "s")
    cases[f"journal://{db}"] = "is a SQLite database, not a journal file: use --storage sqlite:///"
    junk = tmp_path / "junk.log"
    junk.write_text("this is not a journal\n")
    cases[f"journal://{junk}"] = "is not an Optuna journal file"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for url, message in cases.items():
        with pytest.raises(StudyError, match=message) as exc:
            make_storage(url)
        assert "\n" not in str(exc.value), url
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing created
    # `hsearch run` refuses a journal file in a missing folder before any work (no Ray, no file)
    rc = main(["run", "--storage", f"journal://{tmp_path / 'no' / 'x.log'}", "--budget", "1s"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "does not exist (create it first)" in err, err
    assert not (tmp_path / "no").exists()

    # a bare path becomes sqlite:///PATH: a journal file there gets a hint, not SQLite's error
    plain = tmp_path / "plain.log"
    _optuna_study(plain)
    rc = main(["status", "--storage", str(plain)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert f"is an Optuna journal file, not SQLite: use --storage journal://{plain}" in err


def test_run_then_status_on_a_journal_file(repo_root, tiny_recipe, ray_cluster, shared_data, tmp_path, capsys):
    """`hsearch run` on a journal file: heartbeats, results and the re-evaluation's attrs on
    finished trials, then `hsearch status` reads it back."""
    log = tmp_path / "run.log"
    url = f"journal://{log}"
    args = ["run", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(tiny_recipe),
            "--storage", url, "--address", ray_cluster.address, "--data-dir", str(shared_data),
            "--artifacts", str(tmp_path / "art"), "--max-trials", "2", "--budget", "20m",
            "--reevaluate-seeds", "1", "--heartbeat", "2"]
    assert main(args) == 0
    capsys.readouterr()
    study = load_existing_study(url, None)
    trials = study.get_trials()
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == 2, [(t.state, t.user_attrs.get("reason")) for t in trials]
    assert all(t.system_attrs.get("hsearch:heartbeat") for t in done)  # the driver beat through the journal
    assert any("reeval_seeds" in t.user_attrs for t in done), [sorted(t.user_attrs) for t in done]
    assert main(["status", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert all(t.user_attrs["layout"] in out for t in done)
    assert main(["report", "--storage", url, "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.md").is_file()


def test_dashboard_on_a_journal_file(tmp_path):
    """`hsearch dashboard --storage journal://...` serves the study, with hsearch's notes and the
    attrs added to finished trials."""
    log = tmp_path / "d.log"
    url = f"journal://{log}"
    study = open_study(url, "dash", objective="mean", sampler="random", seed=0)
    t = study.ask()
    record_result(study, t, _complete("SASASASASASA:sub", 0.6, 3.0), "mean")
    set_finished_trial_attrs(study, 0, {"reeval_seeds": 3})
    with dashboard("--storage", url) as board:
        (summary,) = get_json(f"{board.api}/studies")["study_summaries"]
        (trial,) = get_json(f"{board.api}/studies/{summary['study_id']}")["trials"]
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert attrs["layout"] == "SASASASASASA:sub" and attrs["reeval_seeds"] == "3"
        assert "| kind | **S** | **A**" in trial["note"]["body"]
