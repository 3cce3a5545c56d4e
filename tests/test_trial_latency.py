"""The trial's latency objective is repeatable on this machine."""

from __future__ import annotations

import statistics

import pytest
import torch

from hsearch.model import HybridBertConfig, HybridBertModel
from hsearch.trial.latency import measure_latency, stats_from_times, steady_latency


def test_same_model_measured_twice_agrees_within_10_percent():
    torch.manual_seed(0)
    cfg = HybridBertConfig.from_layout("hbert-v1", vocab_size=4096, hidden_size=64, num_attention_heads=2,
                                       intermediate_size=256, max_position_embeddings=128)
    model = HybridBertModel(cfg).eval()
    # The trial's objective is the steady latency (quietest block of 5 runs) of 100 runs.
    kwargs = dict(seq_len=64, batch_size=1, warmup=5, runs=100, threads=1, device="cpu", path="fp32-eager")
    first = measure_latency(model, **kwargs)
    second = measure_latency(model, **kwargs)
    assert first.steady_ms > 0 and second.steady_ms > 0
    assert abs(first.steady_ms - second.steady_ms) / min(first.steady_ms, second.steady_ms) < 0.10, (
        first.steady_ms, second.steady_ms)


def test_steady_latency_is_the_quietest_block_median():
    # Two quiet blocks and one loaded burst: the burst never sets the figure, the median of
    # the quietest block does; a short tail joins the block before it.
    times = [10.0, 11.0, 10.5, 10.2, 10.8, 30.0, 31.0, 29.0, 30.5, 30.2, 9.9, 10.1, 10.0, 10.3, 10.2, 50.0]
    assert steady_latency(times, 5) == statistics.median(times[10:16])
    assert steady_latency(times, 5) == pytest.approx(10.15)
    assert steady_latency(times[:3], 5) == 10.5
    stats = stats_from_times(times, path="p", threads=1, device="cpu", seq_len=8, batch_size=1, block=5)
    assert stats.median_ms == statistics.median(times) and stats.steady_ms == pytest.approx(10.15)
