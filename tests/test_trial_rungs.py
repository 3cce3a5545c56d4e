"""Multi-fidelity pretraining on the CPU in fp32: a layout trained rung by rung, resuming from saved
state in fresh calls, ends bit-identical to the same layout trained straight to the top rung."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file

from hsearch.errors import HsearchError
from hsearch.trial import load_recipe, run_trial

# 30 steps over rungs 1/9, 1/3, 1 with 20% decay: rungs end at 3, 10, 30 and branch at 2, 8, 24.
# No warm-up, so the one-rung recipe below has the very same top-rung schedule.
WSD = {
    "model.hidden_size": 32, "model.num_attention_heads": 2, "model.intermediate_size": 64,
    "pretrain.batch_size": 8, "pretrain.seq_len": 32, "pretrain.eval_batch_size": 32,
    "pretrain.budget": "30 steps", "pretrain.schedule": "wsd", "pretrain.warmup": 0.0,
    "pretrain.precision": "fp32", "corpus.eval_blocks": 16, "finetune.tasks": {}, "latency.enabled": False,
    "fidelity.rungs": ["1/9", "1/3", 1], "fidelity.decay": 0.2,
}


def _weights(result) -> dict[str, torch.Tensor]:
    return load_file(os.path.join(result.checkpoint_dir, "model.safetensors"))


def test_rung_by_rung_equals_straight_training(shared_data, trial_cache, tmp_path):
    recipe = load_recipe("cpu-small", WSD)
    layout = "hbert-v1"
    straight = run_trial(layout, recipe, data_dir=shared_data, out_dir=tmp_path / "straight", keep_checkpoint=True)
    assert straight.status == "complete", straight.error
    assert [r["steps"] for r in straight.rungs] == [3, 10, 30]
    assert [r["stable_steps"] for r in straight.rungs] == [2, 8, 24]
    assert straight.steps_run == 30 + 1 + 2  # the trunk plus the two lower decay branches

    state = [tmp_path / f"state-{r}.pt" for r in range(3)]
    by_rung = []
    for r in range(3):
        res = run_trial(layout, recipe, data_dir=shared_data, out_dir=tmp_path / f"rung{r}", keep_checkpoint=r == 2,
                        rung=r, resume_state=state[r - 1] if r else None, save_state=state[r])
        assert res.status == "complete", res.error
        by_rung.append(res)
    assert [s.is_file() for s in state] == [True, True, False]  # the top rung leaves nothing to resume
    assert [r.steps_run for r in by_rung] == [3, 10 - 2, 30 - 8]
    # Each rung's score equals the branch the straight run scored on the way.
    for r, res in enumerate(by_rung):
        assert res.rung == r and res.optimizer_steps == straight.rungs[r]["steps"]
        assert res.mlm_accuracy == straight.rungs[r]["mlm_accuracy"]
        assert res.mlm_loss == straight.rungs[r]["mlm_loss"]
    top = by_rung[-1]
    assert (top.mlm_accuracy, top.mlm_loss, top.tokens_seen) == (straight.mlm_accuracy, straight.mlm_loss,
                                                                   straight.tokens_seen)
    a, b = _weights(straight), _weights(top)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)

    # The lower branches leave the trunk untouched: one rung only, same top schedule, same weights.
    single = run_trial(layout, load_recipe("cpu-small", {**WSD, "fidelity.rungs": [1]}), data_dir=shared_data,
                       out_dir=tmp_path / "single", keep_checkpoint=True)
    assert single.steps_run == 30
    c = _weights(single)
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert single.mlm_accuracy == straight.mlm_accuracy


def test_resume_state_is_checked(shared_data, trial_cache, tmp_path):
    recipe = load_recipe("cpu-small", WSD)
    state = tmp_path / "s0.pt"
    run_trial("bert-base", recipe, data_dir=shared_data, rung=0, save_state=state)
    with pytest.raises(HsearchError, match="layout is 'SSSSSSSSSSSS:post'"):
        run_trial("addbert", recipe, data_dir=shared_data, rung=1, resume_state=state)
    with pytest.raises(HsearchError, match="rung is 0, this run needs 1"):
        run_trial("bert-base", recipe, data_dir=shared_data, rung=2, resume_state=state)
    with pytest.raises(HsearchError, match="file not found"):
        run_trial("bert-base", recipe, data_dir=shared_data, rung=1, resume_state=tmp_path / "none.pt")
    with pytest.raises(HsearchError, match="too few for these rungs"):
        run_trial("bert-base", load_recipe("cpu-small", {**WSD, "pretrain.budget": "4 steps"}), data_dir=shared_data)
