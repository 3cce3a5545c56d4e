"""Every norm placement (post, pre, sub), pure and mixed, against a literal reference.

The reference below is written from the definitions in ``hsearch.model.layers`` (and
DESIGN.md) with plain torch ops, one layer at a time, reading the weights by parameter name:

  post  x = LN(x + f(x))                   pre  x = x + f(LN(x))
  sub   x = x + f(LN(x)) where f has an inner LN before its last linear
  a pre/sub layer that is last, or followed by a post layer, ends with an exit LN.

Attention is explicit softmax attention (not SDPA) for ``S``/``L`` and Fastformer's
equations for ``A``. Hidden states of every layer are compared at fp32 within 1e-5.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hsearch.layout import Layout
from hsearch.model import HybridBertModel
from _model_helpers import batch, randomise_, tiny_config

LAYOUTS = [
    "SAL:post", "SAL:pre", "SAL:sub",
    "S/pre A/sub S/post",
    "A/post S/sub L/pre A/pre",
    "S/post A/pre L/sub S/sub A/post L/pre",
]


def _ln(x, p, name, eps):
    return F.layer_norm(x, (x.shape[-1],), p[f"{name}.weight"], p[f"{name}.bias"], eps)


def _linear(x, p, name):
    return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]


def _softmax_attention(x, p, pre, heads, allowed):
    """``allowed[b, i, j]``: query i may attend to key j."""
    b, t, h = x.shape
    d = h // heads
    qkv = _linear(x, p, f"{pre}.qkv")
    q, k, v = (qkv[..., i * h:(i + 1) * h].reshape(b, t, heads, d).transpose(1, 2) for i in range(3))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, h)
    return ctx


def _additive_attention(x, p, pre, heads, real):
    b, t, h = x.shape
    d = h // heads
    qkv = _linear(x, p, f"{pre}.qkv")
    q, k, v = (qkv[..., i * h:(i + 1) * h].reshape(b, t, heads, d) for i in range(3))
    neg = torch.finfo(x.dtype).min
    a_scores = (q * p[f"{pre}.query_score"]).sum(-1) / math.sqrt(d)  # [b, t, heads]
    alpha = a_scores.masked_fill(~real[..., None], neg).softmax(1)
    q_glob = (alpha[..., None] * q).sum(1)  # [b, heads, d]
    pk = q_glob[:, None] * k
    b_scores = (pk * p[f"{pre}.key_score"]).sum(-1) / math.sqrt(d)
    beta = b_scores.masked_fill(~real[..., None], neg).softmax(1)
    k_glob = (beta[..., None] * pk).sum(1)
    u = (k_glob[:, None] * v).reshape(b, t, h)
    return _linear(u, p, f"{pre}.transform") + q.reshape(b, t, h)


@torch.no_grad()
def _reference_states(model, ids, mask):
    cfg = model.config
    p = dict(model.named_parameters())
    eps, heads = cfg.layer_norm_eps, cfg.num_attention_heads
    real = mask.bool()
    b, t = ids.shape
    pos = torch.arange(t)
    x = p["embeddings.word_embeddings.weight"][ids] + p["embeddings.position_embeddings.weight"][:t] \
        + p["embeddings.token_type_embeddings.weight"][0]
    x = _ln(x, p, "embeddings.LayerNorm", eps)
    states = [x]
    layout = Layout.parse(cfg.layout)
    kinds, norms = layout.kinds, layout.norms
    for i, (kind, norm) in enumerate(zip(kinds, norms)):
        pre = f"encoder.layer.{i}"
        sub = norm == "sub"

        def attention(y):
            if kind == "A":
                r = _additive_attention(y, p, f"{pre}.attention", heads, real)
            else:
                allowed = real[:, None, :].expand(b, t, t)
                if kind == "L":
                    band = (pos[None, :] - pos[:, None]).abs() <= cfg.local_window // 2
                    allowed = (allowed & band) | torch.eye(t, dtype=torch.bool)
                r = _softmax_attention(y, p, f"{pre}.attention", heads, allowed)
            if sub:
                r = _ln(r, p, f"{pre}.attention.norm", eps)
            return _linear(r, p, f"{pre}.attention.out")

        def ffn(y):
            y = F.gelu(_linear(y, p, f"{pre}.ffn.fc1"))
            if sub:
                y = _ln(y, p, f"{pre}.ffn.norm", eps)
            return _linear(y, p, f"{pre}.ffn.fc2")

        if norm == "post":
            x = _ln(x + attention(x), p, f"{pre}.attention_norm", eps)
            x = _ln(x + ffn(x), p, f"{pre}.ffn_norm", eps)
        else:
            x = x + attention(_ln(x, p, f"{pre}.attention_norm", eps))
            x = x + ffn(_ln(x, p, f"{pre}.ffn_norm", eps))
            if i == len(kinds) - 1 or norms[i + 1] == "post":
                x = _ln(x, p, f"{pre}.exit_norm", eps)
        states.append(x)
    return states


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("padded", [False, True])
def test_hidden_states_match_the_literal_reference(layout, padded):
    torch.manual_seed(0)
    model = randomise_(HybridBertModel(tiny_config(layout, local_window=4)), std=0.2).eval()
    ids, mask = batch(b=3, t=12, seed=1)
    if not padded:
        mask = torch.ones_like(mask)
    with torch.no_grad():
        out = model(ids, attention_mask=mask, output_hidden_states=True)
    ref = _reference_states(model, ids, mask)
    assert len(out.hidden_states) == len(ref) == Layout.parse(layout).num_layers + 1
    real = mask.bool()
    for i, (got, want) in enumerate(zip(out.hidden_states, ref)):
        # Padding positions' outputs are unspecified; every real position must match.
        torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=0, msg=lambda m: f"state {i}: {m}")
    torch.testing.assert_close(out.last_hidden_state[real], ref[-1][real], atol=1e-5, rtol=0)


def test_exit_norms_sit_where_the_rule_puts_them():
    model = HybridBertModel(tiny_config("S/pre A/sub S/post L/sub"))
    assert [layer.exit_norm is not None for layer in model.encoder.layer] == [False, True, False, True]
