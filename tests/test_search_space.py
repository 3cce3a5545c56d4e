"""Search space files: parameters, seeds, constraints, and errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hsearch.layout import Layout
from hsearch.search.space import SpaceError, load_space


def test_hbert_space_params_and_seeds(repo_root):
    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    assert space.name == "hbert" and space.num_layers == 12
    assert space.param_names() == [f"layer_{i:02d}_kind" for i in range(12)] + ["norm"]
    assert [s.label for s in space.seeds] == ["bert-base", "addbert", "hbert-v1", "hbert-v2"]
    v2 = space.seeds[3]
    assert str(v2.layout) == "SSAAAAAAAASS:sub"
    assert v2.params["norm"] == "sub" and v2.params["layer_02_kind"] == "A"
    # Params -> layout round trip, and a bare name finds the shipped file.
    assert space.layout(v2.params) == v2.layout
    assert Path(load_space("hbert").path).resolve() == Path(space.path).resolve()


def test_extended_space_globals_constraints(repo_root):
    space = load_space(repo_root / "search_spaces" / "extended.yaml")
    names = space.param_names()
    assert "layer_11_norm" in names and "hidden_act" in names and "ffn_bias" in names
    seed = next(s for s in space.seeds if s.label == "hbert-v1")
    # The preset's own options fill the globals of the same name.
    assert seed.params["hidden_act"] == "relu" and seed.params["ffn_bias"] is False
    assert space.overrides(seed.params) == {"model.hidden_act": "relu", "model.ffn_bias": False}
    assert space.violations(Layout.parse("AAAAAAAAAAAA:pre")) == [
        "at least 1 S layer(s) required, layout has 0"
    ]
    assert space.violations(Layout.parse("S/pre A/sub L/post " + "A/pre " * 9)) == []
    # A sampled trial gets one categorical per parameter, with the space's choices.
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = space.suggest(trial)
    assert set(params) == set(names)
    assert trial.distributions["layer_05_kind"].choices == ("S", "A", "L")
    mixed = space.layout(params)
    assert mixed.num_layers == 12 and set(mixed.kinds) <= {"S", "A", "L"}


def _write(tmp_path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


BASE = "name: t\nnum_layers: 4\nkind: {choices: [S, A], per_layer: true}\nnorm: {choices: [sub], per_layer: false}\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: [unclosed\n", "not valid YAML"),
        (BASE.replace("[S, A]", "[S, X]"), "unknown value 'X' (allowed: S, A, L)"),
        (BASE + "seeds: [bert-base]\n", "seed 'bert-base' cannot be expressed by this space"),
        (BASE + "seeds: [SSSS:post]\n", "layer 0 uses 'post', not in this space (allowed: sub)"),
        (BASE + "seeds: [SALA:sub]\n", "layer 2 uses 'L', not in this space (allowed: S, A)"),
        (BASE + "constraints: {min_count: {S: 2}}\nseeds: [SAAA:sub]\n", "breaks the space's constraints"),
        (BASE + "colour: red\n", "unknown key 'colour'"),
        (BASE.replace("num_layers: 4", "num_layers: zero"), "num_layers must be an integer"),
        (BASE + "globals: {hidden_act: {choices: [gelu]}}\n", "recipe_key"),
        (BASE + "constraints: {min_count: {L: 1}}\n", "kind 'L' is not searched (allowed: S, A)"),
    ],
)
def test_bad_space_files_name_file_and_key(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(SpaceError) as err:
        load_space(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_missing_space_file(tmp_path):
    with pytest.raises(SpaceError, match="not found"):
        load_space(tmp_path / "nope.yaml")
