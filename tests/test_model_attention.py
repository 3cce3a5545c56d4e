"""Attention kinds: A against the paper's equations, padding invariance for every kind × norm,
A's linear cost, the L band, sub-LN initialisation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hsearch.model import HybridBertModel
from hsearch.model.attention import AdditiveAttention, AttentionMasks, LocalAttention
from hsearch.model.layers import subln_init_gain
from _model_helpers import NORM_LAYOUTS, VOCAB, ShapeRecorder, batch, randomise_, tiny_config


@torch.no_grad()
def _paper_additive(x, real, att: AdditiveAttention):
    """HybridBERT §3.1 written out literally, one sequence, head and position at a time."""
    heads, d = att.num_heads, att.head_dim
    hdim = heads * d
    wqkv, bqkv = att.qkv.weight, att.qkv.bias
    out = torch.zeros_like(x)
    for b in range(x.shape[0]):
        positions = [i for i in range(x.shape[1]) if real[b, i]]
        q = x[b] @ wqkv[:hdim].T + bqkv[:hdim]
        k = x[b] @ wqkv[hdim:2 * hdim].T + bqkv[hdim:2 * hdim]
        v = x[b] @ wqkv[2 * hdim:].T + bqkv[2 * hdim:]
        u = torch.zeros_like(q)
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            w_q, w_k = att.query_score[h], att.key_score[h]
            e = {i: math.exp(float(w_q @ q[i, sl]) / math.sqrt(d)) for i in positions}
            alpha = {i: e[i] / sum(e.values()) for i in positions}
            q_global = sum(alpha[i] * q[i, sl] for i in positions)
            p = {i: q_global * k[i, sl] for i in positions}
            e = {i: math.exp(float(w_k @ p[i]) / math.sqrt(d)) for i in positions}
            beta = {i: e[i] / sum(e.values()) for i in positions}
            k_global = sum(beta[i] * p[i] for i in positions)
            for i in range(x.shape[1]):
                u[i, sl] = k_global * v[i, sl]
        r = u @ att.transform.weight.T + att.transform.bias + q
        if att.norm is not None:
            r = F.layer_norm(r, (hdim,), att.norm.weight, att.norm.bias, att.norm.eps)
        out[b] = r @ att.out.weight.T + att.out.bias
    return out


@pytest.mark.parametrize("sub", [False, True])
def test_additive_attention_matches_the_paper_equations(sub):
    torch.manual_seed(0)
    att = AdditiveAttention(tiny_config(hidden_size=24, num_attention_heads=3), sub=sub)
    with torch.no_grad():
        for p in att.parameters():
            p.normal_(0.0, 0.4)
    att = att.double().eval()
    x = torch.randn(3, 9, 24, dtype=torch.float64)
    real = torch.ones(3, 9, dtype=torch.bool)
    real[1, 6:] = False
    real[2, 2:] = False
    x[1, 6:] = 1e3  # huge values at padding must still get exactly zero weight
    got = att(x, AttentionMasks.build(real, 9, x.device, None))
    torch.testing.assert_close(got, _paper_additive(x, real, att), atol=1e-6, rtol=0)
    unmasked = att(x[:1], AttentionMasks.build(None, 9, x.device, None))
    torch.testing.assert_close(unmasked, _paper_additive(x[:1], real[:1], att), atol=1e-6, rtol=0)


def test_padding_gets_exactly_zero_pooling_weight():
    scores = torch.randn(2, 5, 3)
    real = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    weights = AdditiveAttention._pool_weights(scores.to(torch.bfloat16), real)
    assert weights.dtype == torch.float32
    assert torch.all(weights[0, 3:] == 0) and torch.allclose(weights.sum(1), torch.ones(2, 3))


def test_additive_attention_never_builds_a_token_by_token_tensor():
    t = 257  # a length no other dimension has
    model = HybridBertModel(tiny_config("AA:sub", max_position_embeddings=300)).eval()
    ids = torch.randint(1, VOCAB, (2, t))
    mask = torch.ones(2, t, dtype=torch.long)
    mask[1, 200:] = 0
    with torch.no_grad(), ShapeRecorder() as rec:
        model(ids, attention_mask=mask)
    assert rec.shapes and all(shape.count(t) <= 1 for shape in rec.shapes)


def test_local_attention_sees_only_its_band():
    cfg = tiny_config(local_window=4)
    att = LocalAttention(cfg).eval()
    x = torch.randn(1, 12, 32)
    masks = AttentionMasks.build(None, 12, x.device, cfg.local_window)
    base = att(x, masks)
    x2 = x.clone()
    x2[0, 9] += 5.0  # position 9 is within ±2 of 7..11 only
    changed = (att(x2, masks) - base).abs().amax(-1)[0] > 1e-6
    assert changed.tolist() == [i in range(7, 12) for i in range(12)]


@pytest.mark.parametrize("layout", NORM_LAYOUTS)
def test_padding_invariance_for_every_kind_and_norm(layout):
    torch.manual_seed(0)
    model = randomise_(HybridBertModel(tiny_config(layout))).eval()
    ids, _ = batch(b=2, t=10, seed=3)
    with torch.no_grad():
        ref = model(ids).last_hidden_state
        for extra in (1, 7):
            junk = torch.randint(1, VOCAB, (2, extra))  # padding with real-looking ids
            padded = torch.cat([ids, junk], dim=1)
            mask = torch.cat([torch.ones_like(ids), torch.zeros_like(junk)], dim=1)
            out = model(padded, attention_mask=mask)
            torch.testing.assert_close(out.last_hidden_state[:, :10], ref, atol=1e-5, rtol=0)
            assert torch.isfinite(out.last_hidden_state).all() and torch.isfinite(out.pooler_output).all()
        # Rows of different real length in one batch agree with each row run alone.
        ids, mask = batch(b=3, t=12, seed=4)
        out = model(ids, attention_mask=mask).last_hidden_state
        for row in range(3):
            n = int(mask[row].sum())
            alone = model(ids[row:row + 1, :n]).last_hidden_state[0]
            torch.testing.assert_close(out[row, :n], alone, atol=1e-5, rtol=0)


def test_sub_ln_init_scales_value_path_only():
    model = HybridBertModel(tiny_config("SA:sub", hidden_size=64, num_attention_heads=4, intermediate_size=128))
    gain = subln_init_gain(2)
    assert gain == pytest.approx(math.sqrt(math.log(4)))
    for layer in model.encoder.layer:
        qkv = layer.attention.qkv.weight
        ratio = (qkv[128:].std() / qkv[:128].std()).item()
        assert ratio == pytest.approx(gain, rel=0.08)
        assert layer.attention.out.weight.std().item() == pytest.approx(0.02 * gain, rel=0.08)
        assert layer.ffn.fc2.weight.std().item() == pytest.approx(0.02 * gain, rel=0.08)
    post = HybridBertModel(tiny_config("SA:post", hidden_size=64, num_attention_heads=4, intermediate_size=128))
    assert post.encoder.layer[0].attention.out.weight.std().item() == pytest.approx(0.02, rel=0.08)
