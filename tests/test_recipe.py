"""Trial recipes: the bundled files validate; bad keys, types and values are one-line errors."""

from __future__ import annotations

import pytest

from hsearch.budget import Budget
from hsearch.errors import HsearchError
from hsearch.trial import load_recipe
from hsearch.trial.recipe import RecipeError


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    assert isinstance(exc.value, HsearchError)
    return text


@pytest.mark.parametrize("name", ["paper", "gpu-short", "cpu-small"])
def test_bundled_recipes_load(name, repo_root):
    recipe = load_recipe(repo_root / "trials" / f"{name}.yaml")
    assert recipe.name == name
    assert isinstance(recipe.pretrain.budget, Budget)
    assert recipe.resources.cpus >= 1
    assert len(recipe.hash) == 16
    # the bare name resolves to the same file and hashes the same
    assert load_recipe(name).hash == recipe.hash


def test_paper_recipe_matches_the_paper(repo_root):
    r = load_recipe(repo_root / "trials" / "paper.yaml")
    assert (r.model.hidden_size, r.model.num_attention_heads, r.model.intermediate_size) == (768, 12, 3072)
    assert (r.pretrain.seq_len, r.pretrain.batch_size, r.pretrain.lr) == (512, 48, 1e-4)
    assert r.pretrain.optimizer == "adam" and r.pretrain.engine == "deepspeed"
    assert r.pretrain.budget.kind == "time" and r.pretrain.budget.amount == 24 * 3600
    assert r.finetune.tasks["emotion"].epochs == 10 and r.finetune.tasks["massive"].epochs == 15
    assert r.finetune.batch_size == 64
    assert (r.latency.threads, r.latency.seq_len, r.latency.device) == (4, 211, "cpu")
    assert r.model.hidden_dropout_prob is None  # dropout comes from the preset


def test_overrides_use_dotted_keys_and_change_the_hash():
    base = load_recipe("cpu-small")
    r = load_recipe("cpu-small", {"pretrain.budget": "5s", "model.hidden_size": 32,
                                  "finetune.tasks.emotion.max_train_examples": 200, "pretrain.lr": "5e-4"})
    assert r.pretrain.budget.amount == 5 and r.model.hidden_size == 32 and r.pretrain.lr == 5e-4
    assert r.finetune.tasks["emotion"].max_train_examples == 200
    assert r.finetune.tasks["massive"] == base.finetune.tasks["massive"]
    assert r.hash != base.hash
    assert load_recipe("cpu-small", {"pretrain.budget": "5s", "model.hidden_size": 32,
                                     "finetune.tasks.emotion.max_train_examples": 200,
                                     "pretrain.lr": 5e-4}).hash == r.hash


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("pretrain:\n  budget: 10s\n  learning_rate: 0.1\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    text = _one_line(exc)
    assert "pretrain.learning_rate" in text and str(path) in text and "lr" in text  # allowed keys listed


def test_wrong_type_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("pretrain:\n  batch_size: lots\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    text = _one_line(exc)
    assert "pretrain.batch_size" in text and str(path) in text and "int" in text


def test_wrong_override_names_key():
    with pytest.raises(RecipeError) as exc:
        load_recipe("cpu-small", {"model.hiden_size": 32})
    assert "model.hiden_size" in _one_line(exc) and "cpu-small.yaml" in str(exc.value)
    with pytest.raises(RecipeError) as exc:
        load_recipe("cpu-small", {"pretrain.engine": "jax"})
    assert "pretrain.engine" in _one_line(exc) and "'deepspeed'" in str(exc.value)


def test_budget_that_does_not_parse(tmp_path):
    with pytest.raises(HsearchError) as exc:
        load_recipe("cpu-small", {"pretrain.budget": "ten minutes"})
    text = _one_line(exc)
    assert "pretrain.budget" in text and "ten minutes" in text


def test_unknown_task_is_rejected():
    with pytest.raises(RecipeError) as exc:
        load_recipe("cpu-small", {"finetune.tasks.sst2": {"epochs": 1}})
    text = _one_line(exc)
    assert "finetune.tasks.sst2" in text and "emotion" in text and "massive" in text


def test_extra_task_with_files_validates(tmp_path):
    r = load_recipe("cpu-small", {"finetune.tasks.mine": {"files": {"train": "a.jsonl", "validation": "b.jsonl",
                                                                      "test": "c.jsonl"}}})
    assert r.finetune.tasks["mine"].files["train"] == "a.jsonl"


def test_value_checks(tmp_path):
    with pytest.raises(RecipeError, match="divisible"):
        load_recipe("cpu-small", {"model.num_attention_heads": 3})
    with pytest.raises(RecipeError, match="max_position_embeddings"):
        load_recipe("cpu-small", {"pretrain.seq_len": 4096})
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")
    with pytest.raises(RecipeError, match="no recipe named"):
        load_recipe("no-such-recipe")
    with pytest.raises(RecipeError) as exc:
        load_recipe("cpu-small", {"finetune.pooling": "max"})
    assert "finetune.pooling" in _one_line(exc) and "'max'" in str(exc.value)


def test_to_dict_round_trips(tmp_path):
    import yaml

    r = load_recipe("gpu-short")
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(r.to_dict()))
    assert load_recipe(path).hash == r.hash


@pytest.mark.parametrize("text", ["", "\n# only a comment\n"])
def test_empty_recipe_is_refused(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    message = _one_line(exc)
    assert str(path) in message and "empty" in message
    with pytest.raises(RecipeError, match="empty"):
        load_recipe(path, {"pretrain.budget": "5s"})


def test_list_recipe_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- model\n- pretrain\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert str(path) in _one_line(exc) and "mapping" in str(exc.value)


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nmodel:\n  hidden_size: 64\n  heads: [2, 4\npretrain:\n  budget: 10s\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    message = _one_line(exc)
    assert str(path) in message and "not valid YAML (line 5)" in message, message
