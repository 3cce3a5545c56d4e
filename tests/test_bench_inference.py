"""Inference fast paths approximate a float64 run of the same weights; the shared latency measurement."""

from __future__ import annotations

import copy

import pytest
import torch

from hsearch.errors import HsearchError
from hsearch.model import HybridBertConfig, HybridBertModel
from hsearch.model import inference
from hsearch.model.inference import prepare_for_inference, random_inputs
from hsearch.trial.latency import LatencyStats, measure_latency


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = HybridBertConfig(layout="SAL:sub", hidden_size=64, num_attention_heads=4, intermediate_size=128,
                              vocab_size=120, local_window=8, max_position_embeddings=64)
    return HybridBertModel(config, add_pooling_layer=False).eval()


def _out(prepared, inputs):
    with torch.inference_mode():
        return prepared.forward(**inputs).last_hidden_state.float().clone()


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def reference(model):
    """The same weights run in float64 on a separate copy: what every path approximates."""
    ref = copy.deepcopy(model).double().eval()

    def run(inputs):
        with torch.inference_mode():
            return ref(**inputs).last_hidden_state.float()
    return run


# fp32 eager differs from float64 by rounding only; bf16 and int8 change the numerics.
TOLERANCES = {"fp32-eager": 1e-5, "bf16-eager": 3e-2, "int8-dynamic": 6e-2}


@pytest.mark.parametrize("path", list(TOLERANCES))
def test_fast_paths_match_a_float64_reference(model, reference, path):
    inputs = random_inputs(model, 40, 2, "cpu")
    fast = prepare_for_inference(model, "cpu", path=path)
    assert fast.path == f"cpu-{path}"
    out = _out(fast, inputs)
    assert torch.isfinite(out).all()
    assert _rel(out, reference(inputs)) <= TOLERANCES[path]
    # The caller's model is never converted.
    assert next(model.parameters()).dtype == torch.float32
    assert type(model.encoder.layer[0].attention.qkv) is torch.nn.Linear


def test_auto_times_every_candidate_and_keeps_the_fastest(model, reference, monkeypatch):
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: True)  # so auto has two candidates
    # Scripted candidate timings: bf16 is "faster", so auto must pick it and run in bf16.
    fake = {"cpu-fp32-eager": 3.0, "cpu-bf16-eager": 2.0}
    monkeypatch.setattr(inference, "_quick_time", lambda prepared, inputs, runs: fake[prepared.path])
    prepared = prepare_for_inference(model, "cpu", seq_len=16, compile=False)
    assert prepared.candidates_ms == fake and prepared.path == "cpu-bf16-eager"
    assert next(prepared.module.parameters()).dtype == torch.bfloat16
    inputs = random_inputs(model, 16, 1, "cpu")
    assert _rel(_out(prepared, inputs), reference(inputs)) <= TOLERANCES["bf16-eager"]
    fake["cpu-fp32-eager"] = 1.0
    prepared = prepare_for_inference(model, "cpu", seq_len=16, compile=False)
    assert prepared.path == "cpu-fp32-eager"
    assert _rel(_out(prepared, inputs), reference(inputs)) <= TOLERANCES["fp32-eager"]


def test_measure_latency_reports_every_field_and_restores_threads(model):
    before = torch.get_num_threads()
    stats = measure_latency(model, seq_len=24, batch_size=2, warmup=1, runs=5, threads=1, path="fp32-eager")
    assert isinstance(stats, LatencyStats)
    assert torch.get_num_threads() == before
    assert len(stats.runs_ms) == 5 and all(t > 0 for t in stats.runs_ms)
    assert min(stats.runs_ms) <= stats.median_ms <= max(stats.runs_ms)
    assert 0 <= stats.spread_ms <= max(stats.runs_ms) - min(stats.runs_ms)
    assert (stats.path, stats.threads, stats.device, stats.seq_len, stats.batch_size) == (
        "cpu-fp32-eager", 1, "cpu", 24, 2)
    assert set(stats.to_dict()) >= {"median_ms", "spread_ms", "runs_ms", "path", "threads", "device"}
    auto = measure_latency(model, seq_len=8, warmup=0, runs=2)
    assert auto.path.startswith("cpu-")


@pytest.mark.parametrize("kwargs,match", [
    ({"path": "fp8-eager"}, "allowed: auto, fp32-eager"),
    ({"path": "fp16-eager"}, "not available on cpu"),
    ({"seq_len": 0}, "seq_len=0"),
    ({"device": "tpu"}, "allowed: cpu, cuda"),
    ({"threads": 0}, "threads=0"),
])
def test_bad_arguments_raise_hsearch_errors(model, kwargs, match):
    args = {"seq_len": 8, "runs": 1, "warmup": 0, **kwargs}
    with pytest.raises(HsearchError, match=match):
        measure_latency(model, **args)
