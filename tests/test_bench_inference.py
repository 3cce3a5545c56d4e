"""Inference fast paths give the plain path's outputs; the shared latency measurement."""

from __future__ import annotations

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


@pytest.mark.parametrize("path,tol", [("fp32-eager", 0.0), ("bf16-eager", 3e-2), ("int8-dynamic", 6e-2)])
def test_fast_paths_match_plain_path(model, path, tol):
    inputs = random_inputs(model, 40, 2, "cpu")
    plain = _out(prepare_for_inference(model, "cpu", path="fp32-eager"), inputs)
    fast = prepare_for_inference(model, "cpu", path=path)
    assert fast.path == f"cpu-{path}"
    out = _out(fast, inputs)
    assert torch.isfinite(out).all()
    assert _rel(out, plain) <= tol
    # The caller's model is never converted.
    assert next(model.parameters()).dtype == torch.float32
    assert type(model.encoder.layer[0].attention.qkv) is torch.nn.Linear


def test_auto_times_every_candidate_and_keeps_the_fastest(model, monkeypatch):
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: True)  # so auto has two candidates
    prepared = prepare_for_inference(model, "cpu", seq_len=16, compile=False)
    assert set(prepared.candidates_ms) == {"cpu-fp32-eager", "cpu-bf16-eager"}
    assert prepared.path == min(prepared.candidates_ms, key=prepared.candidates_ms.get)


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
