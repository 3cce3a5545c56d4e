"""The DeepSpeed ZeRO-2 engine runs a few optimiser steps on the CPU, in one process."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("deepspeed")

from hsearch.trial import load_recipe, run_trial  # noqa: E402


@pytest.mark.slow
def test_deepspeed_zero2_runs_steps_on_cpu(shared_data, tmp_path, monkeypatch):
    # Any JIT extension DeepSpeed builds goes under /tmp, not the home directory.
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "torch-extensions"))
    monkeypatch.setenv("HSEARCH_CACHE", str(tmp_path / "cache"))
    recipe = load_recipe("cpu-small", {
        "model.hidden_size": 32, "model.num_attention_heads": 2, "model.intermediate_size": 64,
        "pretrain.batch_size": 8, "pretrain.seq_len": 32, "pretrain.budget": "4 steps",
        "pretrain.engine": "deepspeed", "pretrain.deepspeed.zero_stage": 2,
        "corpus.max_tokens": 20000, "corpus.eval_blocks": 8, "tokenizer.train.max_documents": 30,
        "tokenizer.train.vocab_size": 600, "finetune.tasks": {}, "latency.enabled": False,
    })
    updates = []
    result = run_trial("hbert-v1", recipe, data_dir=shared_data, progress=updates.append)
    assert result.status == "complete", result.error
    assert result.hardware["engine"] == "deepspeed-zero2"
    assert result.optimizer_steps == 4 and result.tokens_seen == 4 * 8 * 32
    losses = [u["loss"] for u in updates if u.get("phase") == "pretrain" and "loss" in u]
    assert losses and all(math.isfinite(loss) for loss in losses)
    assert 0.0 <= result.mlm_accuracy <= 1.0

    import torch.distributed as dist

    assert not dist.is_initialized()  # the trial cleaned up the process group it created
