"""Gradients reach every parameter for every kind × norm; a few steps reduce the MLM loss."""

from __future__ import annotations

import pytest
import torch

from hsearch.model import HybridBertForMaskedLM, HybridBertForSequenceClassification
from _model_helpers import NORM_LAYOUTS, batch, tiny_config


def _mlm_batch(seed: int):
    ids, mask = batch(b=4, t=12, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    chosen = (torch.rand(ids.shape, generator=gen) < 0.3) & mask.bool()
    chosen[:, 0] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    types = torch.randint(0, 2, ids.shape, generator=gen)
    return ids.masked_fill(chosen, 1), mask, types, labels


@pytest.mark.parametrize("layout", NORM_LAYOUTS)
def test_every_parameter_gets_a_gradient_and_loss_falls(layout):
    torch.manual_seed(0)
    model = HybridBertForMaskedLM(tiny_config(layout, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1))
    ids, mask, types, labels = _mlm_batch(seed=1)
    model.train()
    out = model(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    assert out.logits.shape == (int((labels != -100).sum()), model.config.vocab_size)
    out.loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"{name}: zero or non-finite gradient"

    model.eval()  # fixed batch, no dropout noise in the comparison
    with torch.no_grad():
        first = model(ids, attention_mask=mask, token_type_ids=types, labels=labels).loss.item()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(8):
        opt.zero_grad()
        model(ids, attention_mask=mask, token_type_ids=types, labels=labels).loss.backward()
        opt.step()
    with torch.no_grad():
        last = model(ids, attention_mask=mask, token_type_ids=types, labels=labels).loss.item()
    assert last < first - 0.5, (first, last)


def test_sparse_logits_are_the_dense_logits_at_labelled_positions():
    model = HybridBertForMaskedLM(tiny_config("SAL:sub")).eval()
    ids, mask, types, labels = _mlm_batch(seed=2)
    with torch.no_grad():
        dense = model(ids, attention_mask=mask, token_type_ids=types).logits
        sparse = model(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    torch.testing.assert_close(sparse.logits, dense[labels != -100])
    expected = torch.nn.functional.cross_entropy(dense[labels != -100], labels[labels != -100])
    torch.testing.assert_close(sparse.loss, expected)
    none = model(ids, attention_mask=mask, labels=torch.full_like(ids, -100))
    assert none.logits.shape == (0, model.config.vocab_size) and none.loss.item() == 0.0


def test_classifier_trains():
    torch.manual_seed(0)
    model = HybridBertForSequenceClassification(tiny_config("SA:sub", num_labels=3))
    ids, mask = batch(b=6, t=10, seed=3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = model(ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
