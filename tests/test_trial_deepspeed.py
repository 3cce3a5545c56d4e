"""The DeepSpeed ZeRO-2 engine, in one CPU process, trains exactly as the plain torch engine does."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("deepspeed")

from hsearch.trial import load_recipe, run_trial  # noqa: E402


def _run(engine, shared_data, tmp_path):
    recipe = load_recipe("cpu-small", {
        "model.hidden_size": 32, "model.num_attention_heads": 2, "model.intermediate_size": 64,
        "pretrain.batch_size": 8, "pretrain.seq_len": 32, "pretrain.budget": "4 steps",
        "pretrain.engine": engine, "pretrain.deepspeed.zero_stage": 2, "pretrain.precision": "fp32",
        "pretrain.schedule": "linear", "fidelity.rungs": [1],  # WSD resumes torch optimiser state only
        "corpus.max_tokens": 20000, "corpus.eval_blocks": 8, "tokenizer.train.max_documents": 30,
        "tokenizer.train.vocab_size": 600, "finetune.tasks": {}, "latency.enabled": False,
    })
    updates = []
    result = run_trial("hbert-v1", recipe, data_dir=shared_data, device="cpu", progress=updates.append)
    assert result.status == "complete", result.error
    # Step -> loss as reported (the first step, every 0.5 s, and the last: which middle steps
    # are reported depends on the clock).
    losses = {u["step"]: u["loss"] for u in updates if u.get("phase") == "pretrain" and "loss" in u}
    return result, losses


@pytest.mark.slow
def test_deepspeed_zero2_trains_like_the_torch_engine(shared_data, tmp_path, monkeypatch):
    # Any JIT extension DeepSpeed builds goes under /tmp, not the home directory.
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "torch-extensions"))
    monkeypatch.setenv("HSEARCH_CACHE", str(tmp_path / "cache"))
    ds, ds_losses = _run("deepspeed", shared_data, tmp_path)
    assert ds.hardware["engine"] == "deepspeed-zero2"
    assert ds.optimizer_steps == 4 and ds.tokens_seen == 4 * 8 * 32

    import torch.distributed as dist

    assert not dist.is_initialized()  # the trial cleaned up the process group it created

    torch_run, torch_losses = _run("torch", shared_data, tmp_path)
    assert torch_run.hardware["engine"] == "torch"
    # Same seed, same batches and masks, same fp32 AdamW and gradient clipping: ZeRO-2 on one
    # process only partitions (here: flattens) the optimiser state, so the two runs differ by
    # float32 summation order (~1e-7 relative per step). A different batch, masking, LR or a
    # missing step moves these losses by more than 1e-2, so 1e-4 separates the two cases.
    assert {1, 4} <= set(ds_losses) and {1, 4} <= set(torch_losses)  # step 1 and the final step
    assert all(math.isfinite(v) for v in ds_losses.values())
    for step in set(ds_losses) & set(torch_losses):
        assert ds_losses[step] == pytest.approx(torch_losses[step], rel=1e-4), step
    assert ds.mlm_loss == pytest.approx(torch_run.mlm_loss, rel=1e-4)
    assert ds.mlm_accuracy == pytest.approx(torch_run.mlm_accuracy, abs=1e-9)
