"""hsearch.fidelity: rung step plans, multi-objective promotion order, Spearman's rho."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from optuna.study._multi_objective import _fast_non_domination_rank

from hsearch.fidelity import (
    RungPlan,
    check_rungs,
    crowding_distances,
    mo_order,
    nondominated_ranks,
    promotion_quota,
    spearman,
)
from hsearch.trial import load_recipe
from hsearch.trial.recipe import RecipeError


def test_rung_plan_steps_by_hand():
    plan = RungPlan.build(900, check_rungs(["1/9", "1/3", 1]), decay=0.2, warmup=0.1)
    assert plan.ends == (100, 300, 900)
    assert plan.stable_ends == (80, 240, 720)
    assert plan.warmup_steps == 10  # 10% of the first rung
    assert plan.trunk_factor(0) == pytest.approx(0.1) and plan.trunk_factor(9) == 1.0 and plan.trunk_factor(500) == 1.0
    # Rung 1's decay: 60 steps from 60/61 of the peak down to 1/61.
    assert plan.decay_factor(240, 1) == pytest.approx(60 / 61)
    assert plan.decay_factor(299, 1) == pytest.approx(1 / 61)
    with pytest.raises(ValueError, match="not in rung 1's decay"):
        plan.decay_factor(300, 1)
    # From scratch to the top: 900 trunk+top-decay steps plus the two lower branches (20 + 60).
    assert plan.steps_to_run(2, resumed=False) == 980
    assert plan.steps_to_run(2, resumed=True) == 900 - 240


def test_rung_plan_refuses_rungs_the_budget_cannot_separate():
    with pytest.raises(ValueError, match="too few for these rungs"):
        RungPlan.build(3, [1 / 9, 1 / 3, 1.0], decay=0.2, warmup=0.0)


@pytest.mark.parametrize("rungs, why", [(["1/3", "1/9", 1], "increase strictly"), (["1/9", "1/2"], "must end at 1"),
                                         (["a/b", 1], "not a fraction"), ([0, 1], r"not in \(0, 1\]"), ([], "at least one")])
def test_bad_rungs_are_named(rungs, why):
    with pytest.raises(ValueError, match=why):
        check_rungs(rungs)


def test_recipe_fidelity_checks():
    with pytest.raises(RecipeError, match="fidelity.rungs.*needs pretrain.schedule: wsd"):
        load_recipe("cpu-small", {"fidelity.rungs": ["1/3", 1], "pretrain.schedule": "linear"})
    with pytest.raises(RecipeError, match="'wsd' needs the step count before training"):
        load_recipe("cpu-small", {"pretrain.schedule": "wsd", "pretrain.charge": "wall-clock"})
    with pytest.raises(RecipeError, match="fidelity.eta"):
        load_recipe("cpu-small", {"fidelity.eta": 1})
    with pytest.raises(RecipeError, match="fidelity.rungs.*must end at 1"):
        load_recipe("cpu-small", {"fidelity.rungs": ["1/9", "1/3"]})


def test_nondominated_ranks_match_optunas_sort():
    rng = random.Random(3)
    for _ in range(20):
        pts = [(round(rng.random(), 1), round(rng.random(), 1)) for _ in range(rng.randint(1, 25))]
        # Optuna ranks losses (lower is better): negate the maximised first objective.
        ref = _fast_non_domination_rank(np.array([(-a, b) for a, b in pts]))
        assert nondominated_ranks(pts, [True, False]) == list(ref)


def test_crowding_distance_by_hand():
    # One layer of four points on a line: extremes infinite, inner ones the normalised gaps.
    pts = [(0.0, 4.0), (1.0, 3.0), (3.0, 1.0), (4.0, 0.0)]
    d = crowding_distances(pts)
    assert math.isinf(d[0]) and math.isinf(d[3])
    assert d[1] == pytest.approx((3 - 0) / 4 + (4 - 1) / 4)
    assert d[2] == pytest.approx((4 - 1) / 4 + (3 - 0) / 4)


def test_mo_order_ranks_then_spread_then_number():
    # Maximise accuracy, minimise latency.
    pts = [(0.5, 10.0), (0.6, 12.0), (0.4, 9.0), (0.45, 11.0), (0.55, 11.0), (0.3, 20.0)]
    order = mo_order(pts, [True, False])
    # Front {0, 1, 2, 4}: extremes 1 and 2 first (infinite crowding), then 0 and 4 by their gaps.
    assert set(order[:4]) == {0, 1, 2, 4} and order[:2] == [1, 2]
    assert order[4:] == [3, 5]
    assert promotion_quota(len(pts), 3) == 2 and promotion_quota(2, 3) == 0


def test_spearman_against_ranks_and_a_tied_example():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    rank = lambda v: np.argsort(np.argsort(v))  # no ties in continuous data
    assert spearman(list(x), list(y)) == pytest.approx(np.corrcoef(rank(x), rank(y))[0, 1])
    # Ties: ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4] -> Pearson of the ranks.
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1])
    assert spearman([1, 2], [2, 1]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


def test_asha_promotes_the_best_paused_layout_of_the_highest_rung():
    from hsearch.fidelity import Entry, next_promotion, over_cap

    rung0 = [Entry(n, s, 10.0) for n, s in enumerate([0.1, 0.5, 0.3, 0.2, 0.4, 0.05])]
    # 6 results at rung 0: the top 2 (numbers 1 and 4) may go up; 1 already did.
    assert next_promotion({0: rung0}, {4: 0, 2: 0, 0: 0}, eta=3) == (4, 1)
    assert next_promotion({0: rung0}, {2: 0, 0: 0}, eta=3) is None  # 2 is third: outside the quota
    # A higher rung goes first: 3 results at rung 1, its best paused one (1) goes to rung 2.
    rung1 = [Entry(1, 0.6, 10.0), Entry(4, 0.55, 10.0), Entry(2, 0.4, 10.0)]
    assert next_promotion({0: rung0, 1: rung1}, {1: 1, 4: 1, 0: 0}, eta=3) == (1, 2)
    # Over a cap of 2 paused states: rung 0's worst paused ones go first (5, then 0), rung 1's last.
    paused = {0: 0, 2: 0, 5: 0, 4: 1}
    assert over_cap({0: rung0, 1: rung1}, paused, cap=2) == [5, 0]
    assert over_cap({0: rung0, 1: rung1}, paused, cap=0) == [5, 0, 2, 4]
    assert over_cap({0: rung0, 1: rung1}, paused, cap=4) == []
