"""Forward-pass latency of an encoder: the one measurement trials and ``hsearch bench`` share.

Protocol (kept identical everywhere so numbers are comparable):

* inputs are random token ids of shape ``[batch_size, seq_len]`` with no padding (so no
  attention mask), ids drawn from ``[1, vocab_size)`` with a fixed seed;
* the model is first prepared for inference by
  :func:`hsearch.model.inference.prepare_for_inference` (``path="auto"`` picks the fastest
  path measured on this device; an explicit path forces one) — the caller's model is
  never modified;
* ``warmup`` untimed forwards, then ``runs`` timed forwards under ``torch.inference_mode``,
  each timed alone with ``time.perf_counter`` (on CUDA after a ``synchronize`` on both
  sides), with Python's garbage collector paused -- the one timing loop,
  :func:`hsearch.model.inference.time_calls`, which ``auto`` and ``hsearch bench`` use too;
* the reported figures are the median and IQR of all runs, and the *steady* latency: the
  lowest median over consecutive blocks of ``block`` runs. Other processes on a shared
  machine only ever add time, in bursts that last longer than one run, so the quietest
  block is what the model costs on an idle machine and is the figure trials optimise (on
  2 shared vCPUs the plain median of one measurement moves by up to 50% between
  back-to-back measurements, the steady latency by under 7%);
* the thread count is set for the measurement only and restored afterwards.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

from hsearch.cost.protocol import BLOCK, iqr, num_threads, steady
from hsearch.errors import HsearchError
from hsearch.model.inference import time_calls


class LatencyError(HsearchError, ValueError):
    """Bad arguments to a latency measurement."""


@dataclass
class LatencyStats:
    median_ms: float
    spread_ms: float  # inter-quartile range of the timed runs
    steady_ms: float  # lowest median over blocks of consecutive runs
    runs_ms: list[float] = field(default_factory=list)
    path: str = "cpu-fp32-eager"  # the inference path that was timed
    threads: int = 1
    device: str = "cpu"
    seq_len: int = 0
    batch_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_args(seq_len, batch_size, warmup, runs, threads, device) -> None:
    for name, value, low in (("seq_len", seq_len, 1), ("batch_size", batch_size, 1), ("warmup", warmup, 0), ("runs", runs, 1)):
        if not isinstance(value, int) or value < low:
            raise LatencyError(f"measure_latency: {name}={value!r} must be an integer >= {low}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise LatencyError(f"measure_latency: threads={threads!r} must be a positive integer or None")
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        kind = str(device)
    if kind not in ("cpu", "cuda"):
        raise LatencyError(f"measure_latency: device={device!r} (allowed: cpu, cuda)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise LatencyError("measure_latency: device='cuda' but no CUDA device is available")


def measure_latency(
    model: torch.nn.Module,
    *,
    seq_len: int,
    batch_size: int = 1,
    warmup: int = 3,
    runs: int = 10,
    threads: int | None = None,
    device: str = "cpu",
    path: str = "auto",
    block: int = BLOCK,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencyStats:
    """Forward latency of ``model`` on un-padded random inputs: median, IQR and steady latency.

    ``path`` is one of :data:`hsearch.model.inference.PATHS` or ``"auto"``; the path
    actually timed is returned in ``LatencyStats.path`` (e.g. ``"cpu-fp32-eager"``).
    ``clock`` (seconds) times the runs; tests inject a fake one.
    """
    from hsearch.model.inference import prepare_for_inference, random_inputs

    _check_args(seq_len, batch_size, warmup, runs, threads, device)
    if not isinstance(block, int) or block < 1:
        raise LatencyError(f"measure_latency: block={block!r} must be an integer >= 1")
    with num_threads(threads) as used:
        prepared = prepare_for_inference(model, device, path=path, seq_len=seq_len, batch_size=batch_size)
        inputs = random_inputs(model, seq_len, batch_size, device)
        (times,) = time_calls([prepared.forward], [inputs], warmup=warmup, runs=runs, device=device, clock=clock)
    return stats_from_times(times, path=prepared.path, threads=used, device=device, seq_len=seq_len,
                            batch_size=batch_size, block=block)


def stats_from_times(times: list[float], *, path: str, threads: int, device: str, seq_len: int,
                     batch_size: int, block: int = BLOCK) -> LatencyStats:
    """Median / IQR / steady-latency summary of timed runs (ms)."""
    return LatencyStats(median_ms=statistics.median(times), spread_ms=iqr(times),
                        steady_ms=steady(times, block), runs_ms=list(times),
                        path=path, threads=threads, device=str(torch.device(device)),
                        seq_len=seq_len, batch_size=batch_size)
