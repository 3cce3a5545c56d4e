"""The analytic FLOP formula (hsearch.bench.flops) against torch.utils.flop_counter."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from hsearch.bench.flops import encoder_flops, layer_flops, mlm_forward_flops, train_step_flops
from hsearch.model import HybridBertConfig, HybridBertForMaskedLM, HybridBertModel

DIMS = dict(hidden_size=32, num_attention_heads=4, intermediate_size=48, vocab_size=97, local_window=8,
            max_position_embeddings=64)


def _count(fn) -> int:
    # The math SDPA backend is made of matmuls the counter sees (the fused CPU kernel is not counted).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("layout", ["SS:post", "AAA:pre", "LL:sub", "SAL:sub"])
def test_encoder_formula_matches_flop_counter(layout):
    torch.manual_seed(0)
    model = HybridBertModel(HybridBertConfig(layout=layout, **DIMS), add_pooling_layer=False).eval()
    ids = torch.randint(1, 97, (2, 24))
    counted = _count(lambda: model(input_ids=ids))
    expected = encoder_flops(layout, batch=2, seq_len=24, hidden=32, intermediate=48)
    assert counted == expected


def test_mlm_formula_counts_only_masked_positions_and_backward_is_twice_forward():
    torch.manual_seed(0)
    model = HybridBertForMaskedLM(HybridBertConfig(layout="SA:sub", **DIMS))
    ids = torch.randint(1, 97, (2, 24))
    labels = torch.full_like(ids, -100)
    labels[:, ::4] = ids[:, ::4]  # 6 masked positions per row
    fwd = _count(lambda: model(input_ids=ids, labels=labels))
    expected = mlm_forward_flops("SA:sub", batch=2, seq_len=24, hidden=32, intermediate=48, vocab=97,
                                 masked_tokens=12)
    assert fwd == expected
    step = _count(lambda: model(input_ids=ids, labels=labels).loss.backward())
    # Embedding gradients are scatter-adds (no FLOPs counted) and the first layer's input needs
    # no gradient, so the counter sees slightly less than the 3x rule, never more.
    assert 0.9 * train_step_flops(expected) <= step <= train_step_flops(expected)


def test_local_attention_useful_flops_shrink_with_the_window():
    full = layer_flops("L", batch=1, seq_len=1024, hidden=768, intermediate=3072)
    useful = layer_flops("L", batch=1, seq_len=1024, hidden=768, intermediate=3072, window=128, useful=True)
    assert useful < full == layer_flops("S", batch=1, seq_len=1024, hidden=768, intermediate=3072)
    with pytest.raises(ValueError, match="allowed: S, A, L"):
        layer_flops("X", batch=1, seq_len=8, hidden=8, intermediate=8)
