"""Re-evaluation end to end on the CPU: a short `hsearch run` whose reserved share re-evaluates its
front and seeds, stored values reproduced by `run_trial` itself, then `hsearch reevaluate`."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from hsearch.cli import main
from hsearch.intervals import spread

K = 2  # fine-tuning seeds: enough for an interval, cheap enough for a test


def _study(db) -> optuna.Study:
    return optuna.load_study(study_name="hbert-tiny", storage=f"sqlite:///{db}")


def test_run_reevaluates_its_front_and_run_trial_reproduces_the_stored_seeds(
        repo_root, tiny_recipe, ray_cluster, shared_data, tmp_path, capsys):
    from hsearch.cost.table import CostTable
    from hsearch.trial import run_trial
    from hsearch.trial.recipe import Recipe

    db = tmp_path / "r.db"
    base = ["--storage", f"sqlite:///{db}", "--address", ray_cluster.address, "--data-dir", str(shared_data)]
    assert main(["run", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(tiny_recipe),
                 *base, "--artifacts", str(tmp_path / "art"), "--max-trials", "2", "--budget", "20m",
                 "--reevaluate-share", "0.3", "--reevaluate-seeds", str(K)]) == 0
    assert f"re-evaluated 2 of 2 trial(s) with {K} fine-tuning seed(s)" in capsys.readouterr().out
    study = _study(db)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2  # bert-base and addbert: the front and the seeds
    for t in trials:
        a = t.user_attrs
        assert (a["reeval_seeds"], a["reeval_pretrain_seeds"], a["reeval_unit"]) == (K, 1, "finetune-seed")
        assert a["reeval_same_pretraining"] is True  # the same pretrained model as the trial's
        assert a["reeval_seconds"] > 0 and a["reeval_cpu_seconds"] >= a["reeval_seconds"]
        for metric in ("mean_accuracy", "emotion_accuracy", "massive_accuracy", "latency_ms"):
            values = a[f"reeval_{metric}_per_seed"]
            assert len(values) == K
            s = spread(values)
            assert a[f"reeval_{metric}_mean"] == s.mean and a[f"reeval_{metric}_n"] == K
            assert a[f"reeval_{metric}_std"] == s.std and a[f"reeval_{metric}_ci95"] == list(s.ci95)
        assert all(v > 0 for v in a["reeval_latency_ms_per_seed"])
        # the first fine-tuning seed is the trial's own fine-tuning, from the same checkpoint
        assert a["reeval_emotion_accuracy_per_seed"][0] == a["emotion_accuracy"]
        assert a["reeval_massive_accuracy_per_seed"][0] == a["massive_accuracy"]
    log = json.loads(study.user_attrs["reevaluations"])
    assert log[-1]["seeds"] == K and sorted(log[-1]["done"]) == sorted(t.number for t in trials)
    assert json.loads(study.user_attrs["cost_ledger"])["runs"][-1]["reevaluated"]

    # The same trial run again, in this process, with run_trial itself: the same per-seed values.
    t = trials[0]
    h = t.user_attrs["recipe_hash"]
    recipe = Recipe.from_dict(json.loads(study.user_attrs[f"recipe:{h}"]))
    assert recipe.hash == h
    again = run_trial(t.user_attrs["layout"], recipe.with_overrides({"finetune.seeds": K}), data_dir=shared_data,
                      cost_table=CostTable.from_json(study.user_attrs[f"cost_table:{h}"]))
    assert again.ok, again.error
    a = t.user_attrs
    assert again.optimizer_steps == a["optimizer_steps"] and again.mlm_accuracy == a["mlm_accuracy"]
    for name in ("emotion", "massive"):
        assert again.tasks[name].score_per_seed == a[f"reeval_{name}_accuracy_per_seed"]
        assert again.tasks[name].report_per_seed == a[f"reeval_{name}_test_accuracy_per_seed"]
    per_seed_mean = [sum(again.tasks[n].score_per_seed[i] for n in ("emotion", "massive")) / 2 for i in range(K)]
    assert per_seed_mean == a["reeval_mean_accuracy_per_seed"]

    # `hsearch reevaluate`: two pretraining seeds for the best front member only.
    best = max(trials, key=lambda t: (t.values[0], -t.number))
    args = ["reevaluate", *base, "--top", "1", "--no-seed-layouts", "--seeds", str(K), "--pretrain-seeds", "2"]
    assert main(args) == 0
    assert "re-evaluated 1 of 1 trial(s) with 2 fine-tuning seed(s) x 2 pretraining seed(s)" in capsys.readouterr().out
    b = _study(db).trials[best.number].user_attrs
    assert (b["reeval_pretrain_seeds"], b["reeval_unit"], b["reeval_mean_accuracy_n"]) == (2, "pretrain-seed", 2)
    values = b["reeval_emotion_accuracy_per_seed"]
    assert len(values) == 2 * K
    assert values[:K] == best.user_attrs["reeval_emotion_accuracy_per_seed"]  # pretraining seed s: as before
    assert [r["pretrain_seed"] for r in json.loads(b["reeval_runs"])] == [best.user_attrs["seed"],
                                                                         best.user_attrs["seed"] + 1]
    # Asked again: nothing to do, no Ray started, nothing changed.
    assert main(args) == 0
    assert "1 already re-evaluated with these seeds" in capsys.readouterr().out
    assert _study(db).trials[best.number].user_attrs == b

    # The front with intervals: every re-evaluated trial in `pareto`, and `status` marks them.
    assert main(["pareto", "--storage", f"sqlite:///{db}", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["trial"] for d in data["reevaluated"]} == {t.number for t in trials}
    assert data["robust_front"]
    assert main(["status", "--storage", f"sqlite:///{db}"]) == 0
    assert "robust" in capsys.readouterr().out


def test_reevaluate_bad_inputs_are_one_line_errors(tmp_path, capsys):
    missing = tmp_path / "none.db"
    for args, text in (
        (["--storage", str(missing)], "not found"),
        (["--storage", str(missing), "--seeds", "0"], "--seeds 0"),
        (["--storage", str(missing), "--pretrain-seeds", "0"], "--pretrain-seeds 0"),
        (["--storage", str(missing), "--top", "0"], "--top 0"),
        (["--storage", str(missing), "--budget", "5 parsecs"], "cannot parse duration"),
    ):
        assert main(["reevaluate", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("hsearch reevaluate: error: ") and text in err[0], err
    assert not missing.exists()
    assert main(["run", "--reevaluate-share", "1", "--budget", "1h"]) == 2
    assert "--reevaluate-share 1" in capsys.readouterr().err


def _finished_attrs_round_trip(url: str) -> None:
    from hsearch.search.study import make_storage, open_study, set_finished_trial_attrs

    study = open_study(url, "finished", objective="mean")
    study.add_trial(optuna.create_trial(values=[0.5, 1.0], user_attrs={"layout": "SSSS:post", "kept": 1}))
    number = study.trials[0].number
    # Optuna itself refuses it; set_finished_trial_attrs writes (and replaces) the rows.
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        study._storage.set_trial_user_attr(study.trials[0]._trial_id, "x", 1)
    set_finished_trial_attrs(study, number, {"reeval_latency_ms_ci95": [1.0, 2.0], "reeval_seeds": 3, "none": None})
    set_finished_trial_attrs(study, number, {"reeval_seeds": 4})
    again = optuna.load_study(study_name="finished", storage=make_storage(url)).trials[0]
    assert again.state == TrialState.COMPLETE and again.values == [0.5, 1.0]
    assert again.user_attrs == {"layout": "SSSS:post", "kept": 1, "reeval_latency_ms_ci95": [1.0, 2.0],
                                "reeval_seeds": 4}


def test_attributes_of_finished_trials_on_sqlite_and_postgresql(pg_server, tmp_path):
    _finished_attrs_round_trip(f"sqlite:///{tmp_path / 'f.db'}")
    _finished_attrs_round_trip(pg_server.url)
