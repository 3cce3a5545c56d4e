"""``hsearch bench latency``: forward latency of layouts vs ``transformers.BertModel``, same run.

For every sequence length, each layout is prepared along its inference path (``auto`` by
default: the path the trials' latency objective uses) and timed *interleaved* with the
reference ``BertModel`` (fp32, eager, its default SDPA attention): run i of every model
happens back to back, so load drift on a shared machine hits all of them alike and the
ratio stays meaningful. Timing is the one timing loop, :func:`hsearch.model.inference.time_calls`.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

import torch

from hsearch.bench.flops import encoder_flops
from hsearch.trial.hardware import hardware_info
from hsearch.bench.models import (
    REFERENCE_NAME,
    BenchError,
    BenchModel,
    build_hybrid,
    build_reference,
    count_params,
    dims_for,
    layout_of,
    num_layers,
)
from hsearch.model.inference import prepare_for_inference, random_inputs, time_calls
from hsearch.cost.protocol import num_threads
from hsearch.trial.latency import stats_from_times


def bench_latency(
    layouts: list[BenchModel],
    seq_lens: list[int],
    *,
    batch: int = 1,
    threads: int | None = None,
    device: str = "cpu",
    dims: str = "base",
    warmup: int = 2,
    runs: int = 10,
    path: str = "auto",
    compile: bool | None = None,
    seconds_per_length: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure every layout at every length with the reference; returns a report dict.

    ``runs`` is an upper bound: at long lengths it shrinks (to no fewer than 3) so that one
    length takes about ``seconds_per_length``.
    """
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA device is available")
    say = progress or (lambda _msg: None)
    dim = dims_for(dims)
    max_len = max(seq_lens)
    rows: list[dict[str, Any]] = []
    with num_threads(threads) as used:
        hybrids = [(e, build_hybrid(e, dim, max_len).eval()) for e in layouts]
        refs = {n: build_reference(n, dim, max_len).eval() for n in sorted({num_layers(e) for e in layouts})}
        for seq_len in seq_lens:
            entries: list[tuple[str, str, bool, torch.nn.Module, int]] = [
                (f"{REFERENCE_NAME}Model ({n} layers)", "S" * n + ":post", True, m, n) for n, m in refs.items()
            ] + [(e.name, str(layout_of(e)), False, m, num_layers(e)) for e, m in hybrids]
            prepared, inputs = [], []
            for name, _, is_ref, model, _ in entries:
                say(f"seq {seq_len}: preparing {name}")
                # The reference stays on the plain path: transformers' eager fp32 forward.
                prep = prepare_for_inference(model, device, path="fp32-eager" if is_ref else path,
                                             seq_len=seq_len, batch_size=batch, compile=compile)
                prepared.append(prep)
                inputs.append(random_inputs(model, seq_len, batch, device))
            fns = [p.forward for p in prepared]
            t0 = time.perf_counter()
            first = time_calls(fns, inputs, warmup=warmup, runs=1, device=device)
            round_s = max(time.perf_counter() - t0, 1e-6) / (warmup + 1)
            more = max(2, min(runs - 1, math.floor(seconds_per_length / round_s) - 1))
            say(f"seq {seq_len}: timing {len(fns)} models x {more + 1} runs (~{round_s * (more + 1):.0f}s)")
            rest = time_calls(fns, inputs, warmup=0, runs=more, device=device)
            times = [a + b for a, b in zip(first, rest)]
            ref_runs = {n: t for (_, _, is_ref, _, n), t in zip(entries, times) if is_ref}
            ref_med = {n: statistics.median(t) for n, t in ref_runs.items()}
            for (name, layout, is_ref, model, n), prep, t in zip(entries, prepared, times):
                st = stats_from_times(t, path=prep.path, threads=used, device=device, seq_len=seq_len,
                                      batch_size=batch)
                flops = encoder_flops(layout, batch=batch, seq_len=seq_len, hidden=dim["hidden_size"],
                                      intermediate=dim["intermediate_size"],
                                      window=getattr(model.config, "local_window", None))
                rows.append({
                    "name": name, "layout": layout, "reference": is_ref, "seq_len": seq_len, "batch": batch,
                    "median_ms": st.median_ms, "spread_ms": st.spread_ms, "runs": len(t), "runs_ms": t,
                    "path": st.path + (" (HF sdpa)" if is_ref else ""),
                    "ref_median_ms": ref_med[n], "ratio_to_ref": st.median_ms / ref_med[n],
                    # Median of run-by-run ratios: the runs are interleaved, so load drift cancels.
                    "paired_ratio_to_ref": statistics.median(a / b for a, b in zip(t, ref_runs[n])),
                    "params": count_params(model), "encoder_gflops": flops / 1e9,
                    "gflops_per_s": flops / 1e9 / (st.median_ms / 1000.0),
                    "auto_candidates_ms": prep.candidates_ms,
                })
    report = {
        "kind": "latency",
        "hardware": hardware_info(device, threads=used),
        "settings": {"layouts": [e.layout for e in layouts], "seq_lens": seq_lens, "batch": batch,
                     "threads": used, "device": str(torch.device(device)), "dims": dims, **dim,
                     "warmup": warmup, "max_runs": runs, "path": path, "compile": compile},
        "rows": rows,
    }
    report["targets"] = latency_targets(rows, device=str(torch.device(device)))
    return report


def _kind_rows(rows: list[dict], letters: str) -> dict[int, dict]:
    """Rows of the (first) hybrid layout made only of ``letters``, by length."""
    for row in rows:
        if not row["reference"] and set(row["layout"].split(":")[0]) == set(letters):
            name = row["name"]
            return {r["seq_len"]: r for r in rows if r["name"] == name}
    return {}


def latency_targets(rows: list[dict], *, device: str) -> list[dict[str, Any]]:
    """The bench's latency targets (CPU 211-token speed-up over BERT, A vs S at length >= 512, A's
    near-linear growth past 1024), evaluated on what was measured (met None: not measured)."""
    out: list[dict[str, Any]] = []
    if device == "cpu":
        base = [r for r in rows if r["name"] == "bert-base" and r["seq_len"] == 211 and r["batch"] == 1]
        out.append({
            "target": "CPU, 211 tokens, batch 1: bert-base layout <= 0.6x transformers.BertModel eager fp32",
            "value": (f"{base[0]['ratio_to_ref']:.3f}x of medians, {base[0]['paired_ratio_to_ref']:.3f}x paired "
                      f"({base[0]['path']})") if base else None,
            "met": (base[0]["paired_ratio_to_ref"] <= 0.6) if base else None,
        })
    all_s, all_a = _kind_rows(rows, "S"), _kind_rows(rows, "A")
    long = sorted(n for n in set(all_s) & set(all_a) if n >= 512)
    if long:
        # Both were timed interleaved against the same reference runs: compare paired ratios.
        ratios = {n: all_a[n]["paired_ratio_to_ref"] / all_s[n]["paired_ratio_to_ref"] for n in long}
        out.append({
            "target": "all-A faster than all-S at every length >= 512",
            "value": ", ".join(f"{n}: A/S={r:.2f}" for n, r in ratios.items()),
            "met": all(r < 1.0 for r in ratios.values()),
        })
    for letters, label in (("A", "all-A"), ("S", "all-S")):
        rs = _kind_rows(rows, letters)
        lens = sorted(n for n in rs if n >= 1024)
        pairs = [(a, b) for a, b in zip(lens, lens[1:]) if b == 2 * a]
        if not pairs:
            continue
        # Per-token latency growth per doubling: 1.0 = exactly linear, 2.0 = quadratic.
        growth = {f"{a}->{b}": (rs[b]["median_ms"] / b) / (rs[a]["median_ms"] / a) for a, b in pairs}
        out.append({
            "target": f"{label}: per-token latency growth per doubling past 1024"
                      + (" <= 1.2x (about linear)" if letters == "A" else " (for comparison; grows faster)"),
            "value": ", ".join(f"{k}: {v:.2f}x" for k, v in growth.items()),
            "met": all(v <= 1.2 for v in growth.values()) if letters == "A" else None,
        })
    return out
