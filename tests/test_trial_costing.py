"""The cost table measured for real on tiny models, the cache, and trials charged on it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hsearch.layout import Layout
from hsearch.trial import load_recipe, run_trial
from hsearch.trial import costing

TINY = {"model.hidden_size": 32, "model.num_attention_heads": 2, "model.intermediate_size": 64,
        "model.local_window": 8, "pretrain.batch_size": 8, "pretrain.seq_len": 32, "corpus.max_tokens": 20000,
        "corpus.eval_blocks": 8, "tokenizer.train.max_documents": 30, "tokenizer.train.vocab_size": 600,
        "latency.runs": 5, "latency.seq_len": 32, "pretrain.charge": "cost-model", "pretrain.budget": "2s"}
VARIANTS = ["S/post", "A/post", "S/sub", "A/sub", "L/pre"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HSEARCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_table_predicts_exact_parameter_counts_and_is_measured_once(shared_data, cache, monkeypatch):
    from hsearch.data import prepare_corpus
    from hsearch.model import HybridBertForMaskedLM
    from hsearch.trial.runner import model_config

    recipe = load_recipe("cpu-small", {**TINY, "finetune.tasks": {}})
    table = costing.cost_table(recipe, num_layers=4, variants=VARIANTS, data_dir=shared_data)
    # Each variant at depth 1 and 4, and each pre/sub one alternating with a post layer.
    assert len(table.probes) == 2 * len(VARIANTS) + 3 and table.seconds > 0
    assert all(p.step_seconds > 0 and p.latency_ms > 0 for p in table.probes)
    tokenizer = prepare_corpus(recipe.corpus, recipe.tokenizer, 32, data_dir=shared_data).tokenizer
    # Layouts no probe had: mixed kinds, mixed norms, exit norms in the middle.
    for text in ("S/post A/sub L/pre S/sub", "A/sub A/sub S/post L/pre", "SASA:sub"):
        model = HybridBertForMaskedLM(model_config(recipe, Layout.parse(text), {}, tokenizer))
        assert table.predict(text).params == sum(p.numel() for p in model.parameters()), text

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(costing, "measure_probes", no_measuring)
    again = costing.cost_table(recipe, num_layers=4, variants=VARIANTS, data_dir=shared_data)
    assert again == table  # from the cache
    assert costing.cost_table(recipe, num_layers=4, variants=VARIANTS, data_dir=shared_data, known=table,
                              cache=False) is table
    other = load_recipe("cpu-small", {**TINY, "finetune.tasks": {}, "pretrain.batch_size": 4})
    with pytest.raises(AssertionError, match="measured again"):  # another shape: another table
        costing.cost_table(other, num_layers=4, variants=VARIANTS, data_dir=shared_data)


def _burn() -> subprocess.Popen:
    """Load both CPUs while a trial runs, as another trial or a test would."""
    code = "import multiprocessing as m, time\n" \
           "def spin():\n    t=time.time()\n    while time.time()-t<60: pass\n" \
           "if __name__=='__main__':\n    ps=[m.Process(target=spin) for _ in range(2)]\n" \
           "    [p.start() for p in ps]; [p.join() for p in ps]\n"
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_trial_charged_on_the_cost_model_repeats_exactly_on_a_loaded_machine(shared_data, cache):
    recipe = load_recipe("cpu-small", {
        **TINY, "finetune.tasks": {"emotion": {"max_train_examples": 64, "epochs": 1}},
        "finetune.max_eval_examples": 64})
    first = run_trial("S/sub A/sub L/pre S/post", recipe, data_dir=shared_data)
    assert first.status == "complete", first.error
    burner = _burn()
    try:
        second = run_trial("S/sub A/sub L/pre S/post", recipe, data_dir=shared_data)
    finally:
        burner.kill()
    assert first.charge == second.charge == "cost-model"
    assert first.optimizer_steps == second.optimizer_steps > 1
    for key in ("mlm_accuracy", "mlm_loss", "mean_accuracy", "latency_ms_predicted", "step_seconds_predicted"):
        assert getattr(first, key) == getattr(second, key), key  # bit-identical, not close
    assert first.tasks["emotion"].score_per_seed == second.tasks["emotion"].score_per_seed
    # The 2 s budget buys whole predicted steps: as many as fit, and not one more.
    step = first.step_seconds_predicted
    assert first.optimizer_steps * step <= 2.0 < (first.optimizer_steps + 1) * step


def test_wall_clock_charge_keeps_the_clock():
    assert load_recipe("paper").pretrain.charge == "wall-clock"
    assert load_recipe("cpu-small").pretrain.charge == "cost-model"
    assert load_recipe("gpu-short").pretrain.charge == "cost-model"
