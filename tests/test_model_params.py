"""Parameter counts of the four presets at BERT-base size, derived independently
from the architecture, cross-checked against transformers' BertModel, and kept in sync with
docs/parameters.md (which sets them next to the paper's Table 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from hsearch.layout import PRESETS
from hsearch.model import HybridBertConfig, HybridBertForMaskedLM, HybridBertModel

V, H, I, P, TYPES = 30522, 768, 3072, 512, 2
PAPER_M = {"hbert-v1": 119.8, "hbert-v2": 118.7, "bert-base": 109.5, "addbert": 116.4}


def _linear(n_in: int, n_out: int, bias: bool) -> int:
    return n_in * n_out + (n_out if bias else 0)


def expected_count(preset: str, *, mlm_head: bool = False) -> int:
    layout, opts = PRESETS[preset].layout, PRESETS[preset].options
    ab, fb = opts["attention_bias"], opts["ffn_bias"]
    ln = 2 * H
    total = V * H + TYPES * H + ln  # token + token-type embeddings, embedding LN
    if opts["position_embedding"] == "learned":
        total += P * H  # sinusoidal positions are a fixed buffer, not parameters
    for i, (kind, norm) in enumerate(zip(layout.kinds, layout.norms)):
        attn = _linear(H, 3 * H, ab) + _linear(H, H, ab)  # fused q|k|v, output projection
        if kind == "A":
            attn += _linear(H, H, ab) + 2 * H  # transform of u, the w_q and w_k score vectors
        ffn = _linear(H, I, fb) + _linear(I, H, fb)
        norms = 2 * ln
        if norm == "sub":
            norms += ln + 2 * I  # inner LN before the attention output and before fc2 (width I)
        last_pre = norm != "post" and (i == len(layout.kinds) - 1 or layout.norms[i + 1] == "post")
        norms += ln if last_pre else 0
        total += attn + ffn + norms
    if mlm_head:
        return total + _linear(H, H, True) + ln + V  # transform, LN, decoder bias (weight tied)
    return total + _linear(H, H, True)  # pooler


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def counts() -> dict[str, tuple[int, int]]:
    out = {}
    with torch.device("meta"):  # shapes only: no memory, no init
        for name in PAPER_M:
            cfg = HybridBertConfig.from_layout(name)
            assert (cfg.vocab_size, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size,
                    cfg.max_position_embeddings) == (V, H, 12, I, P)
            out[name] = (_count(HybridBertModel(cfg)), _count(HybridBertForMaskedLM(cfg)))
    return out


def test_preset_counts_match_independent_derivation(counts):
    print("\npreset      ours (HybridBertModel)  ours (MLM)     paper Table 2")
    for name, (base, mlm) in counts.items():
        print(f"{name:10s}  {base:>14,}          {mlm:>12,}   {PAPER_M[name]} M")
        assert base == expected_count(name)
        assert mlm == expected_count(name, mlm_head=True)


def test_bert_base_preset_has_exactly_bert_base_parameters(counts):
    with torch.device("meta"):
        reference = _count(BertModel(BertConfig()))
    assert counts["bert-base"][0] == reference == 109_482_240
    assert round(reference / 1e6, 1) == PAPER_M["bert-base"]


def test_docs_list_the_current_counts(counts, repo_root: Path):
    doc = (repo_root / "docs" / "parameters.md").read_text()
    for name, (base, mlm) in counts.items():
        assert f"{base:,}" in doc and f"{mlm:,}" in doc and str(PAPER_M[name]) in doc, name
