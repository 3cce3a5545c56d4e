"""Inference fast paths: the same encoder, run the fastest way this device allows.

A *path* is ``"<dtype>-<mode>"``; the device is prefixed when it is recorded
(``"cpu-fp32-eager"``, ``"cuda-bf16-compile"``):

* ``fp32-eager``   the model as trained, float32, no compilation (the plain path);
* ``bf16-eager``   weights and activations in bfloat16 (fast only where the CPU has native
  bf16 matrix units — AMX / AVX512-BF16 — or on a GPU);
* ``fp16-eager``   float16 (GPU only);
* ``fp32-compile`` / ``bf16-compile``  ``torch.compile`` (Inductor); on the CPU with weight
  freezing, which constant-folds the weights and pre-packs them for oneDNN GEMMs;
* ``int8-dynamic`` dynamically quantised int8 linear layers (CPU, FBGEMM); numerics change
  by ~1e-2, so it is only used when asked for, never by ``auto``.

``auto`` times the eligible candidates on the caller's shape and keeps the fastest, so the
latency objective always reports the best path it found together with its name. Compiled
candidates join ``auto`` on CUDA by default and on the CPU only with ``compile=True``,
since Inductor on a CPU costs tens of seconds of compilation per model.

The caller's module is never modified: dtype changes and quantisation act on a copy.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import statistics
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch

from hsearch.errors import HsearchError

PATHS = ("fp32-eager", "bf16-eager", "fp16-eager", "fp32-compile", "bf16-compile", "int8-dynamic")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class InferencePathError(HsearchError, ValueError):
    """An inference path that does not exist or cannot run on this device."""


@dataclass
class PreparedModel:
    """A ready-to-time callable, the module behind it and the path's recorded name."""

    forward: Callable[..., Any]
    module: torch.nn.Module
    path: str  # device-qualified, e.g. "cpu-fp32-eager"
    candidates_ms: dict[str, float] = field(default_factory=dict)  # auto's trial timings


def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 matrix instructions (else bf16 is emulated and slow)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:  # non-Linux: trust torch's capability string only
        flags = ""
    cap = torch.backends.cpu.get_cpu_capability()
    return "amx_bf16" in flags or "avx512_bf16" in flags or "AMX" in cap.upper()


def available_paths(device: str | torch.device) -> tuple[str, ...]:
    """Paths that can run on ``device`` (not necessarily fast there)."""
    if torch.device(device).type == "cuda":
        return tuple(p for p in PATHS if p != "int8-dynamic")
    return tuple(p for p in PATHS if not p.startswith("fp16"))


def auto_candidates(device: str | torch.device, *, compile: bool | None = None) -> tuple[str, ...]:
    """The paths ``auto`` tries on ``device``: exact or bf16 numerics only."""
    cuda = torch.device(device).type == "cuda"
    compile = cuda if compile is None else compile
    low = "bf16" if cuda or cpu_has_native_bf16() else None
    cands = ["fp32-eager"]
    if low:
        cands.append(f"{low}-eager")
    if compile:
        cands.append("fp32-compile")
        if low:
            cands.append(f"{low}-compile")
    return tuple(cands)


def random_inputs(model: torch.nn.Module, seq_len: int, batch_size: int, device) -> dict[str, torch.Tensor]:
    """Deterministic un-padded encoder inputs: ids in ``[1, vocab_size)``.

    No attention mask is passed: without padding it would be all ones, and both our model
    and transformers' BERT would drop it anyway (so SDPA can use its fused kernel).
    """
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 0) or 1000)
    gen = torch.Generator().manual_seed(1234)
    ids = torch.randint(1, max(2, vocab), (batch_size, seq_len), generator=gen)
    return {"input_ids": ids.to(device)}


def _compile(module: torch.nn.Module, device_type: str) -> Callable[..., Any]:
    if device_type == "cpu":
        # Freezing folds the (now constant) weights and lets Inductor pre-pack them for oneDNN.
        return torch.compile(module, dynamic=False, options={"freezing": True})
    # On a GPU a batch-1 forward is bound by kernel launches: CUDA graphs replay them at once.
    return torch.compile(module, dynamic=False, mode="reduce-overhead")


def _build(model: torch.nn.Module, device: torch.device, path: str) -> PreparedModel:
    if path not in available_paths(device):
        raise InferencePathError(
            f"inference path {path!r} is not available on {device.type} "
            f"(allowed: auto, {', '.join(available_paths(device))})"
        )
    dtype_name, mode = path.split("-")
    module = model
    if mode == "dynamic":  # int8 dynamic quantisation of every nn.Linear (CPU / FBGEMM)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's migration notice
            module = torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(model).float().cpu().eval(), {torch.nn.Linear}, dtype=torch.qint8
            )
    else:
        dtype = _DTYPES[dtype_name]
        first = next(iter(model.parameters()), None)
        needs_copy = first is not None and (first.dtype != dtype or first.device != device)
        module = copy.deepcopy(model) if needs_copy else model
        module = module.to(device=device, dtype=dtype)
    module.eval()
    forward = _compile(module, device.type) if mode == "compile" else module
    return PreparedModel(forward=forward, module=module, path=f"{device.type}-{path}")


@contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage-collection pauses inside timed runs (as :mod:`timeit` does)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_calls(fns: Sequence[Callable[..., Any]], inputs: Sequence[dict], *, warmup: int, runs: int,
               device: str | torch.device, clock: Callable[[], float] = time.perf_counter,
               grad: bool = False) -> list[list[float]]:
    """The one timing loop: ``warmup`` untimed calls of every ``fns[i](**inputs[i])``, then
    ``runs`` rounds in which each is timed alone (ms), round-robin.

    Under ``torch.inference_mode`` (unless ``grad``: training steps, which need autograd),
    with the garbage collector paused; on CUDA the device is
    synchronised before and after every timed call. Round-robin means run r of every model
    happens at about the same moment, so load drift on a shared machine hits them alike.
    ``clock`` (seconds) is injectable so the protocol can be tested without real timing.
    """
    cuda = torch.device(device).type == "cuda"
    out: list[list[float]] = [[] for _ in fns]
    with (contextlib.nullcontext() if grad else torch.inference_mode()), gc_paused():
        for fn, inp in zip(fns, inputs):
            for _ in range(warmup):
                fn(**inp)
        if cuda:
            torch.cuda.synchronize()
        for _ in range(runs):
            for times, fn, inp in zip(out, fns, inputs):
                if cuda:
                    torch.cuda.synchronize()
                t0 = clock()
                fn(**inp)
                if cuda:
                    torch.cuda.synchronize()
                times.append((clock() - t0) * 1000.0)
    return out


def _quick_time(prepared: PreparedModel, inputs: dict, runs: int) -> float:
    """``auto``'s estimate of one candidate: median ms of ``runs`` after two warm-up calls
    (which also pay a compiled path's compilation)."""
    (times,) = time_calls([prepared.forward], [inputs], warmup=2, runs=runs,
                             device=inputs["input_ids"].device)
    return statistics.median(times)


def prepare_for_inference(
    model: torch.nn.Module,
    device: str | torch.device = "cpu",
    *,
    path: str = "auto",
    seq_len: int = 128,
    batch_size: int = 1,
    compile: bool | None = None,
    trial_runs: int = 3,
) -> PreparedModel:
    """Return ``model`` prepared for fast inference on ``device`` along one path.

    ``path="auto"`` builds each candidate of :func:`auto_candidates`, times it on random
    inputs of ``[batch_size, seq_len]`` and keeps the fastest; ``PreparedModel.path``
    records the winner and ``candidates_ms`` what each candidate took.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InferencePathError("device 'cuda' asked for but no CUDA device is available")
    if path != "auto":
        # Accept a device-qualified name as recorded, e.g. "cpu-fp32-eager".
        bare = path.split("-", 1)[1] if path.split("-", 1)[0] in ("cpu", "cuda") else path
        if bare not in PATHS:
            raise InferencePathError(f"unknown inference path {path!r} (allowed: auto, {', '.join(PATHS)})")
        return _build(model, device, bare)
    cands = auto_candidates(device, compile=compile)
    if len(cands) == 1:
        return _build(model, device, cands[0])
    inputs = random_inputs(model, seq_len, batch_size, device)
    best: PreparedModel | None = None
    timings: dict[str, float] = {}
    for cand in cands:
        prepared = _build(model, device, cand)
        timings[prepared.path] = _quick_time(prepared, inputs, trial_runs)
        if best is None or timings[prepared.path] < timings[best.path]:
            best = prepared
    best.candidates_ms = timings
    return best
