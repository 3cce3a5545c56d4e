"""``L`` local attention computed block by block against the T×T banded-mask reference.

The reference is written out below with plain torch ops (no SDPA): full attention scores with
a band mask ``|i - j| <= local_window // 2`` and the key padding mask (each token always sees
itself), softmax, values. The blocked implementation must agree with it to 1e-5 in fp32,
padded positions included, and so must the gradients (relative to their largest entry).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hsearch.model import HybridBertModel
from hsearch.model.attention import LOCAL_BLOCK, AttentionMasks, LocalAttention, LocalBlocks
from _model_helpers import ShapeRecorder, VOCAB, randomise_, tiny_config

TOL = dict(atol=1e-5, rtol=0)


def banded_reference(att: LocalAttention, x: torch.Tensor, real: torch.Tensor | None, window: int) -> torch.Tensor:
    """The T×T band-mask attention the ``L`` layer had before it was blocked."""
    b, t, hidden = x.shape
    heads, d = att.num_heads, att.head_dim
    qkv = x @ att.qkv.weight.T + att.qkv.bias
    q, k, v = qkv.view(b, t, 3, heads, d).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)  # [B, heads, T, T]
    pos = torch.arange(t)
    allowed = ((pos[None, :] - pos[:, None]).abs() <= window // 2)[None, None]
    if real is not None:
        allowed = (allowed & real[:, None, None, :]) | torch.eye(t, dtype=torch.bool)
    probs = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
    ctx = (probs @ v).transpose(1, 2).reshape(b, t, hidden)
    if att.norm is not None:
        ctx = F.layer_norm(ctx, (hidden,), att.norm.weight, att.norm.bias, att.norm.eps)
    return ctx @ att.out.weight.T + att.out.bias


def _layer(window: int, heads: int, sub: bool, hidden: int = 24, seed: int = 0) -> LocalAttention:
    torch.manual_seed(seed)
    att = LocalAttention(tiny_config(hidden_size=hidden, num_attention_heads=heads, local_window=window), sub=sub)
    with torch.no_grad():
        for p in att.parameters():
            p.normal_(0.0, 0.15)
    return att.eval()


def _inputs(b: int, t: int, hidden: int, padded: bool, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, hidden, generator=gen)
    if not padded:
        return x, None
    real = torch.ones(b, t, dtype=torch.bool)
    lengths = [max(1, t - 37), t, 3, t // 2 + 1]  # long, full, tiny and a middle row
    for row in range(b):
        real[row, lengths[row % len(lengths)]:] = False
    x[~real] = x[~real] * 2.0 + 3.0  # junk at padding must not leak into real rows
    return x, real


# (batch, T, window, heads): multiple of the block, not a multiple, window wider than a block,
# odd window, window 1, window larger than the sequence (a single dense block), batch > 1.
CASES = [
    (1, 4 * LOCAL_BLOCK, 16, 4),
    (3, 200, 16, 4),
    (2, 300, 160, 2),
    (3, 150, 7, 1),
    (2, 130, 1, 4),
    (3, 40, 100, 4),
    (2, 200, 500, 4),
    (4, 257, 32, 3),
]


@pytest.mark.parametrize("b,t,window,heads", CASES)
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("sub", [False, True])
def test_blocked_local_attention_equals_the_banded_reference(b, t, window, heads, padded, sub):
    att = _layer(window, heads, sub)
    x, real = _inputs(b, t, 24, padded)
    masks = AttentionMasks.build(real, t, x.device, window, batch_size=b)
    with torch.no_grad():
        got = att(x, masks)
        ref = banded_reference(att, x, real, window)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, **TOL)  # every position, padding included


@pytest.mark.parametrize("b,t,window,heads", [CASES[1], CASES[2], CASES[3], CASES[5]])
@pytest.mark.parametrize("padded", [False, True])
def test_blocked_local_attention_gradients_equal_the_reference(b, t, window, heads, padded):
    att = _layer(window, heads, sub=True)
    x, real = _inputs(b, t, 24, padded)
    weight = torch.randn(b, t, 24, generator=torch.Generator().manual_seed(5))

    def grads(fn):
        att.zero_grad()
        xg = x.clone().requires_grad_(True)
        (fn(xg) * weight).sum().backward()
        return [xg.grad] + [p.grad.clone() for p in att.parameters()]

    masks = AttentionMasks.build(real, t, x.device, window, batch_size=b)
    got = grads(lambda xg: att(xg, masks))
    ref = grads(lambda xg: banded_reference(att, xg, real, window))
    for g, r in zip(got, ref):
        assert torch.isfinite(g).all()
        # Parameter gradients sum over every token (bias gradients reach ~100 here), so the
        # 1e-5 is relative to each gradient's largest entry (fp32 rounding of long sums).
        scale = max(1.0, r.abs().max().item())
        torch.testing.assert_close(g / scale, r / scale, **TOL)


def test_masks_built_without_the_batch_size_are_shared_by_every_row():
    att = _layer(16, 4, sub=False)
    x, _ = _inputs(3, 200, 24, padded=False)
    with torch.no_grad():
        got = att(x, AttentionMasks.build(None, 200, x.device, 16))
        torch.testing.assert_close(got, banded_reference(att, x, None, 16), **TOL)


def test_block_plan_is_linear_in_length_and_dense_only_when_no_dearer():
    long = LocalBlocks.plan(4096, 128)
    assert (long.block, long.span, long.num_blocks, long.left) == (LOCAL_BLOCK, LOCAL_BLOCK + 128, 64, 64)
    assert long.padded_len * long.span < 4096 * 4096 / 15  # ~21x fewer scores than full attention
    wide = LocalBlocks.plan(1000, 300)
    assert wide.block == 150 and wide.span == 450 and wide.padded_len == 1050
    for t, window in ((12, 4), (40, 100), (64, 16), (200, 500)):
        dense = LocalBlocks.plan(t, window)
        assert (dense.num_blocks, dense.block, dense.span, dense.left) == (1, t, t, 0)
    # Blocked whenever it computes fewer scores than the dense band.
    for t in range(1, 400, 7):
        g = LocalBlocks.plan(t, 32)
        assert g.padded_len * g.span <= t * t
        assert g.num_blocks == 1 or g.padded_len * g.span < t * t


def test_local_model_never_builds_a_token_by_token_tensor():
    t, window = 1001, 16  # a length no other dimension has
    model = HybridBertModel(tiny_config("LL:sub", max_position_embeddings=1024, local_window=window)).eval()
    ids = torch.randint(1, VOCAB, (2, t))
    mask = torch.ones(2, t, dtype=torch.long)
    mask[1, 700:] = 0
    with torch.no_grad(), ShapeRecorder() as rec:
        model(ids, attention_mask=mask)
    assert rec.shapes and all(shape.count(t) <= 1 for shape in rec.shapes)
    biggest = max(math.prod(s) for s in rec.shapes)
    g = LocalBlocks.plan(t, window)
    assert biggest <= 2 * 4 * g.padded_len * max(g.span, 48)  # batch x heads x T x (block + window)


def test_padded_rows_of_a_blocked_model_equal_each_row_alone():
    torch.manual_seed(0)
    model = randomise_(HybridBertModel(tiny_config("SAL:pre", max_position_embeddings=256, local_window=8))).eval()
    gen = torch.Generator().manual_seed(4)
    ids = torch.randint(1, VOCAB, (3, 230), generator=gen)
    mask = torch.ones(3, 230, dtype=torch.long)
    mask[1, 150:] = 0
    mask[2, 70:] = 0
    with torch.no_grad():
        out = model(ids, attention_mask=mask).last_hidden_state
        assert torch.isfinite(out).all()
        for row in range(3):
            n = int(mask[row].sum())
            alone = model(ids[row:row + 1, :n]).last_hidden_state[0]
            torch.testing.assert_close(out[row, :n], alone, **TOL)


def test_dropout_in_training_keeps_rows_finite():
    att = _layer(16, 4, sub=False)
    att.dropout_p = 0.5
    att.train()
    x, real = _inputs(2, 200, 24, padded=True)
    x.requires_grad_(True)
    masks = AttentionMasks.build(real, 200, x.device, 16, batch_size=2)
    out = att(x, masks)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    with torch.no_grad():
        assert not torch.allclose(out, att.eval()(x, masks))


def test_local_attention_traces_whole_under_torch_compile():
    """One graph (fullgraph) through dynamo and AOT autograd, forward and backward, same numbers.
    (Inductor's code generation is exercised by ``hsearch bench --path fp32-compile``.)"""
    torch._dynamo.reset()
    model = randomise_(HybridBertModel(tiny_config("LAL:sub", max_position_embeddings=256, local_window=16)))
    model.eval()
    ids = torch.randint(1, VOCAB, (2, 200), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 200, dtype=torch.long)
    mask[1, 120:] = 0
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True, dynamic=False)
    got = compiled(ids, attention_mask=mask).last_hidden_state
    ref = model(ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(got, ref, **TOL)
    got.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("padded", [False, True])
def test_blocked_local_attention_in_bf16_on_cuda(padded):
    att = _layer(32, 4, sub=True, hidden=64)
    x, real = _inputs(3, 1000, 64, padded)
    with torch.no_grad():
        ref = banded_reference(att.double(), x.double(), real, 32).float()
        att = att.float().cuda().to(torch.bfloat16)
        masks = AttentionMasks.build(None if real is None else real.cuda(), 1000, torch.device("cuda"), 32,
                                     batch_size=3)
        got = att(x.cuda().to(torch.bfloat16), masks).float().cpu()
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, atol=0.1, rtol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_local_model_compiles_with_inductor_on_cuda_in_bf16():
    torch._dynamo.reset()
    model = randomise_(HybridBertModel(tiny_config("LAL:sub", hidden_size=64, max_position_embeddings=1024,
                                                   local_window=32)))
    model = model.eval().cuda().to(torch.bfloat16)
    ids = torch.randint(1, VOCAB, (2, 1000), generator=torch.Generator().manual_seed(2)).cuda()
    mask = torch.ones_like(ids)
    mask[1, 600:] = 0
    with torch.no_grad():
        ref = model(ids, attention_mask=mask).last_hidden_state.float()
        got = torch.compile(model, fullgraph=True, dynamic=False)(ids, attention_mask=mask).last_hidden_state.float()
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, atol=0.1, rtol=0.05)


def test_executed_flops_formula_counts_the_blocks():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from hsearch.bench.flops import encoder_flops, layer_flops

    model = HybridBertModel(tiny_config("LL:sub", max_position_embeddings=256, local_window=16),
                            add_pooling_layer=False).eval()
    ids = torch.randint(1, VOCAB, (2, 200))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(input_ids=ids)
    kw = dict(batch=2, seq_len=200, hidden=32, intermediate=48)
    assert counter.get_total_flops() == encoder_flops("LL:sub", window=16, **kw)
    assert layer_flops("L", window=16, **kw) < layer_flops("S", **kw)
