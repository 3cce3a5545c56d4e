"""Intervals and separable dominance against hand-computed cases (pure Python, no training).

The Student-t table is checked against quantiles computed here independently: Simpson
integration of the t density (standard library only), bisected for F(t) = 0.975, and the closed
forms for df 1 and 2.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from hsearch.front import dominates, robust_front_indices, separably_dominates
from hsearch.intervals import T975, Z975, spread, t975
from hsearch.search.robust import interval, key, robust_front
from hsearch.search.reevaluate import aggregate
from hsearch.trial.result import TaskScore, TrialResult

INF = math.inf
UP_DOWN = [True, False]  # score maximised, latency minimised


def _t_cdf(t: float, df: int, steps: int = 2000) -> float:
    """P(T <= t) for t >= 0: 1/2 plus Simpson's rule over the density on [0, t]."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)  # noqa: E731
    h = t / steps
    total = f(0) + f(t) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps))
    return 0.5 + total * h / 3


def _t_quantile(df: int, p: float = 0.975) -> float:
    lo, hi = 0.0, 20.0
    for _ in range(32):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def test_integrator_matches_the_closed_forms():
    assert _t_quantile(1) == pytest.approx(math.tan(math.pi * 0.475), abs=1e-6)  # Cauchy: 12.7062
    assert _t_quantile(2) == pytest.approx(math.sqrt(0.9025 * 2 / (1 - 0.9025)), abs=1e-6)  # 4.3027


@pytest.mark.parametrize("df", sorted(T975))
def test_t_table_entries_are_the_quantiles_to_three_decimals(df):
    assert abs(T975[df] - _t_quantile(df)) <= 0.0005 + 1e-6, (df, T975[df], _t_quantile(df))


def test_t975_between_entries_errs_wide_and_is_normal_far_out():
    for df in (31, 35, 45, 59, 61, 80, 99):
        assert t975(df) >= _t_quantile(df) - 1e-6  # never narrower than the exact interval
    assert t975(35) == T975[30] and t975(59) == T975[40] and t975(100) == T975[100]
    assert t975(101) == Z975 == 1.960
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError):
            t975(bad)


def test_spread_hand_computed():
    s = spread([1.0, 2.0, 3.0])
    # mean 2, s = sqrt(((1)^2 + 0 + 1^2) / 2) = 1, half = 4.303 * 1 / sqrt(3) = 2.484338...
    assert (s.n, s.mean, s.std) == (3, 2.0, 1.0)
    assert s.ci95 == pytest.approx((2 - 2.4843383, 2 + 2.4843383), abs=1e-6)
    s = spread([0.5, 0.7])
    # s = sqrt(2 * 0.1^2 / 1) = 0.1414214, half = 12.706 * 0.1414214 / sqrt(2) = 1.2706
    assert s.mean == pytest.approx(0.6) and s.std == pytest.approx(0.1414214, abs=1e-7)
    assert s.ci95 == pytest.approx((0.6 - 1.2706, 0.6 + 1.2706), abs=1e-9)
    assert s.half_width == pytest.approx(1.2706)
    one = spread([0.42])
    assert (one.n, one.mean, one.std, one.ci95, one.half_width) == (1, 0.42, None, None, None)
    same = spread([0.3, 0.3, 0.3, 0.3])
    assert same.std == 0.0 and same.ci95 == (0.3, 0.3)
    for bad in ([], [1.0, math.nan], [math.inf]):
        with pytest.raises(ValueError):
            spread(bad)


# A, B, ... as (score interval, latency interval): score maximised, latency minimised.
A = [(0.60, 0.70), (1.0, 1.2)]
B = [(0.50, 0.58), (1.3, 1.5)]  # below A on both beyond the intervals
B_OVERLAP = [(0.50, 0.65), (1.3, 1.5)]  # its means are worse than A's, but the scores overlap
TOUCH_BOTH = [(0.58, 0.70), (1.2, 1.3)]  # touches B on both objectives: not strictly beyond on any
TOUCH_ONE = [(0.58, 0.70), (1.0, 1.2)]  # touches B's score, beyond it on latency
NO_INTERVAL = [(-INF, INF), (0.5, 0.6)]


@pytest.mark.parametrize("a, b, expected", [
    (A, B, True), (B, A, False),
    (A, B_OVERLAP, False), (B_OVERLAP, A, False),
    (TOUCH_BOTH, B, False), (TOUCH_ONE, B, True),
    (A, A, False),
    (NO_INTERVAL, B, False), (A, NO_INTERVAL, False), (NO_INTERVAL, NO_INTERVAL, False),
])
def test_separable_dominance_hand_cases(a, b, expected):
    assert separably_dominates(a, b, UP_DOWN) is expected


def test_separable_dominance_of_zero_width_intervals_is_plain_dominance():
    rng = random.Random(7)
    for _ in range(2000):
        p = [rng.choice([0.1, 0.2, 0.3]), rng.choice([1.0, 2.0, 3.0])]
        q = [rng.choice([0.1, 0.2, 0.3]), rng.choice([1.0, 2.0, 3.0])]
        assert separably_dominates([(x, x) for x in p], [(x, x) for x in q], UP_DOWN) == dominates(p, q, UP_DOWN)


def test_separable_dominance_implies_dominance_of_the_means():
    rng = random.Random(3)
    for _ in range(2000):
        pts = []
        for _ in range(2):
            m = [rng.uniform(0, 1), rng.uniform(1, 2)]
            h = [rng.uniform(0, 0.2), rng.uniform(0, 0.2)]
            pts.append((m, [(m[0] - h[0], m[0] + h[0]), (m[1] - h[1], m[1] + h[1])]))
        (ma, ia), (mb, ib) = pts
        if separably_dominates(ia, ib, UP_DOWN):
            assert dominates(ma, mb, UP_DOWN)


def test_robust_front_indices_hand_case():
    # A separably dominates B; B_OVERLAP overlaps A on the score, so it stays; NO_INTERVAL stays.
    assert robust_front_indices([A, B, B_OVERLAP, NO_INTERVAL], UP_DOWN) == [0, 2, 3]
    assert robust_front_indices([B, TOUCH_ONE, TOUCH_BOTH], UP_DOWN) == [1, 2]


def _attrs(score, score_ci, lat, lat_ci, metric="mean_accuracy"):
    out = {key(metric, "mean"): score, key("latency_ms", "mean"): lat}
    if score_ci:
        out[key(metric, "ci95")] = list(score_ci)
    if lat_ci:
        out[key("latency_ms", "ci95")] = list(lat_ci)
    return out


def test_robust_front_from_stored_attrs():
    items = [
        (0, _attrs(0.65, A[0], 1.1, A[1])),
        (1, _attrs(0.54, B[0], 1.4, B[1])),
        (2, _attrs(0.57, B_OVERLAP[0], 1.4, B_OVERLAP[1])),
        (3, _attrs(0.55, None, 0.55, (0.5, 0.6))),  # one value: no score interval
        (4, {"mean_accuracy": 0.9}),  # not re-evaluated: not a member
    ]
    members = robust_front(items, ["mean_accuracy", "latency_ms"], UP_DOWN)
    assert [m.number for m in members] == [0, 1, 2, 3]
    assert {m.number: m.robust for m in members} == {0: True, 1: False, 2: True, 3: True}
    assert {m.number: m.dominated_by for m in members} == {0: [], 1: [0], 2: [], 3: []}
    assert members[0].dominates == [1]
    assert members[0].shown(0) == "0.6500 ± 0.0500" and members[3].shown(0) == "0.5500"
    assert interval(items[3][1], "mean_accuracy") == (0.55, -INF, INF)
    assert interval(items[4][1], "mean_accuracy") is None


def _result(seed, emotion, massive, mlm, latency):
    def task(name, scores):
        return TaskScore(name, "validation", "test", sum(scores) / len(scores), 0.0, 0.0, 0.0, 2, 10,
                         seeds=[seed + i for i in range(len(scores))], score_per_seed=list(scores),
                         report_per_seed=[s / 2 for s in scores])

    return TrialResult(status="complete", layout="SSSS:post", recipe_name="r", recipe_hash="h", seed=seed,
                       mlm_accuracy=mlm, tasks={"emotion": task("emotion", emotion), "massive": task("massive", massive)},
                       latency_ms=latency[0], latency_ms_repeats=list(latency), optimizer_steps=10)


def test_aggregate_one_pretraining_seed_hand_computed():
    run = _result(0, [0.5, 0.6, 0.7], [0.1, 0.2, 0.3], 0.25, [2.0, 2.2, 2.4])
    a = aggregate(None, [run], "mean_accuracy")
    assert a["reeval_seeds"] == 3 and a["reeval_pretrain_seeds"] == 1 and a["reeval_unit"] == "finetune-seed"
    assert a["reeval_emotion_accuracy_per_seed"] == [0.5, 0.6, 0.7]
    # per fine-tuning seed: the mean of the two tasks, (0.5+0.1)/2, (0.6+0.2)/2, (0.7+0.3)/2
    assert a["reeval_mean_accuracy_per_seed"] == pytest.approx([0.3, 0.4, 0.5])
    assert a["reeval_mean_accuracy_mean"] == pytest.approx(0.4) and a["reeval_mean_accuracy_n"] == 3
    assert a["reeval_mean_accuracy_std"] == pytest.approx(0.1)
    half = 4.303 * 0.1 / math.sqrt(3)
    assert a["reeval_mean_accuracy_ci95"] == pytest.approx([0.4 - half, 0.4 + half])
    assert a["reeval_latency_ms_per_seed"] == [2.0, 2.2, 2.4] and a["reeval_latency_ms_mean"] == pytest.approx(2.2)
    assert a["reeval_emotion_test_accuracy_per_seed"] == [0.25, 0.3, 0.35]
    assert a["reeval_mlm_accuracy_per_seed"] == [0.25] and "reeval_mlm_accuracy_ci95" not in a
    runs = json.loads(a["reeval_runs"])
    assert runs[0]["pretrain_seed"] == 0 and runs[0]["finetune_seeds"] == [0, 1, 2]


def test_aggregate_several_pretraining_seeds_uses_the_runs_as_units():
    runs = [_result(0, [0.5, 0.7], [0.1, 0.1], 0.2, [2.0, 2.0]),
            _result(1, [0.3, 0.3], [0.3, 0.5], 0.4, [3.0, 1.0])]
    a = aggregate(None, runs, "emotion_accuracy")
    assert a["reeval_pretrain_seeds"] == 2 and a["reeval_unit"] == "pretrain-seed"
    assert a["reeval_emotion_accuracy_per_seed"] == [0.5, 0.7, 0.3, 0.3]
    # units: the runs' means 0.6 and 0.3 -> mean 0.45, s = 0.212132, half = 12.706 * s / sqrt(2) = 1.9059
    assert a["reeval_emotion_accuracy_n"] == 2 and a["reeval_emotion_accuracy_mean"] == pytest.approx(0.45)
    assert a["reeval_emotion_accuracy_ci95"] == pytest.approx([0.45 - 1.9059, 0.45 + 1.9059])
    # latency pools all four repeats: mean 2, s = sqrt(2/3), half = 3.182 * s / 2
    assert a["reeval_latency_ms_n"] == 4 and a["reeval_latency_ms_mean"] == pytest.approx(2.0)
    half = 3.182 * math.sqrt(2 / 3) / 2
    assert a["reeval_latency_ms_ci95"] == pytest.approx([2 - half, 2 + half])
    assert a["reeval_mlm_accuracy_n"] == 2 and a["reeval_mlm_accuracy_mean"] == pytest.approx(0.3)
