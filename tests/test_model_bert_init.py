"""init_from_bert: a vanilla layout reproduces BERT exactly; hybrids copy what matches."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertModel

from hsearch.model import ConfigError, HybridBertForMaskedLM, HybridBertModel, init_from_bert
from _model_helpers import VOCAB, batch, randomise_, tiny_config

LAYERS = 3


def _bert(**overrides) -> BertForMaskedLM:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=64, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, **overrides)
    return randomise_(BertForMaskedLM(cfg)).eval()


def _vanilla(**overrides) -> HybridBertForMaskedLM:
    cfg = tiny_config("S" * LAYERS + ":post", hidden_act="gelu", position_embedding="learned",
                      ffn_bias=True, attention_bias=True, **overrides)
    return HybridBertForMaskedLM(cfg).eval()


@pytest.mark.parametrize("padded", [False, True])
def test_vanilla_layout_reproduces_bert(padded):
    bert, ours = _bert(), _vanilla()
    report = init_from_bert(ours, bert)
    assert report.fresh == [] and report.unused == [] and report.copied_fraction == 1.0
    ids, mask = batch(seed=1)
    if not padded:
        mask = torch.ones_like(mask)
    types = torch.randint(0, 2, ids.shape)
    with torch.no_grad():
        ref = bert(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
        got = ours(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    real = mask.bool()
    assert len(got.hidden_states) == len(ref.hidden_states) == LAYERS + 1
    for mine, theirs in zip(got.hidden_states, ref.hidden_states):
        torch.testing.assert_close(mine[real], theirs[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(got.logits[real], ref.logits[real], atol=1e-5, rtol=0)

    # Sparse head: logits only at labelled positions, row-major, same loss as BERT's dense one.
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 1], labels[0, 7], labels[2, 0] = 5, 9, 11, 2
    with torch.no_grad():
        ref_l = bert(ids, attention_mask=mask, token_type_ids=types, labels=labels)
        got_l = ours(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    assert got_l.logits.shape == (4, VOCAB)
    torch.testing.assert_close(got_l.logits, ref_l.logits[labels != -100], atol=1e-5, rtol=0)
    torch.testing.assert_close(got_l.loss, ref_l.loss, atol=1e-5, rtol=0)


def test_bert_model_with_pooler_into_base_model():
    bert = BertModel(_bert().config)  # a BertModel, with its pooler
    randomise_(bert).eval()
    ours = HybridBertModel(tiny_config("S" * LAYERS + ":post")).eval()
    report = init_from_bert(ours, bert)
    assert report.fresh == [] and "pooler.dense.weight" in report.copied
    ids, mask = batch(seed=2)
    with torch.no_grad():
        got, ref = ours(ids, attention_mask=mask), bert(ids, attention_mask=mask)
    torch.testing.assert_close(got.last_hidden_state[mask.bool()], ref.last_hidden_state[mask.bool()], atol=1e-5, rtol=0)
    torch.testing.assert_close(got.pooler_output, ref.pooler_output, atol=1e-5, rtol=0)


def test_hybrid_copies_matching_parts_only():
    bert = _bert()
    ours = HybridBertForMaskedLM(tiny_config("S/post A/post L/sub", position_embedding="sinusoidal"))
    before = {n: p.detach().clone() for n, p in ours.named_parameters()}
    report = init_from_bert(ours, bert)
    src = dict(bert.named_parameters())
    params = dict(ours.named_parameters())
    # S (layer 0) and L (layer 2): fused qkv = concat(query, key, value).
    for i in (0, 2):
        expected = torch.cat([src[f"bert.encoder.layer.{i}.attention.self.{n}.weight"] for n in ("query", "key", "value")])
        assert torch.equal(params[f"bert.encoder.layer.{i}.attention.qkv.weight"], expected)
        assert f"bert.encoder.layer.{i}.attention.out.weight" in report.copied
    # FFNs of every layer, A included.
    for i in range(LAYERS):
        assert torch.equal(params[f"bert.encoder.layer.{i}.ffn.fc1.weight"], src[f"bert.encoder.layer.{i}.intermediate.dense.weight"])
    # Post layers' norms copied; the sub layer's norms and the A layer's attention stay fresh.
    assert "bert.encoder.layer.1.attention_norm.weight" in report.copied
    fresh = set(report.fresh)
    for name in ("bert.encoder.layer.1.attention.qkv.weight", "bert.encoder.layer.1.attention.query_score",
                 "bert.encoder.layer.2.attention_norm.weight", "bert.encoder.layer.2.attention.norm.weight",
                 "bert.encoder.layer.2.ffn.norm.weight", "bert.encoder.layer.2.exit_norm.weight"):
        assert name in fresh and torch.equal(params[name], before[name]), name
    assert "bert.embeddings.position_embeddings.weight" in report.unused
    assert any("sinusoidal" in note for note in report.notes)
    assert 0.0 < report.copied_fraction < 1.0 and "copied" in report.summary()


def test_dimension_mismatch_is_an_error():
    with pytest.raises(ConfigError, match="hidden_size differs"):
        init_from_bert(HybridBertForMaskedLM(tiny_config("SSS:post", hidden_size=64)), _bert())
    with pytest.raises(ConfigError, match="2 layers, BERT 3"):
        init_from_bert(HybridBertForMaskedLM(tiny_config("SS:post")), _bert())
