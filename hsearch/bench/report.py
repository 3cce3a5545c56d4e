"""Benchmark reports: a plain-text table for the screen, Markdown or JSON files for analysis/bench/."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from hsearch.bench.models import BenchError

_LATENCY_COLS = [("name", "model", "{}"), ("layout", "layout", "{}"), ("seq_len", "T", "{}"),
                 ("median_ms", "median ms", "{:.2f}"), ("spread_ms", "IQR ms", "{:.2f}"),
                 ("runs", "runs", "{}"), ("ratio_to_ref", "x ref", "{:.2f}"), ("paired_ratio_to_ref", "x ref paired", "{:.2f}"),
                 ("gflops_per_s", "GFLOP/s", "{:.1f}"), ("path", "path", "{}")]
_TRAIN_COLS = [("name", "model", "{}"), ("layout", "layout", "{}"), ("tokens_per_s", "tokens/s", "{:,.0f}"),
               ("step_ms", "step ms", "{:.1f}"), ("step_ms_spread", "IQR ms", "{:.1f}"),
               ("speedup_vs_ref", "x ref", "{:.2f}"), ("tflops_per_s", "TFLOP/s", "{:.1f}"),
               ("mfu", "MFU", "{:.1%}"), ("peak_mem_mb", "peak MiB", "{:,.0f}"),
               ("loss_first", "loss0", "{:.2f}"), ("loss_last", "lossN", "{:.2f}")]

_COST_COLS = [("layout", "layout", "{}"), ("step_ms_predicted", "step ms pred", "{:.2f}"),
              ("step_ms", "step ms", "{:.2f}"), ("step_ms_spread", "IQR", "{:.2f}"), ("step_error", "error", "{:+.1%}"),
              ("latency_ms_predicted", "latency ms pred", "{:.3f}"), ("latency_ms", "latency ms", "{:.3f}"),
              ("latency_ms_spread", "IQR", "{:.3f}"), ("latency_error", "error", "{:+.1%}"),
              ("params", "params", "{:,}")]
_TITLES = {"latency": "Inference latency", "train": "Training throughput", "cost": "Cost-model accuracy"}


def hardware_lines(hw: dict[str, Any]) -> list[str]:
    """Markdown bullet lines for a report (keys of :func:`hsearch.trial.hardware.hardware_info`)."""
    gemm = hw.get("gemm", {})
    lines = []
    if hw.get("device") == "cuda":
        lines.append(f"- GPU: {hw['device_name']} ({hw.get('gpu_memory_gb')} GiB, {hw.get('gpu_multiprocessors')} SMs), "
                     f"CUDA {hw.get('cuda')}, cuDNN {gemm.get('cudnn')}")
    lines += [
        f"- CPU: {hw['cpu']}, {hw['cpu_count']} logical CPUs, torch threads {hw['threads']}, "
        f"native bf16: {'yes' if hw['cpu_bf16'] else 'no'}",
        f"- torch {hw['torch']}, transformers {hw['transformers']}, Python {hw['python']}",
        f"- GEMM backend: BLAS={gemm.get('blas')}, MKL={gemm.get('mkl')}, oneDNN(mkldnn)={gemm.get('mkldnn')} "
        f"v{gemm.get('onednn_version')}, CPU capability {gemm.get('cpu_capability')}",
        f"- platform: {hw['platform']}",
    ]
    return lines


def _columns(report: dict[str, Any]):
    return {"latency": _LATENCY_COLS, "train": _TRAIN_COLS, "cost": _COST_COLS}[report["kind"]]


def _cell(fmt: str, value: Any) -> str:
    if value is None:
        return "n/a"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def table_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    cols = _columns(report)
    return [c[1] for c in cols], [[_cell(fmt, row.get(key)) for key, _, fmt in cols] for row in report["rows"]]


def format_table(report: dict[str, Any]) -> str:
    """Fixed-width table for the terminal."""
    head, body = table_rows(report)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in body]
    for t in report.get("targets", []):
        mark = {True: "MET", False: "MISSED", None: "info"}[t["met"]]
        lines.append(f"[{mark}] {t['target']}: {t['value']}")
    return "\n".join(lines)


def to_markdown(report: dict[str, Any], command: str | None = None, *, raw: bool = True,
                level: int = 1) -> str:
    """Markdown with hardware, settings, the results table, targets and (``raw``) the JSON."""
    head, body = table_rows(report)
    title = _TITLES[report["kind"]]
    s = report["settings"]
    h = "#" * level
    lines = [f"{h} {title} (measured by `hsearch bench {report['kind']}`)", ""]
    if command:
        lines += [f"Regenerate: `{command}`", ""]
    lines += [f"{h}# Hardware", "", *hardware_lines(report["hardware"]), "", f"{h}# Settings", ""]
    lines += [f"- {k}: {v}" for k, v in s.items()]
    lines += ["", f"{h}# Results", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    if report.get("targets"):
        lines += ["", f"{h}# Targets", "", "| target | measured | met |", "|---|---|---|"]
        for t in report["targets"]:
            met = {True: "yes", False: "**no**", None: "—"}[t["met"]]
            lines.append(f"| {t['target']} | {t['value']} | {met} |")
    if raw:
        lines += ["", "<details><summary>raw JSON</summary>", "", "```json",
                  json.dumps(report, indent=1, default=str), "```", "</details>"]
    lines.append("")
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: str | Path, argv: list[str] | None = None) -> Path:
    """Write ``report`` as Markdown (``.md``) or JSON (``.json``), chosen by the suffix."""
    path = Path(path)
    command = "hsearch " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    if path.suffix == ".json":
        text = json.dumps({**report, "command": command}, indent=1, default=str)
    elif path.suffix == ".md":
        text = to_markdown(report, command)
    else:
        raise BenchError(f"--out {str(path)!r}: unknown report format {path.suffix!r} (allowed: .md, .json)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
