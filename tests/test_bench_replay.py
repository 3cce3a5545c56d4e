"""The replay simulator on hand-made tables: compute accounting by hand, ASHA's rules, strategies."""

from __future__ import annotations

import json

import optuna
import pytest

from hsearch.bench.replay import Curve, Table, compare, hypervolume, reference, simulate
from hsearch.search.space import load_space


def _table(space, objectives, latencies, fractions, rung_score=lambda obj, r: obj, eta=3, top_seconds=300.0):
    curves = []
    layouts = []
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    while len(layouts) < len(objectives):
        lay = str(space.layout(space.suggest(study.ask())))
        if lay not in layouts:
            layouts.append(lay)
    for lay, obj, lat in zip(layouts, objectives, latencies):
        curves.append(Curve(lay, {}, tuple(rung_score(obj, r) for r in range(len(fractions))), obj, lat,
                            step_seconds=0.1, total_steps=900, eval_seconds=5.0, top_seconds=top_seconds))
    return Table({}, list(fractions), 0.2, 0.0, eta, curves)


def test_asha_compute_by_hand(repo_root):
    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    table = _table(space, [0.5, 0.7, 0.6], [10.0, 10.0, 10.0], [1 / 3, 1.0])
    # Rungs end at 300 and 900 steps and branch at 240 and 720. One slot: three layouts at rung 0
    # (300 steps + 5 s each), then the best (0.7) resumes from step 240 to 900 and fine-tunes.
    trace = simulate(table, space, "asha-random", seed=0, budget=10_000, workers=1)
    rung0 = 300 * 0.1 + 5
    top = (900 - 240) * 0.1 + 5 + 300
    assert trace.compute == [pytest.approx(3 * rung0 + top)]
    ref = reference(table)
    assert trace.hv == [pytest.approx(hypervolume([(0.7, 10.0)], ref))]
    assert ref == (0.0, pytest.approx(11.0))
    # Full fidelity pays 900 steps + 5 s + 300 s per layout and ends with all three.
    full = simulate(table, space, "random", seed=0, budget=10_000, workers=1)
    assert full.compute == [pytest.approx(k * (90 + 5 + 300)) for k in (1, 2, 3)]
    assert full.hv[-1] == pytest.approx(hypervolume([(0.5, 10.0), (0.7, 10.0), (0.6, 10.0)], ref))
    # A budget that cannot pay for the top rung ends with no top-rung result.
    assert simulate(table, space, "asha-random", seed=0, budget=3 * rung0 + top - 1, workers=1).hv == []


def test_asha_with_a_faithful_low_rung_needs_less_compute(repo_root):
    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    import random

    rng = random.Random(0)
    objectives = [rng.random() for _ in range(27)]
    latencies = [rng.uniform(5, 15) for _ in range(27)]
    table = _table(space, objectives, latencies, [1 / 9, 1 / 3, 1.0])
    full_cost = 27 * (90 + 5 + 300)
    cmp = compare(table, space, budget=full_cost, seeds=5, workers=2, strategies=("random", "asha-random"))
    target = cmp.median_at("random", full_cost)
    assert target == pytest.approx(hypervolume(list(zip(objectives, latencies)), reference(table)))
    asha = cmp.compute_to_reach("asha-random", 0.9 * target)
    full = cmp.compute_to_reach("random", 0.9 * target)
    assert asha is not None and full is not None and asha < full


def test_report_states_the_goal_the_table_front_and_rung_correlation(repo_root, tmp_path):
    from hsearch.bench.replay import write_report

    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    objectives, latencies = [0.4, 0.6, 0.5, 0.7, 0.3, 0.65], [5.0, 6.0, 4.0, 9.0, 3.0, 9.5]
    # rung 0 ranks exactly as the objective does; rung 1 exactly reversed
    table = _table(space, objectives, latencies, [1 / 9, 1 / 3, 1.0], rung_score=lambda o, r: o if r == 0 else -o)
    cmp = compare(table, space, budget=6 * (90 + 5 + 300), seeds=3, workers=2, strategies=("tpe", "asha-tpe"))
    md = write_report(cmp, table, tmp_path / "out", "t.jsonl").read_text()
    report = json.loads((tmp_path / "out" / "replay.json").read_text())
    # non-dominated by hand: (0.7, 9.0), (0.6, 6.0), (0.5, 4.0), (0.3, 3.0); (0.4, 5) and (0.65, 9.5) are dominated
    front = {(0.7, 9.0), (0.6, 6.0), (0.5, 4.0), (0.3, 3.0)}
    point = {c.layout: (c.objective, c.latency_ms) for c in table.curves}
    assert {point[lay] for lay in report["table_front"]} == front
    assert report["table_hypervolume"] == pytest.approx(hypervolume(sorted(front), reference(table)))
    assert report["rung_spearman"] == [pytest.approx(1.0), pytest.approx(-1.0)]
    assert "The table's own front: 4 of 6 layouts" in md and "rung 0 (0.111): +1.00, rung 1 (0.333): -1.00" in md
    assert "- asha-tpe: " in md and (tmp_path / "out" / "replay.png").stat().st_size > 0
    assert set(report["traces"]) == {"tpe", "asha-tpe"} and len(report["traces"]["tpe"]) == 3
    assert report["optuna"] == optuna.__version__ and f"Samplers: Optuna {optuna.__version__}" in md


def test_the_space_seeds_are_proposed_first_as_the_driver_queues_them(repo_root):
    from hsearch.bench.replay import _Proposer
    from hsearch.layout import resolve

    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    seeds = ["SSSSSSSSSSSS:post", "AAAAAAAAAAAA:post", "SASASASASASA:sub", "SSAAAAAAAASS:sub"]
    others = _table(space, [0.1] * 6, [1.0] * 6, [1.0]).curves
    layouts = [c.layout for c in others[:3]] + seeds + [c.layout for c in others[3:]]
    curves = [Curve(lay, space.params_for(resolve(lay)[0]), (0.5,), 0.5, 1.0, 0.1, 10, 1.0, 1.0) for lay in layouts]
    table = Table({}, [1.0], 0.2, 0.0, 3, curves)
    for sampler in ("random", "tpe", "nsga2"):
        proposer = _Proposer(table, space, sampler, seed=0)
        assert [layouts[proposer.propose()] for _ in range(4)] == seeds
        assert layouts[proposer.propose()] not in seeds


def test_unknown_strategy_is_named(repo_root):
    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    table = _table(space, [0.5], [1.0], [1.0])
    with pytest.raises(ValueError, match="unknown strategy 'bohb'"):
        simulate(table, space, "bohb", seed=0, budget=1.0)


def test_record_appends_resumes_and_loads(repo_root, shared_data, tmp_path, monkeypatch):
    from fixtures_search import TINY

    from hsearch.bench.replay import load_table, record
    from hsearch.trial import load_recipe

    monkeypatch.setenv("HSEARCH_CACHE", str(tmp_path / "cache"))
    recipe = load_recipe("cpu-small", {**TINY, "fidelity.rungs": ["1/9", "1/3", 1], "pretrain.schedule": "wsd",
                                       "pretrain.budget": "60 steps", "latency.enabled": False})
    space = load_space(repo_root / "search_spaces" / "hbert.yaml")
    out = tmp_path / "curves.jsonl"
    assert record(recipe, space, out, count=2, seed=0, data_dir=str(shared_data), say=lambda m: None) == 2
    lines = out.read_text().splitlines()
    # The space's seeds come first; recording again skips what the file holds.
    assert [json.loads(line)["layout"] for line in lines] == ["SSSSSSSSSSSS:post", "AAAAAAAAAAAA:post"]
    assert record(recipe, space, out, count=2, seed=0, data_dir=str(shared_data), say=lambda m: None) == 2
    assert out.read_text().splitlines() == lines
    table = load_table(out, recipe)
    assert len(table.curves) == 2 and all(len(c.rung_scores) == 3 for c in table.curves)
    first = json.loads(lines[0])
    assert [r["steps"] for r in first["rungs"]] == [7, 20, 60]
    # cpu-small promotes on minus the MLM loss below the top.
    assert table.curves[0].rung_scores[0] == -first["rungs"][0]["mlm_loss"]
    assert table.curves[0].objective == first["objective"] and table.curves[0].total_steps == 60
