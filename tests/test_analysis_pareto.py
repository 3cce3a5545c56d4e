"""`hsearch pareto`: exactly the non-dominated complete trials, in table, json and csv."""

from __future__ import annotations

import csv
import io
import json
import random

import optuna
import pytest
from analysis_study import CANCELLED, SEEDS

from hsearch.analysis.pareto import non_dominated
from hsearch.analysis.study import Objective, TrialRecord
from hsearch.cli import main

pytest_plugins = ["analysis_study"]  # the session-scoped tiny_study fixture, run once


def brute_force_front(trials, directions) -> set[int]:
    """Written independently of hsearch: signs turn every objective into 'maximise'."""
    sign = [1 if d == "maximize" else -1 for d in directions]
    pts = {t.number: [s * v for s, v in zip(sign, t.values)] for t in trials if t.state.name == "COMPLETE"}
    front = set()
    for n, p in pts.items():
        beaten = any(
            all(q[i] >= p[i] for i in range(len(p))) and any(q[i] > p[i] for i in range(len(p)))
            for m, q in pts.items() if m != n
        )
        if not beaten:
            front.add(n)
    return front


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_non_dominated_matches_brute_force_on_many_point_sets():
    rng = random.Random(5)
    objs = [Objective("acc", "maximize"), Objective("lat", "minimize")]
    for _ in range(200):
        n = rng.randint(1, 25)
        # few distinct values so ties and duplicate points occur
        vals = [(rng.choice([0.1, 0.2, 0.3, 0.5]), rng.choice([1.0, 2.0, 3.0])) for _ in range(n)]
        recs = [TrialRecord(i, "COMPLETE", "S:post", v, {}, {}, None, None) for i, v in enumerate(vals)]

        class T:  # the brute force reads Optuna-like trials
            def __init__(self, r):
                self.number, self.values, self.state = r.number, r.values, optuna.trial.TrialState.COMPLETE

        got = {r.number for r in non_dominated(recs, objs)}
        assert got == brute_force_front([T(r) for r in recs], ["maximize", "minimize"])


def test_pareto_all_formats_list_exactly_the_front(tiny_study, capsys):
    study = optuna.load_study(study_name=tiny_study.name, storage=tiny_study.storage)
    trials = study.get_trials()
    expected = brute_force_front(trials, [d.name.lower() for d in study.directions])
    assert expected, "a study with complete trials has a non-empty front"
    seed_numbers = {tiny_study.numbers[s] for s in SEEDS}
    base = ("pareto", "--storage", tiny_study.storage, "--study", tiny_study.name)

    rc, out, err = _run(capsys, *base, "--format", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert {d["trial"] for d in data["front"]} == expected
    assert [o["name"] for o in data["objectives"]] == ["mean_accuracy", "latency_ms"]
    by_number = {t.number: t for t in trials}
    for d in data["front"]:
        t = by_number[d["trial"]]
        assert d["layout"] == t.user_attrs["layout"]
        assert d["mean_accuracy"] == pytest.approx(t.values[0])
        assert d["latency_ms"] == pytest.approx(t.values[1])
        assert d["emotion_accuracy"] == pytest.approx(t.user_attrs["emotion_accuracy"])
        assert d["params"] == t.user_attrs["params"] and d["tokens_seen"] == t.user_attrs["tokens_seen"]
    # seeds are always listed; a dominated seed names exactly the front trials dominating it
    assert {d["trial"] for d in data["seeds"]} == seed_numbers
    for d in data["seeds"]:
        mine = by_number[d["trial"]].values
        dominators = {
            n for n in expected
            if by_number[n].values[0] >= mine[0] and by_number[n].values[1] <= mine[1]
            and tuple(by_number[n].values) != tuple(mine)
        }
        assert set(d["dominated_by"]) == dominators
        assert (d["role"] == "front+seed") == (d["trial"] in expected)

    rc, out, err = _run(capsys, *base, "--format", "csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {int(r["trial"]) for r in rows if r["role"] != "seed"} == expected
    assert {int(r["trial"]) for r in rows if "seed" in r["role"]} == seed_numbers
    assert all(r["layout"] for r in rows)

    rc, out, err = _run(capsys, *base)  # table is the default
    assert rc == 0, err
    lines = out.splitlines()
    assert f"{len(expected)} Pareto-optimal of {len(tiny_study.numbers) - 1} complete trials" in lines[0]
    listed = {int(line.split()[0][1:]) for line in lines[3:]}
    assert listed == expected | seed_numbers
    for line in lines[3:]:
        n = int(line.split()[0][1:])
        assert by_number[n].user_attrs["layout"] in line
        assert " ± " in line  # latency median ± spread
    assert CANCELLED not in out  # the non-complete trial is neither front nor seed


def test_pareto_bad_inputs_are_one_line_errors(tiny_study, tmp_path, capsys):
    rc, out, err = _run(capsys, "pareto", "--storage", tiny_study.storage, "--study", "nope")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "'nope' not found" in err and tiny_study.name in err
    missing = tmp_path / "missing.db"
    rc, out, err = _run(capsys, "pareto", "--storage", str(missing))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and str(missing) in err
    assert not missing.exists()  # reading never creates a database
    with pytest.raises(SystemExit):  # argparse rejects an unknown format
        main(["pareto", "--storage", tiny_study.storage, "--format", "xml"])
