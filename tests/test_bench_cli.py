"""`hsearch bench latency|train` on the CPU with small dims: tables, files and every field.

The report's numbers for a fixed fake input are checked in tests/test_bench_numbers.py."""

from __future__ import annotations

import json

import pytest

from hsearch.cli import main

LATENCY_FIELDS = {"name", "layout", "reference", "seq_len", "batch", "median_ms", "spread_ms", "runs", "runs_ms",
                  "path", "ref_median_ms", "ratio_to_ref", "paired_ratio_to_ref", "params", "encoder_gflops", "gflops_per_s"}
TRAIN_FIELDS = {"name", "layout", "reference", "seq_len", "batch", "precision", "compile", "step_ms",
                "step_ms_spread", "tokens_per_s", "peak_mem_mb", "train_flops_per_step", "tflops_per_s", "mfu",
                "loss_first", "loss_last", "params", "speedup_vs_ref"}
HW_FIELDS = {"device", "device_name", "cpu", "cpu_count", "cpu_bf16", "threads", "torch", "transformers", "gemm"}


def test_bench_latency_measures_layouts_and_reference(tmp_path, capsys):
    out = tmp_path / "lat.json"
    rc = main(["bench", "latency", "--dims", "small", "--layouts", "addbert,SL:pre", "--seq-lens", "16,32",
               "--runs", "3", "--warmup", "1", "--threads", "1", "--out", str(out)])
    assert rc == 0
    screen = capsys.readouterr().out
    assert "transformers.BertModel (12 layers)" in screen and "SL:pre" in screen
    report = json.loads(out.read_text())
    assert HW_FIELDS <= set(report["hardware"]) and report["hardware"]["threads"] == 1
    assert report["hardware"]["gemm"]["blas"]
    rows = report["rows"]
    # One reference per distinct depth (12 for addbert, 2 for SL:pre), each really timed.
    assert {(r["name"], r["seq_len"]) for r in rows if r["reference"]} == {
        (f"transformers.BertModel ({n} layers)", t) for n in (2, 12) for t in (16, 32)}
    for row in rows:
        assert LATENCY_FIELDS <= set(row)
        assert row["runs"] == len(row["runs_ms"]) == 3 and all(t > 0 for t in row["runs_ms"])
    ref = next(r for r in rows if r["reference"] and r["seq_len"] == 16 and "12" in r["name"])
    add = next(r for r in rows if r["name"] == "addbert" and r["seq_len"] == 16)
    assert ref["runs_ms"] != add["runs_ms"] and ref["params"] != add["params"]
    assert add["ref_median_ms"] == ref["median_ms"]


def test_bench_train_reports_throughput_memory_and_losses(tmp_path, capsys):
    out = tmp_path / "train.md"
    rc = main(["bench", "train", "--dims", "small", "--layouts", "SA:sub", "--seq-len", "32", "--batch", "2",
               "--steps", "2", "--warmup-steps", "1", "--precision", "fp32", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    assert "transformers.BertForMaskedLM (2 layers)" in capsys.readouterr().out
    text = out.read_text()
    assert "## Hardware" in text and "GEMM backend" in text and "| tokens/s |" in text
    report = json.loads(text.split("```json", 1)[1].split("```", 1)[0])
    ref, ours = report["rows"]
    assert ref["reference"] and not ours["reference"]
    for row in (ref, ours):
        assert TRAIN_FIELDS <= set(row)
        assert row["tokens_per_s"] > 0 and row["peak_mem_mb"] > 0 and row["mfu"] is None  # no known CPU peak
    # The sparse head computes logits at masked positions only: fewer FLOPs than the reference.
    assert ours["train_flops_per_step"] < ref["train_flops_per_step"]
    assert ours["speedup_vs_ref"] > 0 and ref["speedup_vs_ref"] == 1.0


@pytest.mark.parametrize("argv,match", [
    (["bench", "latency", "--layouts", "SXS:post"], "unknown attention kind 'X'"),
    (["bench", "latency", "--seq-lens", "12,abc"], "--seq-lens"),
    (["bench", "latency", "--out", "x.txt"], "allowed: .md, .json"),
    (["bench", "latency", "--path", "fp8"], "allowed: auto, fp32-eager"),
    (["bench", "train", "--steps", "0", "--device", "cpu"], "--steps 0"),
])
def test_bad_bench_arguments_exit_2_with_one_line(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err
