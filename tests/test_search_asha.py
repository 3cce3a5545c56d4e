"""Multi-fidelity `hsearch run` end to end (ASHA over rungs 1/9, 1/3, 1): real rung tasks on the
session's Ray cluster, SQLite; promotions, stopped layouts, state cleanup, the samplers, status."""

from __future__ import annotations

import glob
from pathlib import Path

import optuna
import pytest
from fixtures_search import write_recipe
from optuna.trial import TrialState

from hsearch.cli import main
from hsearch.search import rungs
from hsearch.search.space import load_space

MULTI = {"fidelity.rungs": ["1/9", "1/3", 1], "pretrain.schedule": "wsd", "pretrain.budget": "2s"}


@pytest.fixture(scope="module")
def asha_study(repo_root, ray_cluster, shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("asha")
    recipe = write_recipe(tmp / "multi.yaml", "multi", **MULTI)
    db = tmp / "h.db"
    args = ["run", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(recipe),
            "--storage", f"sqlite:///{db}", "--address", ray_cluster.address, "--data-dir", str(shared_data),
            "--artifacts", str(tmp / "art"), "--max-trials", "9", "--sampler", "random", "--seed", "0",
            "--budget", "30m", "--reevaluate-share", "0"]
    assert main(args) == 0
    return optuna.load_study(study_name="hbert-multi", storage=f"sqlite:///{db}"), tmp, args


def test_asha_promotes_by_rung_and_stops_the_rest(asha_study):
    study, tmp, _ = asha_study
    trials = study.get_trials()
    assert len(trials) == 9 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), \
        [(t.number, t.state, t.user_attrs.get("reason")) for t in trials]
    at = {r: [t for t in trials if rungs.key(r, "score") in t.user_attrs] for r in range(3)}
    # Every layout scored rung 0; the final top third of rung 0 went up (ASHA may also have promoted
    # a layout that led early), and the top third of those reached the top.
    assert len(at[0]) == 9
    assert len(at[1]) >= 3 and len(at[2]) >= 1
    steps = {r: {t.user_attrs[rungs.key(r, "steps")] for t in at[r]} for r in range(3)}
    assert all(len(v) >= 1 for v in steps.values())
    # Each rung's layouts scored on MLM accuracy below the top, the objective at the top.
    for t in at[0]:
        assert t.user_attrs[rungs.key(0, "score")] == t.user_attrs[rungs.key(0, "mlm_accuracy")]
        assert t.user_attrs[rungs.key(0, "latency_ms")] == t.user_attrs["latency_ms_predicted"]
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert t.user_attrs["fidelity_state"] == rungs.TOP and t.user_attrs["rung"] == 2
            assert t.values == [t.user_attrs["mean_accuracy"], t.user_attrs["latency_ms_predicted"]]
            assert t.user_attrs[rungs.key(2, "score")] == t.values[0]
            # A layout's cost is the sum over its rungs.
            total = sum(t.user_attrs[rungs.key(r, "wall_seconds")] for r in range(3))
            assert t.user_attrs["wall_seconds"] == pytest.approx(total, abs=0.01)
            assert t.user_attrs[rungs.key(1, "steps")] < t.user_attrs[rungs.key(2, "steps")] == t.user_attrs[
                "optimizer_steps"]
        else:
            assert t.user_attrs["fidelity_state"] == rungs.STOPPED
            assert t.user_attrs["stopped_at_rung"] in (0, 1) and t.values is None
            assert rungs.key(t.user_attrs["stopped_at_rung"] + 1, "score") not in t.user_attrs
    # No trunk state is left once the run has ended.
    assert glob.glob(str(tmp / "art" / "**" / "*.pt"), recursive=True) == []


def test_stopped_layouts_rank_below_the_top_for_the_samplers(asha_study, repo_root):
    study, _, _ = asha_study
    trials = study.get_trials()
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert t.constraints == {"hsearch_infeasible": 0.0}
        else:  # graded: top rung minus the rung reached, plus the place in that rung (< 1)
            grade = t.constraints["hsearch_infeasible"]
            assert 2 - t.user_attrs["stopped_at_rung"] <= grade < 3 - t.user_attrs["stopped_at_rung"]
    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    for sampler in (optuna.samplers.TPESampler(seed=0, multivariate=True, n_startup_trials=2),
                    optuna.samplers.NSGAIISampler(seed=0, population_size=4)):
        s = optuna.load_study(study_name=study.study_name, storage=study._storage, sampler=sampler)
        for _ in range(6):
            trial = s.ask()
            layout = space.layout(space.suggest(trial))
            assert len(str(layout).split(":")[0]) == 12
            s.tell(trial, state=TrialState.FAIL)


def test_status_shows_the_rungs_and_their_rank_correlation(asha_study, capsys):
    study, tmp, args = asha_study
    capsys.readouterr()
    assert main(["status", "--storage", args[args.index("--storage") + 1]]) == 0
    out = capsys.readouterr().out
    assert "rung 0 (0.111 of the budget): 9 layout(s)" in out
    assert "rung 2 (1 of the budget)" in out
