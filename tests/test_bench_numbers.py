"""The bench reports' numbers for fixed fake timings, against values worked out by hand.

The timing loop and the training loop are replaced by scripted results, so every figure in a
row (median, IQR, ratios, FLOP rates, tokens/s, speed-up) has one right value, written here
as a literal with its arithmetic.
"""

from __future__ import annotations

import pytest

import hsearch.bench.latency as bench_latency_mod
import hsearch.bench.train as bench_train_mod
from hsearch.bench.latency import bench_latency, latency_targets
from hsearch.bench.models import parse_layouts
from hsearch.bench.train import bench_train

REF_RUNS = [10.0, 12.0, 11.0]  # ms, reference BertModel (2 layers)
OURS_RUNS = [5.0, 9.0, 4.0]  # ms, SA:pre


def test_latency_row_numbers(monkeypatch):
    scripted = [[REF_RUNS[:1], OURS_RUNS[:1]], [REF_RUNS[1:], OURS_RUNS[1:]]]

    def fake_time_calls(fns, inputs, *, warmup, runs, device, **_):
        assert len(fns) == 2  # the reference first, then the layout
        out = scripted.pop(0)
        assert all(len(t) == runs for t in out)
        return out

    monkeypatch.setattr(bench_latency_mod, "time_calls", fake_time_calls)
    report = bench_latency(parse_layouts("SA:pre"), [16], dims="small", runs=3, warmup=0, threads=1)
    ref, ours = report["rows"]
    assert ref["reference"] and ours["name"] == "SA:pre"
    assert ours["runs_ms"] == OURS_RUNS and ref["runs_ms"] == REF_RUNS
    assert ours["median_ms"] == 5.0 and ref["median_ms"] == 11.0
    # Inclusive quartiles of [4, 5, 9] are 4.5 and 7.0; of [10, 11, 12], 10.5 and 11.5.
    assert ours["spread_ms"] == pytest.approx(2.5) and ref["spread_ms"] == pytest.approx(1.0)
    assert ours["ref_median_ms"] == 11.0
    assert ours["ratio_to_ref"] == pytest.approx(5.0 / 11.0)
    # Run-by-run ratios 5/10, 9/12, 4/11 = 0.5, 0.75, 0.364: median 0.5.
    assert ours["paired_ratio_to_ref"] == pytest.approx(0.5)
    assert ref["ratio_to_ref"] == 1.0 and ref["paired_ratio_to_ref"] == 1.0
    # FLOPs at B=1, T=16 (N=16), h=64, f=256:
    #   S = 8·N·h² + 4·B·T²·h + 4·N·h·f = 524,288 + 65,536 + 1,048,576 = 1,638,400
    #   A = 10·N·h² + 8·N·h + 4·N·h·f = 655,360 + 8,192 + 1,048,576 = 1,712,128
    assert ours["encoder_gflops"] == pytest.approx(3_350_528 / 1e9)
    assert ours["gflops_per_s"] == pytest.approx(3_350_528 / 1e9 / 0.005)
    assert ref["encoder_gflops"] == pytest.approx(3_276_800 / 1e9)
    assert ref["gflops_per_s"] == pytest.approx(3_276_800 / 1e9 / 0.011)


def test_train_row_numbers(monkeypatch):
    scripted = [
        {"step_ms": [20.0, 30.0, 25.0], "losses": [7.0, 6.5, 6.0], "peak_mem_mb": 100.0},  # reference
        {"step_ms": [10.0, 12.0, 14.0], "losses": [6.9, 6.1, 5.5], "peak_mem_mb": 80.0},  # SA:sub
    ]
    monkeypatch.setattr(bench_train_mod, "train_one", lambda *a, **k: scripted.pop(0))
    report = bench_train(parse_layouts("SA:sub"), seq_len=32, batch=2, steps=3, warmup_steps=0,
                         precision="fp32", device="cpu", dims="small")
    ref, ours = report["rows"]
    assert ref["step_ms"] == 25.0 and ours["step_ms"] == 12.0
    assert ref["step_ms_spread"] == pytest.approx(5.0)  # inclusive quartiles 22.5, 27.5
    assert ours["step_ms_spread"] == pytest.approx(2.0)  # 11.0, 13.0
    assert ref["tokens_per_s"] == pytest.approx(2 * 32 / 0.025)  # 2,560
    assert ours["tokens_per_s"] == pytest.approx(2 * 32 / 0.012)  # 5,333.3
    assert ours["speedup_vs_ref"] == pytest.approx(25.0 / 12.0)
    # Training FLOPs = 3 × forward. B=2, T=32 (N=64), h=64, f=256, V=1000.
    #   ours: S 6,815,744 + A 6,848,512 + sparse head at 10 masked tokens (round(0.15·32)=5 per
    #   row): 2·10·h² + 2·10·h·V = 1,361,920  -> 15,026,176 forward
    #   reference: 2 × S 6,815,744 + dense head at 64 tokens 8,716,288 -> 22,347,776 forward
    assert ours["train_flops_per_step"] == 45_078_528
    assert ref["train_flops_per_step"] == 67_043_328
    assert ours["tflops_per_s"] == pytest.approx(45_078_528 / 0.012 / 1e12)
    assert (ours["loss_first"], ours["loss_last"]) == (6.9, 5.5)
    assert ours["mfu"] is None


def _row(name, layout, seq_len, median, paired, reference=False):
    return {"name": name, "layout": layout, "reference": reference, "seq_len": seq_len, "batch": 1,
            "median_ms": median, "ratio_to_ref": paired * 1.1, "paired_ratio_to_ref": paired,
            "path": "cpu-fp32-eager"}


def test_latency_targets_from_hand_made_rows():
    rows = [
        _row("bert-base", "SSSSSSSSSSSS:post", 211, 30.0, 0.55),
        _row("addbert", "AAAAAAAAAAAA:post", 512, 40.0, 0.5),
        _row("addbert", "AAAAAAAAAAAA:post", 1024, 80.0, 0.4),
        _row("addbert", "AAAAAAAAAAAA:post", 2048, 176.0, 0.3),
        _row("bert-base", "SSSSSSSSSSSS:post", 512, 60.0, 0.8),
        _row("bert-base", "SSSSSSSSSSSS:post", 1024, 150.0, 0.8),
        _row("bert-base", "SSSSSSSSSSSS:post", 2048, 450.0, 0.6),
    ]
    cpu, ab, lin_a, lin_s = latency_targets(rows, device="cpu")
    assert cpu["met"] is True and cpu["value"].startswith("0.605x of medians, 0.550x paired")
    # A/S paired: 512: 0.5/0.8 = 0.62, 1024: 0.4/0.8 = 0.50, 2048: 0.3/0.6 = 0.50.
    assert ab["value"] == "512: A/S=0.62, 1024: A/S=0.50, 2048: A/S=0.50" and ab["met"] is True
    # Per-token growth 1024 -> 2048: A (176/2048)/(80/1024) = 1.10 (met, <= 1.2); S 450/2048 / (150/1024) = 1.50.
    assert lin_a["value"] == "1024->2048: 1.10x" and lin_a["met"] is True
    assert lin_s["value"] == "1024->2048: 1.50x" and lin_s["met"] is None
    slow = [dict(r, paired_ratio_to_ref=0.61) if r["seq_len"] == 211 else r for r in rows]
    assert latency_targets(slow, device="cpu")[0]["met"] is False
    assert [t["target"] for t in latency_targets(rows, device="cuda")][0].startswith("all-A faster")
