"""run_trial on the CPU, offline: learning, budgets, cache reuse, bad input, divergence."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from hsearch.errors import HsearchError
from hsearch.trial import load_recipe, run_trial
from hsearch.trial.optim import lr_factor

# Tiny and fast: for tests where learning is not the point.
TINY = {
    "model.hidden_size": 32, "model.num_attention_heads": 2, "model.intermediate_size": 64,
    "pretrain.batch_size": 8, "pretrain.seq_len": 32, "pretrain.eval_batch_size": 32,
    "corpus.eval_blocks": 16, "finetune.tasks": {}, "latency.enabled": False,
    "fidelity.rungs": [1],  # one rung (WSD): a few steps cannot hold three
}


def _majority_rate(labels):
    return Counter(labels).most_common(1)[0][1] / len(labels)


def test_cpu_small_end_to_end_learns(shared_data, trial_cache, tmp_path):
    """The learning test: cpu-small for hbert-v2 beats the unigram baseline on held-out MLM and
    the majority class on Emotion (one fine-tuning seed: hbert-v1's stayed on Emotion's
    majority class after 900 and 1,000 steps, within the seed spread analysis/seed-spread shows).

    The budget is a step count, not cpu-small's 120 s, so the verdict does not depend on how
    fast or loaded the machine is: sub-LN layouts need ~900 steps to leave the unigram plateau
    at this width (see docs/cpu-recipe.md). Emotion is
    fine-tuned exactly as cpu-small does; MASSIVE, not asserted here, is cut short for time."""
    recipe = load_recipe("cpu-small", {"pretrain.budget": "900 steps",
                                       "finetune.tasks.massive.max_train_examples": 500,
                                       "finetune.tasks.massive.epochs": 1})
    updates = []
    result = run_trial("hbert-v2", recipe, data_dir=shared_data, out_dir=tmp_path / "t", progress=updates.append)
    assert result.status == "complete", result.error
    assert result.layout == "SSAAAAAAAASS:sub" and result.recipe_hash == recipe.hash
    assert result.optimizer_steps == 900

    # Unigram baseline: always predict the most frequent training token (specials excluded).
    from hsearch.data import prepare_corpus

    corpus = prepare_corpus(recipe.corpus, recipe.tokenizer, recipe.pretrain.seq_len, data_dir=shared_data)
    assert corpus.cache_hit
    specials = {0, 1, 2, 3, 4}
    train_counts = np.bincount(np.asarray(corpus.train).ravel(), minlength=len(corpus.tokenizer))
    train_counts[list(specials)] = 0
    top = int(train_counts.argmax())
    held = np.asarray(corpus.heldout).ravel()
    held = held[~np.isin(held, list(specials))]
    unigram = float((held == top).mean())
    assert result.mlm_accuracy > unigram, (result.mlm_accuracy, unigram)

    # Emotion beats its majority-class rate on the very examples it is scored on.
    from hsearch.trial.finetune import _subset

    val = [json.loads(line)["label"] for line in (shared_data / "emotion" / "validation.jsonl").open()]
    cap = recipe.finetune.max_eval_examples
    majority = _majority_rate([val[i] for i in _subset(len(val), cap)])
    emotion = result.tasks["emotion"]
    assert emotion.num_classes == 6 and emotion.train_examples == 16000
    assert emotion.score_mean > majority, (emotion.score_mean, majority)
    assert set(result.tasks) == {"emotion", "massive"}
    assert result.mean_accuracy == pytest.approx((emotion.score_mean + result.tasks["massive"].score_mean) / 2)
    assert result.latency_ms > 0 and result.latency_path
    p = recipe.pretrain
    assert result.params > 0 and result.tokens_seen == result.optimizer_steps * p.batch_size * p.seq_len
    assert result.hardware["device"] == "cpu" and result.hardware["torch"] and result.hardware["device_name"]
    saved = json.loads((tmp_path / "t" / "result.json").read_text())
    assert saved["mlm_accuracy"] == result.mlm_accuracy
    assert (tmp_path / "t" / "tokenizer" / "tokenizer.json").is_file()
    phases = {u["phase"] for u in updates}
    assert {"data", "pretrain", "eval", "finetune", "latency", "done"} <= phases


def test_time_budget_is_respected_within_one_step(shared_data, trial_cache):
    # Charged on the wall clock (cpu-small's cost-model charge is tested in test_trial_costing).
    recipe = load_recipe("cpu-small", {**TINY, "pretrain.budget": "20s", "pretrain.charge": "wall-clock",
                                       "pretrain.schedule": "linear"})
    updates = []
    result = run_trial("hbert-v2", recipe, data_dir=shared_data, progress=updates.append)
    assert result.status == "complete", result.error
    final = [u for u in updates if u.get("done")][-1]
    assert 20.0 <= result.pretrain_seconds <= 20.0 + final["max_step_seconds"] + 0.05
    assert result.budget_fraction_used == 1.0
    # The last step's LR came from the schedule at the fraction it started at, and the
    # schedule ends at zero exactly when the budget does.
    assert final["lr"] == pytest.approx(recipe.pretrain.lr * lr_factor(final["lr_fraction"], warmup=0.1, schedule="linear"))
    assert final["lr_fraction"] >= 1.0 - final["max_step_seconds"] / 20.0 - 1e-9
    assert final["lr"] <= recipe.pretrain.lr * final["max_step_seconds"] / 20.0 / 0.9 + 1e-12
    # data preparation is not charged against the budget
    assert result.total_seconds >= result.pretrain_seconds + result.data_prep_seconds


def test_second_trial_reuses_the_tokenised_cache(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("HSEARCH_CACHE", str(tmp_path / "cache"))
    overrides = {**TINY, "pretrain.budget": "2 steps", "corpus.max_tokens": 20000,
                 "tokenizer.train.max_documents": 30, "tokenizer.train.vocab_size": 600}
    first = run_trial("bert-base", load_recipe("cpu-small", overrides), data_dir=shared_data)
    assert first.status == "complete" and not first.cache_hit

    import hsearch.data.corpus as corpus_mod

    def no_tokenising(*args, **kwargs):
        raise AssertionError("the second trial re-tokenised the corpus")

    monkeypatch.setattr(corpus_mod._Packer, "add", no_tokenising)
    monkeypatch.setattr("hsearch.data.tokenizer.train_wordpiece", no_tokenising)
    second = run_trial("addbert", load_recipe("cpu-small", overrides), data_dir=shared_data)
    assert second.status == "complete" and second.cache_hit
    assert second.data_prep_seconds < first.data_prep_seconds


def test_bad_inputs_are_one_line_errors_before_training(shared_data, trial_cache, tmp_path):
    def err(**kwargs) -> str:
        kwargs.setdefault("data_dir", shared_data)
        with pytest.raises(HsearchError) as exc:
            run_trial(kwargs.pop("layout", "hbert-v1"), kwargs.pop("recipe", load_recipe("cpu-small", TINY)), **kwargs)
        assert "\n" not in str(exc.value)
        return str(exc.value)

    empty = tmp_path / "empty"
    (empty / "emotion").mkdir(parents=True)
    assert "emotion/train.jsonl" in err(recipe=load_recipe("cpu-small", {"latency.enabled": False}), data_dir=empty)
    assert "data directory" in err(data_dir=tmp_path / "nowhere")
    assert "ten minutes" in err(budget="ten minutes")
    assert "too small to take one step" in err(budget="100 tokens")
    assert "too small to take one step" in err(budget="0.2s")
    with pytest.raises(HsearchError) as exc:  # unknown task: rejected with the recipe
        load_recipe("cpu-small", {"finetune.tasks.sst2": {}})
    assert "finetune.tasks.sst2" in str(exc.value) and "\n" not in str(exc.value)
    assert "SQXA" in err(layout="SQXA:sub")


def test_nan_ends_the_trial_as_diverged(shared_data, trial_cache):
    recipe = load_recipe("cpu-small", {**TINY, "pretrain.budget": "30 steps", "pretrain.lr": 1e30,
                                       "pretrain.warmup": 0.0, "pretrain.grad_clip": None})
    result = run_trial("bert-base", recipe, data_dir=shared_data)
    assert result.status == "diverged"
    assert "nan" in result.error.lower() or "inf" in result.error.lower()
    assert 1 <= result.optimizer_steps < 30 and result.params > 0 and result.mlm_accuracy is None
