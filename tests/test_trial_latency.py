"""The trial's latency objective is repeatable on this machine."""

from __future__ import annotations

import torch

from hsearch.model import HybridBertConfig, HybridBertModel
from hsearch.trial.latency import measure_latency


def test_same_model_measured_twice_agrees_within_10_percent():
    torch.manual_seed(0)
    cfg = HybridBertConfig.from_layout("hbert-v1", vocab_size=4096, hidden_size=64, num_attention_heads=2,
                                       intermediate_size=256, max_position_embeddings=128)
    model = HybridBertModel(cfg).eval()
    # Medians of many short runs on one thread: robust to the other processes on a shared machine.
    kwargs = dict(seq_len=64, batch_size=1, warmup=5, runs=60, threads=1, device="cpu", path="fp32-eager")
    first = measure_latency(model, **kwargs)
    second = measure_latency(model, **kwargs)
    assert first.median_ms > 0 and second.median_ms > 0
    assert abs(first.median_ms - second.median_ms) / min(first.median_ms, second.median_ms) < 0.10, (
        first.median_ms, second.median_ms)
