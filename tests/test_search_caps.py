"""Caps on the predicted cost: never trained above them, recorded as Optuna constraints; ``plan``."""

from __future__ import annotations

from math import comb

import optuna
from optuna.trial import TrialState

from hsearch.cli import main
from hsearch.layout import Layout


def _params(recipe_path, text: str, shared_data) -> int:
    """A layout's parameter count from the model itself (independent of the cost table)."""
    from hsearch.data import prepare_corpus
    from hsearch.model import HybridBertForMaskedLM
    from hsearch.trial import load_recipe
    from hsearch.trial.runner import model_config

    recipe = load_recipe(recipe_path)
    tok = prepare_corpus(recipe.corpus, recipe.tokenizer, recipe.pretrain.seq_len, data_dir=shared_data).tokenizer
    return sum(p.numel() for p in HybridBertForMaskedLM(model_config(recipe, Layout.parse(text), {}, tok)).parameters())


def test_layouts_over_a_cap_are_never_trained(repo_root, tiny_recipe, ray_cluster, shared_data, tmp_path, capsys):
    db = tmp_path / "caps.db"
    # Every A layer adds parameters: all-S fits, and layouts with up to 3 A layers.
    cap = _params(tiny_recipe, "AAASSSSSSSSS:post", shared_data)
    exact = _params(tiny_recipe, "SSSSSSSSSSSS:post", shared_data)
    assert _params(tiny_recipe, "AAAAAAAAAAAA:post", shared_data) > cap > exact
    args = ["run", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(tiny_recipe),
            "--storage", f"sqlite:///{db}", "--address", ray_cluster.address, "--data-dir", str(shared_data),
            "--artifacts", str(tmp_path / "art"), "--max-trials", "2", "--max-params", str(cap)]
    assert main(args) == 0
    study = optuna.load_study(study_name="hbert-tiny", storage=f"sqlite:///{db}")
    by_origin = {t.user_attrs.get("origin"): t for t in study.get_trials()}
    fits = by_origin["seed:bert-base"]
    assert fits.state == TrialState.COMPLETE and fits.constraints["params_over_cap"] <= 0
    assert fits.user_attrs["params_predicted"] == fits.user_attrs["params"] == exact
    over = by_origin["seed:addbert"]
    assert over.state == TrialState.PRUNED and not over.user_attrs.get("dispatched")
    trained = [t for t in study.get_trials() if t.user_attrs.get("dispatched")]
    assert len(trained) == 2 and all(t.user_attrs["params"] <= cap for t in trained)
    assert over.constraints["params_over_cap"] > 0 and over.user_attrs["outcome"] == "constraint"
    assert "parameters over the cap" in over.user_attrs["reason"]
    capsys.readouterr()
    assert main(["status", "--storage", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"params ≤ {cap:g}" in out and "over the cap" in out


def test_plan_prints_the_table_the_fit_and_the_layouts_within_a_cap(repo_root, tiny_recipe, shared_data, tmp_path,
                                                                   capsys):
    # Parameters grow with every A layer and depend on the norm: count the hbert layouts within
    # a cap from models built for each (norm, number of A layers), combinatorially.
    sizes = {(norm, k): _params(tiny_recipe, "A" * k + "S" * (12 - k) + f":{norm}", shared_data)
             for norm in ("post", "pre", "sub") for k in range(13)}
    cap = sizes[("post", 6)]
    within = sum(comb(12, k) for (norm, k), n in sizes.items() if n <= cap)
    db = tmp_path / "never.db"
    rc = main(["plan", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(tiny_recipe),
               "--budget", "10m", "--data-dir", str(shared_data), "--max-params", str(cap),
               "--trial-overhead", "9"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "space hbert: 12,288 layouts (all costed)" in out
    for label in ("fixed", "S/post", "A/sub", "exit LN", "cheapest", "median", "dearest"):
        assert label in out
    assert f"{within:,} of 12,288 layouts pass" in out
    # tiny's 1 s budget plus 9 s of overhead: 10 s a trial, 2 at a time on 2 CPUs, for the 480 s
    # of the 600 s budget that the search keeps (20% goes to re-evaluating its front).
    assert "about 96 trials" in out
    assert not db.exists()


def test_plan_counts_first_rung_layouts_for_a_multi_fidelity_recipe(repo_root, tiny_recipe, shared_data, capsys):
    # 9 s of overhead per task and tiny's 1 s budget: over rungs 1/9, 1/3, 1 (decay 0.2) a task
    # runs 0.111 s, 0.333 - 0.089 = 0.244 s and 1 - 0.267 = 0.733 s of pretraining. A bracket of
    # 9 + 3 + 1 tasks costs 9 x 9.111 + 3 x 9.244 + 9.733 = 119.5 s; 2 slots x 480 s buy 8.03
    # brackets, 72 layouts at the first rung and 8 at the top.
    rc = main(["plan", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(tiny_recipe),
               "--budget", "10m", "--data-dir", str(shared_data), "--trial-overhead", "9",
               "--set", "fidelity.rungs=[1/9, 1/3, 1]", "--set", "pretrain.schedule=wsd"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "multi-fidelity: rungs 1/9, 1/3, 1" in out
    assert "about 72 layouts at the first rung, 8 at the top" in out
