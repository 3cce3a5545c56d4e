"""Trial recipes: the bundled files validate; bad keys, types and values are one-line errors."""

from __future__ import annotations

import pytest
import yaml

from hsearch.budget import Budget
from hsearch.errors import HsearchError
from hsearch.trial import load_recipe
from hsearch.trial.recipe import RecipeError


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    assert isinstance(exc.value, HsearchError)
    return text


@pytest.mark.parametrize("name", ["paper", "gpu-short", "cpu-small", "paper-init"])
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


def test_paper_init_recipe_is_table_3(repo_root):
    """§4.4 / Table 3: the paper's settings, every layout starting from bert-base-uncased."""
    from hsearch.trial.recipe import resolve_recipe

    r, paper = load_recipe("paper-init"), load_recipe("paper")
    assert r.model.init_from == "bert-base-uncased" and paper.model.init_from is None
    assert r.tokenizer.name == "bert-base-uncased" and r.tokenizer.train is None  # the checkpoint's vocabulary
    assert r.pretrain.budget.amount == 24 * 3600  # Table 3's 1-day column (--budget 48h for 2 days)
    assert {k: v for k, v in r.to_dict().items() if k not in ("name", "description", "model")} == \
        {k: v for k, v in paper.to_dict().items() if k not in ("name", "description", "model")}
    assert [p.name for p in resolve_recipe("paper-init").chain] == ["paper-init.yaml", "paper.yaml"]


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


# --------------------------------------------------------------------------- inheritance (base:)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_child_merges_into_its_base(tmp_path):
    base = load_recipe("cpu-small")
    child = _write(tmp_path / "mine.yaml", (
        "base: cpu-small\n"
        "name: mine\n"
        "corpus:\n  files: [my-corpus.txt]\n"            # a mapping merges: the other corpus keys stay
        "pretrain:\n  budget: 30s\n  betas: [0.8, 0.9]\n"  # a list replaces
        "finetune:\n  tasks:\n    emotion: {epochs: 1}\n    massive: null\n"  # null removes a base task
        "    mine: {files: {train: a.jsonl, validation: b.jsonl, test: c.jsonl}}\n"
    ))
    r = load_recipe(child)
    assert r.name == "mine" and r.path == str(child)
    assert r.description == base.description and r.model == base.model and r.tokenizer == base.tokenizer
    assert r.corpus.files == ["my-corpus.txt"] and r.corpus.max_tokens == base.corpus.max_tokens
    assert r.pretrain.budget.text == "30s" and r.pretrain.betas == [0.8, 0.9]
    assert r.pretrain.lr == base.pretrain.lr and r.pretrain.charge == base.pretrain.charge
    assert sorted(r.finetune.tasks) == ["emotion", "mine"]
    assert r.finetune.tasks["emotion"].epochs == 1 and r.finetune.lr == base.finetune.lr
    assert r.hash != base.hash


def test_child_equal_to_its_base_has_the_base_hash(tmp_path):
    same = _write(tmp_path / "same.yaml", "base: cpu-small\nname: cpu-small\n")
    assert load_recipe(same).hash == load_recipe("cpu-small").hash
    # ... and the same hash as the resolved recipe written out flat
    flat = _write(tmp_path / "flat.yaml", yaml.safe_dump(load_recipe(same).to_dict()))
    assert load_recipe(flat).hash == load_recipe("cpu-small").hash
    # the own name is content: another name, another hash
    assert load_recipe(_write(tmp_path / "other.yaml", "base: cpu-small\nname: other\n")).hash \
        != load_recipe("cpu-small").hash


def test_chain_of_bases_with_relative_paths(tmp_path, monkeypatch):
    _write(tmp_path / "lib" / "narrow.yaml", "base: cpu-small\nname: narrow\nmodel: {hidden_size: 32}\n")
    _write(tmp_path / "lib" / "short.yaml", "base: narrow.yaml\nname: short\npretrain: {budget: 10s}\n")
    top = _write(tmp_path / "runs" / "top.yaml", "base: ../lib/short.yaml\nname: top\npretrain: {lr: 1.0e-3}\n")
    monkeypatch.chdir(tmp_path / "runs")  # relative bases follow the file, not the working folder
    from hsearch.trial.recipe import resolve_recipe

    chain = resolve_recipe(top).chain
    assert [p.name for p in chain] == ["top.yaml", "short.yaml", "narrow.yaml", "cpu-small.yaml"]
    r = load_recipe(top)
    assert (r.name, r.model.hidden_size, r.pretrain.budget.text, r.pretrain.lr) == ("top", 32, "10s", 1e-3)
    assert r.model.intermediate_size == load_recipe("cpu-small").model.intermediate_size


def test_bases_in_a_cycle_are_one_line_naming_the_files(tmp_path):
    a = _write(tmp_path / "a.yaml", "base: b.yaml\nname: a\n")
    b = _write(tmp_path / "b.yaml", "base: ./a.yaml\nname: b\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(a)
    text = _one_line(exc)
    assert "cycle" in text and str(a) in text and str(b) in text
    me = _write(tmp_path / "me.yaml", "base: me.yaml\nname: me\n")
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(me)


def test_child_needs_its_own_name(tmp_path):
    child = _write(tmp_path / "nameless.yaml", "base: cpu-small\npretrain: {budget: 10s}\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(child)
    text = _one_line(exc)
    assert str(child) in text and "'name'" in text


def test_unknown_key_in_a_child_or_a_base_names_that_file(tmp_path):
    child = _write(tmp_path / "child.yaml", "base: cpu-small\nname: c\npretrain:\n  learning_rate: 0.1\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(child)
    text = _one_line(exc)
    assert str(child) in text and "'pretrain.learning_rate'" in text and "cpu-small" not in text
    base = _write(tmp_path / "base.yaml", "name: base\nmodel: {width: 3}\n")
    child2 = _write(tmp_path / "child2.yaml", "base: base.yaml\nname: c2\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(child2)
    text = _one_line(exc)
    assert str(base) in text and "'model.width'" in text and str(child2) not in text
    wrong = _write(tmp_path / "wrong.yaml", "base: cpu-small\nname: w\npretrain: {batch_size: lots}\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(wrong)
    assert str(wrong) in _one_line(exc) and "pretrain.batch_size" in str(exc.value)


def test_overrides_apply_after_the_bases(tmp_path):
    child = _write(tmp_path / "c.yaml", "base: cpu-small\nname: c\npretrain: {budget: 30s}\n")
    r = load_recipe(child, {"pretrain.lr": "5e-4", "model.hidden_size": 32})
    assert (r.pretrain.lr, r.model.hidden_size, r.pretrain.budget.text) == (5e-4, 32, "30s")
    assert r.model.intermediate_size == 256 and r.path == str(child)
    assert r.hash == load_recipe("cpu-small", {"name": "c", "pretrain.budget": "30s", "pretrain.lr": 5e-4,
                                               "model.hidden_size": 32}).hash
    with pytest.raises(RecipeError) as exc:  # a combination the merged recipe refuses names the child
        load_recipe(child, {"pretrain.seq_len": 4096})
    assert str(child) in _one_line(exc) and "max_position_embeddings" in str(exc.value)


def test_bad_bases_are_one_line_errors(tmp_path):
    for text, expected in [("base: no-such-recipe\nname: x\n", "not a built-in recipe"),
                           ("base: missing.yaml\nname: x\n", "not found"),
                           ("base: [cpu-small]\nname: x\n", "key 'base' must be"),
                           ("base: ''\nname: x\n", "key 'base' must be")]:
        child = _write(tmp_path / "x.yaml", text)
        with pytest.raises(RecipeError) as exc:
            load_recipe(child)
        message = _one_line(exc)
        assert expected in message and str(child) in message, message
    assert "cpu-small" in message and "gpu-short" in message  # the built-in names are listed


def test_a_bare_base_name_is_the_built_in_not_dot_trials(tmp_path, monkeypatch):
    """./trials/cpu-small.yaml shadows the name on the command line, never in a base: a file
    resolves the same wherever it is loaded from (and cannot name itself)."""
    _write(tmp_path / "trials" / "cpu-small.yaml", "base: cpu-small\nname: cpu-small\nmodel: {hidden_size: 32}\n")
    child = _write(tmp_path / "elsewhere" / "c.yaml", "base: cpu-small\nname: cpu-small\n")
    builtin = load_recipe("cpu-small")
    monkeypatch.chdir(tmp_path)
    assert load_recipe("cpu-small").model.hidden_size == 32  # the user's own, by name
    assert load_recipe(child).hash == builtin.hash


def test_built_ins_come_from_the_package_through_importlib_resources(tmp_path, monkeypatch):
    from importlib import resources

    import hsearch.builtin
    from hsearch.search.space import load_space

    monkeypatch.chdir(tmp_path)  # no trials/ or search_spaces/ here
    package = resources.files("hsearch.builtin")
    assert load_recipe("cpu-small").path == str(package / "trials" / "cpu-small.yaml")
    assert load_space("hbert").path == str(package / "spaces" / "hbert.yaml")
    assert load_space("search_spaces/hbert.yaml").path == str(package / "spaces" / "hbert.yaml")
    # The lookup asks importlib.resources, not a path relative to the source checkout.
    fake = tmp_path / "fake-package"
    _write(fake / "trials" / "only-here.yaml", "name: only-here\ndescription: from the fake package\n")
    _write(fake / "spaces" / "tiny.yaml", (package / "spaces" / "hbert.yaml").read_text()
           .replace("name: hbert", "name: tiny"))
    monkeypatch.setattr(hsearch.builtin.resources, "files", lambda name: fake)
    assert load_recipe("only-here").path == str(fake / "trials" / "only-here.yaml")
    assert load_space("tiny").name == "tiny"
    with pytest.raises(RecipeError, match="only-here"):
        load_recipe("cpu-small")
