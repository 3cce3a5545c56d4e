"""MLM metric, masking and the budget-fraction LR schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsearch.trial.mlm import IGNORE, evaluate_mlm, mask_tokens, mlm_accuracy, mlm_counts
from hsearch.trial.optim import lr_factor


def test_mlm_accuracy_on_a_fixed_batch_equals_a_hand_computation():
    # 2 sequences x 4 positions, vocab 5; targets at 4 positions
    labels = torch.tensor([[IGNORE, 3, IGNORE, 1], [2, IGNORE, IGNORE, 4]])
    logits = torch.zeros(2, 4, 5)
    logits[0, 1, 3] = 5.0  # right
    logits[0, 3, 2] = 5.0  # wrong (predicts 2, gold 1)
    logits[1, 0, 2] = 5.0  # right
    logits[1, 3, 0] = 5.0  # wrong
    logits[0, 0, 4] = 9.0  # off-target positions never count
    logits[1, 1, 1] = 9.0
    assert mlm_counts(logits, labels) == (2, 4)
    assert mlm_accuracy(logits, labels) == 0.5
    # the model's sparse form: rows in row-major order of the targets
    sparse = logits[labels != IGNORE]
    assert sparse.shape == (4, 5)
    assert mlm_accuracy(sparse, labels) == 0.5


def test_evaluate_mlm_matches_hand_computation_with_the_model():
    from hsearch.model import HybridBertConfig, HybridBertForMaskedLM

    class Tok:
        pad_token_id, unk_token_id, cls_token_id, sep_token_id, mask_token_id = 0, 1, 2, 3, 4

    torch.manual_seed(0)
    cfg = HybridBertConfig.from_layout("SA:sub", vocab_size=50, hidden_size=16, num_attention_heads=2,
                                       intermediate_size=32, max_position_embeddings=16)
    model = HybridBertForMaskedLM(cfg).eval()
    blocks = np.random.default_rng(0).integers(5, 50, size=(6, 12)).astype(np.uint16)
    blocks[:, 0], blocks[:, -1] = 2, 3
    acc, loss = evaluate_mlm(model, blocks, Tok(), rate=0.3, batch_size=4, device=torch.device("cpu"),
                             autocast_dtype=None, seed=7)
    # by hand: same masking stream, dense logits, argmax at the targets
    gen = torch.Generator().manual_seed(7)
    correct = total = 0
    nll = 0.0
    for start in (0, 4):
        ids = torch.from_numpy(blocks[start:start + 4].astype(np.int64))
        inputs, labels = mask_tokens(ids, rate=0.3, mask_id=4, vocab_size=50, special_ids=[0, 1, 2, 3, 4],
                                     generator=gen)
        with torch.no_grad():
            logits = model(input_ids=inputs).logits
        target = labels != IGNORE
        correct += int((logits.argmax(-1)[target] == labels[target]).sum())
        total += int(target.sum())
        nll += float(torch.nn.functional.cross_entropy(logits[target], labels[target], reduction="sum"))
    assert total > 0
    assert acc == pytest.approx(correct / total)
    assert loss == pytest.approx(nll / total, rel=1e-4)


def test_masking_never_touches_special_tokens_and_hits_the_rate():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (64, 128))
    ids[:, 0], ids[:, -1] = 2, 3
    inputs, labels = mask_tokens(ids, rate=0.15, mask_id=4, vocab_size=1000, special_ids=[0, 1, 2, 3, 4],
                                 generator=gen)
    target = labels != IGNORE
    assert not target[:, 0].any() and not target[:, -1].any()
    assert 0.13 < target.float().mean() < 0.17
    assert torch.equal(labels[target], ids[target])
    masked = (inputs == 4) & target
    assert 0.75 < masked.sum() / target.sum() < 0.85
    assert torch.equal(inputs[~target], ids[~target])


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedule_warms_up_then_reaches_zero_at_the_end_of_the_budget(schedule):
    assert lr_factor(0.0, warmup=0.1, schedule=schedule) == 0.0
    assert lr_factor(0.05, warmup=0.1, schedule=schedule) == pytest.approx(0.5)
    assert lr_factor(0.1, warmup=0.1, schedule=schedule) == pytest.approx(1.0)
    values = [lr_factor(f, warmup=0.1, schedule=schedule) for f in np.linspace(0.1, 1.0, 50)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert lr_factor(1.0, warmup=0.1, schedule=schedule) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0.99, warmup=0.1, schedule=schedule) < 0.02
