"""`pareto`, `status` and `report` with re-evaluated trials: intervals shown, the robust front and
the seeds' verdicts as worked out by hand (a study written directly, no training)."""

from __future__ import annotations

import json

import optuna
import pytest

from hsearch.cli import main
from hsearch.search.robust import key
from hsearch.search.study import open_study

BERT, ADD, HB1 = "SSSSSSSSSSSS:post", "AAAAAAAAAAAA:post", "SASASASASASA:sub"
FOUND, OTHER = "SSAASSAASSAA:sub", "AASSAASSAASS:pre"


def _reeval(score, score_ci, lat, lat_ci):
    return {key("mean_accuracy", "mean"): score, key("mean_accuracy", "ci95"): list(score_ci),
            key("mean_accuracy", "std"): 0.01, key("latency_ms", "mean"): lat, key("latency_ms", "ci95"): list(lat_ci),
            key("latency_ms", "std"): 0.01, "reeval_seeds": 3, "reeval_pretrain_seeds": 1}


@pytest.fixture()
def study_db(tmp_path):
    db = tmp_path / "robust.db"
    study = open_study(f"sqlite:///{db}", "robust", objective="mean")
    study.set_user_attr("recipe", "tiny")
    rows = [
        # number 0: bert-base, re-evaluated below the found layout beyond the intervals
        (BERT, "seed:bert-base", [0.55, 1.40], _reeval(0.54, (0.50, 0.58), 1.4, (1.3, 1.5))),
        # 1: addbert, means worse than #2's but its score interval overlaps #2's
        (ADD, "seed:addbert", [0.56, 1.30], _reeval(0.57, (0.50, 0.65), 1.4, (1.3, 1.5))),
        # 2: a found layout, re-evaluated
        (FOUND, "sampler", [0.66, 1.00], _reeval(0.65, (0.60, 0.70), 1.1, (1.0, 1.2))),
        # 3: a found layout on the search's front, not re-evaluated
        (OTHER, "sampler", [0.70, 2.00], {}),
        # 4: hbert-v1, not re-evaluated
        (HB1, "seed:hbert-v1", [0.50, 0.90], {}),
    ]
    for layout, origin, values, extra in rows:
        attrs = {"layout": layout, "origin": origin, "mean_accuracy": values[0], "latency_ms": values[1] * 3}
        if origin.startswith("seed:"):
            attrs["seed_label"] = origin[5:]
        study.add_trial(optuna.create_trial(values=values, user_attrs={**attrs, **extra}))
    return db


def test_pareto_json_and_table_show_intervals_and_the_robust_front(study_db, capsys):
    assert main(["pareto", "--storage", str(study_db), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "beyond the 95% intervals" in data["dominance_rule"]
    assert data["robust_front"] == [2, 1]  # best mean score first; #0 is separably dominated by #2
    got = {d["trial"]: d for d in data["reevaluated"]}
    assert set(got) == {0, 1, 2}
    assert got[0]["separably_dominated_by"] == [2] and got[0]["robust"] is False
    assert got[1]["separably_dominated_by"] == [] and got[2]["separably_dominates"] == [0]
    assert got[2]["reeval_mean_accuracy_ci95"] == [0.60, 0.70] and got[2]["reeval_latency_ms_mean"] == 1.1
    assert got[0]["role"] == "seed" and got[0]["seed"] == "bert-base"
    # the front rows carry their re-evaluation too
    front = {d["trial"]: d for d in data["front"]}
    assert front[2]["robust"] is True and "robust" not in front[3]

    assert main(["pareto", "--storage", str(study_db)]) == 0
    out = capsys.readouterr().out
    assert "robust front: #2, #1 (2 not separably dominated)" in out
    (line,) = [ln for ln in out.splitlines() if "[0.5000, 0.5800]" in ln]
    assert line.startswith("#0 ") and "0.5400 ± 0.0400 [0.5000, 0.5800]" in line and "1.400 ± 0.100" in line
    assert line.split()[-2:] == ["no", "#2"]


def test_status_marks_robust_members(study_db, capsys):
    assert main(["status", "--storage", str(study_db)]) == 0
    out = capsys.readouterr().out
    lines = {int(ln.split()[0]): ln for ln in out.splitlines() if ln.split() and ln.split()[0].isdigit()}
    assert "no: #2" in lines[0] and "0.5400 ± 0.0400" in lines[0]
    assert "yes" in lines[1] and "yes" in lines[2] and "0.6500 ± 0.0500 | 1.100 ± 0.100 ms" in lines[2]
    assert "±" not in lines[3] and "±" not in lines[4]
    assert "robust: no other re-evaluated trial is better beyond the 95% intervals" in out


def test_report_plots_error_bars_and_gives_each_seed_its_verdict(study_db, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--storage", str(study_db), "--out", str(out)]) == 0
    assert "robust.png" in capsys.readouterr().out
    assert (out / "robust.png").stat().st_size > 10_000
    md = (out / "report.md").read_text()
    assert "## Re-evaluation: the front with error bars" in md and "(robust.png)" in md
    assert "Robust front: #2 `SSAASSAASSAA:sub`, #1 `AAAAAAAAAAAA:post`." in md
    assert f"**bert-base** `{BERT}` (trial #0): separably dominated by #2 `{FOUND}`" in md
    assert f"**addbert** `{ADD}` (trial #1): no found layout dominates it separably (it is on the robust front)" in md
    assert f"**hbert-v1** `{HB1}` (trial #4): not re-evaluated" in md
    marker = json.loads((out / "report.json").read_text())
    assert "robust.png" in marker["files"] and marker["robust_front"] == [2, 1]


def test_read_only_views_of_a_reevaluated_study_import_no_torch(study_db):
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sys
        from hsearch.cli import build_parser, main
        build_parser().parse_args(["reevaluate", "--top", "2", "--seeds", "3", "--pretrain-seeds", "2"])
        assert main(["status", "--storage", {str(study_db)!r}]) == 0
        assert main(["pareto", "--storage", {str(study_db)!r}]) == 0
        assert main(["pareto", "--storage", {str(study_db)!r}, "--format", "csv"]) == 0
        print("HEAVY", sorted(m for m in ("torch", "transformers", "ray", "datasets") if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout and "robust front: #2, #1" in proc.stdout
