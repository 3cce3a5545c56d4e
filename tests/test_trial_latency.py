"""The trial's latency protocol with a scripted clock: warm-up, timed runs, the figures reported.

No real timing: the clock is injected, so the numbers are exact and the test does not depend
on how busy the machine is.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from hsearch.model import HybridBertConfig, HybridBertModel
from hsearch.model.inference import time_calls
from hsearch.cost.protocol import steady
from hsearch.trial.latency import measure_latency, stats_from_times

# Two quiet blocks of 5 runs around a loaded burst, and a one-run tail (ms).
RUNS = [10.0, 11.0, 10.5, 10.2, 10.8, 30.0, 31.0, 29.0, 30.5, 30.2, 9.9, 10.1, 10.0, 10.3, 10.2, 50.0]


class ScriptedClock:
    """A clock whose timed intervals are ``durations_ms``, one per timed call; counts calls."""

    def __init__(self, durations_ms):
        self.now = 100.0
        self.reads = 0
        self._pending = iter(durations_ms)
        self._started = False

    def __call__(self) -> float:
        self.reads += 1
        if self._started:
            self.now += next(self._pending) / 1000.0
        self._started = not self._started
        return self.now


class CountingModel(torch.nn.Module):
    def __init__(self, inner, clock):
        super().__init__()
        self.inner, self.clock, self.config = inner, clock, inner.config
        self.calls: list[int] = []  # clock reads seen at each call: 0 for every warm-up call

    def forward(self, **inputs):
        self.calls.append(self.clock.reads)
        return self.inner(**inputs)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = HybridBertConfig(layout="SA:sub", vocab_size=50, hidden_size=16, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=32)
    return HybridBertModel(cfg).eval()


def test_protocol_warm_up_then_timed_runs_then_the_figures(tiny, monkeypatch):
    clock = ScriptedClock(RUNS)
    model = CountingModel(tiny, clock)
    # Path fp32-eager on a float32 model: the model itself is what gets called.
    stats = measure_latency(model, seq_len=8, warmup=3, runs=len(RUNS), threads=1, path="fp32-eager",
                            block=5, clock=clock)
    # 3 untimed warm-up calls before the clock is first read, then one timed call per run,
    # each between two clock reads.
    assert model.calls[:3] == [0, 0, 0]
    assert model.calls[3:] == [1 + 2 * i for i in range(len(RUNS))]
    assert clock.reads == 2 * len(RUNS)
    assert stats.runs_ms == pytest.approx(RUNS)
    # Median of all 16 runs: sorted, the 8th and 9th are 10.5 and 10.8.
    assert stats.median_ms == pytest.approx(10.65)
    # Inclusive quartiles: positions 3.75 and 11.25 of the sorted runs -> 10.175 and 30.05.
    assert stats.spread_ms == pytest.approx(30.05 - 10.175)
    # Steady: blocks [0:5] median 10.5, [5:10] 30.2, [10:16] (the tail joins) 10.15 -> 10.15.
    assert stats.steady_ms == pytest.approx(10.15)
    assert (stats.path, stats.threads, stats.seq_len, stats.batch_size) == ("cpu-fp32-eager", 1, 8, 1)


def test_steady_latency_is_the_lowest_block_median():
    assert steady(RUNS, 5) == pytest.approx(10.15)
    assert steady(RUNS, 4) == pytest.approx(10.25)  # blocks: 10.35, 29.5, 20.15, 10.25
    assert steady([30.0, 31.0, 10.0, 11.0], 2) == 10.5
    assert steady(RUNS[:3], 5) == 10.5  # fewer runs than a block: one block
    assert steady([5.0], 5) == 5.0
    # Not the minimum run, nor the overall median.
    assert steady([9.0, 20.0, 20.0, 12.0, 12.0, 12.0], 3) == 12.0


def test_stats_from_times_single_run():
    stats = stats_from_times([7.0], path="p", threads=2, device="cpu", seq_len=4, batch_size=1)
    assert (stats.median_ms, stats.spread_ms, stats.steady_ms) == (7.0, 0.0, 7.0)


def test_time_calls_is_round_robin_after_every_warm_up():
    order = []
    clock_ticks = itertools.count()

    def fn(name):
        return lambda **_: order.append(name)

    times = time_calls([fn("a"), fn("b")], [{}, {}], warmup=2, runs=3, device="cpu",
                          clock=lambda: float(next(clock_ticks)))
    assert order == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert times == [[1000.0] * 3, [1000.0] * 3]  # each timed call spans one clock tick (1 s)
