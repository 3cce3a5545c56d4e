"""The timing protocol every latency and step-time figure follows (trials, the cost model, bench).

Runs are timed one call at a time, interleaved round-robin when several functions are
measured together (:func:`hsearch.model.inference.time_calls`), and summarised by their
median, inter-quartile range and *steady* time: the lowest median over consecutive blocks
of runs. Other processes on a shared machine only ever add time, in bursts longer than one
run, so the quietest block is what a call costs on an idle machine.
"""

from __future__ import annotations

import statistics
from contextlib import contextmanager
from typing import Iterator

import torch

BLOCK = 5  # runs per block of the steady-time rule


def quartiles(values: list[float]) -> tuple[float, float]:
    """First and third quartiles (inclusive method: they lie within the data); one value: itself."""
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def iqr(values: list[float]) -> float:
    """Inter-quartile range: the spread every latency and step-time figure is reported with."""
    q1, q3 = quartiles(values)
    return q3 - q1


def steady(times: list[float], block: int = BLOCK) -> float:
    """Lowest median over consecutive blocks of ``block`` runs (a short last block joins the one before)."""
    starts = list(range(0, max(len(times) - block, 0) + 1, block))
    ends = starts[1:] + [len(times)]
    return min(statistics.median(times[a:b]) for a, b in zip(starts, ends))


@contextmanager
def num_threads(threads: int | None) -> Iterator[int]:
    """Temporarily set torch's intra-op thread count; yields the count in effect."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
