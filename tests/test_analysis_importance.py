"""layer_effects: per-layer mean objective differences, against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from hsearch.analysis.importance import layer_effects
from hsearch.analysis.study import Objective, TrialRecord


def _rec(number, layout, values, state="COMPLETE"):
    return TrialRecord(number=number, state=state, layout=layout, values=values, attrs={}, params={},
                       datetime_start=None, datetime_complete=None)


RECS = [
    _rec(0, "SA:post", (0.8, 10.0)),
    _rec(1, "AA:post", (0.6, 6.0)),
    _rec(2, "SS:sub", (0.7, 14.0)),
    _rec(3, "SAS:pre", (0.9, 12.0)),
    _rec(4, "AA:sub", None, state="FAIL"),  # not complete: ignored
    _rec(5, "SX:post", (0.1, 1.0)),  # a layout this version cannot parse: ignored
    _rec(6, "SS:post", (float("nan"), 3.0)),  # a non-finite value is not complete: ignored
]
OBJS = [Objective("accuracy", "maximize"), Objective("latency_ms", "minimize")]


def _close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (math.isnan(g) and math.isnan(w)) or g == pytest.approx(w), (got, want)


def test_layer_effects_by_hand():
    eff = layer_effects(RECS, OBJS)
    # Four usable trials; the longest layout has 3 layers.
    assert eff.num_layers == 3
    # Means over all four: accuracy (0.8+0.6+0.7+0.9)/4 = 0.75; latency (10+6+14+12)/4 = 10.5.
    # Layer 0: S in trials 0, 2, 3 (accuracy mean 0.8, latency 12), A in trial 1 (0.6, 6).
    # Layer 1: S in trial 2 (0.7, 14); A in trials 0, 1, 3 (0.7667, 9.3333).
    # Layer 2: only trial 3 has it: S (0.9, 12).
    nan = math.nan
    _close(eff.kinds["accuracy"]["S"], [0.05, -0.05, 0.15])
    _close(eff.kinds["accuracy"]["A"], [-0.15, 2.3 / 3 - 0.75, nan])
    _close(eff.kinds["accuracy"]["L"], [nan, nan, nan])
    _close(eff.kinds["latency_ms"]["S"], [1.5, 3.5, 1.5])
    _close(eff.kinds["latency_ms"]["A"], [-4.5, 28.0 / 3 - 10.5, nan])
    # Norms: post in trials 0, 1 (0.7, 8); sub in trial 2 (0.7, 14); pre in trial 3 (0.9, 12).
    _close(eff.norms["accuracy"]["post"], [-0.05, -0.05, nan])
    _close(eff.norms["accuracy"]["sub"], [-0.05, -0.05, nan])
    _close(eff.norms["accuracy"]["pre"], [0.15, 0.15, 0.15])
    _close(eff.norms["latency_ms"]["post"], [-2.5, -2.5, nan])
    _close(eff.norms["latency_ms"]["sub"], [3.5, 3.5, nan])
    assert eff.counts_kind["S"] == [3, 1, 1] and eff.counts_kind["A"] == [1, 3, 0] and eff.counts_kind["L"] == [0, 0, 0]
    assert eff.counts_norm["post"] == [2, 2, 0] and eff.counts_norm["pre"] == [1, 1, 1]
    assert eff.counts_norm["sub"] == [1, 1, 0]


def test_no_usable_trials():
    eff = layer_effects([_rec(0, "SA:post", None, state="FAIL")], OBJS)
    assert eff.num_layers == 0 and eff.kinds["accuracy"]["S"] == []
