"""``hsearch bench train``: MLM pretraining throughput of layouts vs ``transformers.BertForMaskedLM``.

Every model trains the same way for ``steps`` timed steps after ``warmup_steps``: un-padded
batches (no attention mask, so SDPA can take its flash kernel), 15% of positions masked
(a fixed count per row, so shapes never change and compiled graphs are reused), AdamW
(fused on CUDA), bf16 autocast or fp32. The hybrid model's sparse MLM head computes logits
only at masked positions; the reference is ``BertForMaskedLM`` as shipped (SDPA attention,
logits everywhere), measured in the same run. MFU uses the analytic FLOPs of
:mod:`hsearch.bench.flops` and the device's dense bf16 peak where known.
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import time
from typing import Any, Callable

import torch

from hsearch.bench.flops import mlm_forward_flops, peak_flops, train_step_flops
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
from hsearch.trial.hardware import hardware_info
from hsearch.cost.protocol import iqr

PRECISIONS = ("bf16", "fp32")


def mlm_batches(count: int, *, batch: int, seq_len: int, vocab: int, mask_prob: float,
                device: torch.device, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` random (input_ids, labels) pairs with exactly round(mask_prob·T) masked per row."""
    gen = torch.Generator().manual_seed(seed)
    masked = max(1, round(mask_prob * seq_len))
    out = []
    for _ in range(count):
        ids = torch.randint(5, vocab, (batch, seq_len), generator=gen)
        pos = torch.rand(batch, seq_len, generator=gen).argsort(dim=1)[:, :masked]
        labels = torch.full_like(ids, -100)
        labels.scatter_(1, pos, ids.gather(1, pos))
        inputs = ids.scatter(1, pos, 4)  # 4 stands for [MASK]; any fixed id does
        out.append((inputs.to(device), labels.to(device)))
    return out


def _compile_parts(model: torch.nn.Module) -> None:
    """Compile encoder and head separately: the sparse head's boolean gather has a
    data-dependent shape, which would otherwise split one graph in an awkward place."""
    for name in ("bert", "lm_head", "cls"):
        part = getattr(model, name, None)
        if part is not None:
            part.compile(dynamic=False)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # CPU: the process's resident high-water mark (cumulative over the run, Linux KiB).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_one(model: torch.nn.Module, batches: list, *, steps: int, warmup_steps: int, precision: str,
              compile: bool, device: torch.device, lr: float = 1e-4) -> dict[str, Any]:
    """Train ``model`` for warm-up + ``steps`` steps; per-step times (ms), losses, peak memory."""
    model.to(device).train()
    if compile:
        _compile_parts(model)
    fused = {"fused": True} if device.type == "cuda" else {"foreach": True}
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, **fused)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times, losses = [], []
    for step in range(warmup_steps + steps):
        ids, labels = batches[step % len(batches)]
        t0 = time.perf_counter()
        with autocast:
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - t0
        if step >= warmup_steps:
            times.append(elapsed * 1000.0)
        losses.append(float(loss.detach()))
    return {"step_ms": times, "losses": losses, "peak_mem_mb": _peak_memory_mb(device)}


def bench_train(
    layouts: list[BenchModel],
    *,
    seq_len: int = 128,
    batch: int | None = None,
    steps: int = 20,
    warmup_steps: int = 3,
    precision: str = "bf16",
    compile: bool = False,
    device: str | None = None,
    dims: str = "base",
    reference: bool = True,
    mask_prob: float = 0.15,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Throughput of each layout (and the reference) under identical training; a report dict."""
    if precision not in PRECISIONS:
        raise BenchError(f"--precision {precision!r} (allowed: {', '.join(PRECISIONS)})")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA device is available")
    for flag, value in (("--steps", steps), ("--seq-len", seq_len)):
        if value < 1:
            raise BenchError(f"{flag} {value}: must be a positive integer")
    say = progress or (lambda _msg: None)
    dim = dims_for(dims)
    batch = batch or (32 if dev.type == "cuda" else 4)
    masked = max(1, round(mask_prob * seq_len)) * batch
    batches = mlm_batches(4, batch=batch, seq_len=seq_len, vocab=dim["vocab_size"], mask_prob=mask_prob,
                          device=dev)
    hw = hardware_info(dev)
    peak = peak_flops(hw["device_name"], precision) if dev.type == "cuda" else None
    entries: list[tuple[str, str, bool, Callable[[], torch.nn.Module], int]] = []
    if reference:
        for n in sorted({num_layers(e) for e in layouts}):
            entries.append((f"{REFERENCE_NAME}ForMaskedLM ({n} layers)", "S" * n + ":post", True,
                            lambda n=n: build_reference(n, dim, seq_len, mlm=True), n))
    for e in layouts:
        entries.append((e.name, str(layout_of(e)), False, lambda e=e: build_hybrid(e, dim, seq_len, mlm=True),
                        num_layers(e)))
    rows = []
    for name, layout, is_ref, build, layers in entries:
        say(f"train {name}: {warmup_steps}+{steps} steps, batch {batch}x{seq_len}, {precision}"
            + (", compiled" if compile else ""))
        model = build()
        params = count_params(model)
        window = getattr(model.config, "local_window", None)  # L's executed FLOPs depend on it
        result = train_one(model, batches, steps=steps, warmup_steps=warmup_steps, precision=precision,
                           compile=compile, device=dev)
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        step_ms = statistics.median(result["step_ms"])
        # The reference's head computes logits at every position; ours only at masked ones.
        flops = train_step_flops(mlm_forward_flops(
            layout, batch=batch, seq_len=seq_len, hidden=dim["hidden_size"],
            intermediate=dim["intermediate_size"], vocab=dim["vocab_size"],
            masked_tokens=None if is_ref else masked, window=window))
        achieved = flops / (step_ms / 1000.0)
        rows.append({
            "name": name, "layout": layout, "reference": is_ref, "layers": layers, "seq_len": seq_len,
            "batch": batch, "precision": precision, "compile": compile, "steps": steps,
            "step_ms": step_ms, "step_ms_spread": iqr(result["step_ms"]),
            "tokens_per_s": batch * seq_len / (step_ms / 1000.0),
            "peak_mem_mb": result["peak_mem_mb"],
            "peak_mem_kind": "torch.cuda.max_memory_allocated" if dev.type == "cuda" else "process max RSS",
            "train_flops_per_step": flops, "tflops_per_s": achieved / 1e12,
            "mfu": achieved / peak if peak else None,
            "loss_first": result["losses"][0], "loss_last": result["losses"][-1], "params": params,
        })
    refs = {r["layers"]: r for r in rows if r["reference"]}
    for row in rows:
        ref = refs.get(row["layers"])
        row["speedup_vs_ref"] = row["tokens_per_s"] / ref["tokens_per_s"] if ref else None
    report = {
        "kind": "train",
        "hardware": hw,
        "settings": {"layouts": [e.layout for e in layouts], "seq_len": seq_len, "batch": batch,
                     "steps": steps, "warmup_steps": warmup_steps, "precision": precision, "compile": compile,
                     "device": str(dev), "dims": dims, **dim, "mask_prob": mask_prob,
                     "peak_flops": peak},
        "rows": rows,
    }
    return report
