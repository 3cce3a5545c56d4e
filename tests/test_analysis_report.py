"""`hsearch report`: every file written, images real, report.md links them, reruns replace only its own files."""

from __future__ import annotations

import json
import re

import optuna
import pytest
from analysis_study import SEEDS
from PIL import Image

from hsearch.analysis.hypervolume import hypervolume_2d, reference_point
from hsearch.analysis.importance import MIN_TRIALS_FOR_IMPORTANCE, param_importances
from hsearch.analysis.study import Objective, objectives, records
from hsearch.cli import main

pytest_plugins = ["analysis_study"]  # the session-scoped tiny_study fixture, run once

PNGS = ("pareto.png", "hypervolume.png", "layers.png")


def _image_ok(path) -> None:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= 400 and im.height >= 300
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 20, f"{path.name} looks blank"
    assert path.stat().st_size > 10_000


def test_report_writes_all_files(tiny_study, tmp_path, capsys):
    out = tmp_path / "analysis" / "tiny"
    keep = tmp_path / "analysis" / "other.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("not the report's")
    rc = main(["report", "--storage", tiny_study.storage, "--study", tiny_study.name, "--out", str(out)])
    printed, err = capsys.readouterr()
    assert rc == 0, err
    assert "reference point" in printed
    for name in PNGS:
        _image_ok(out / name)
    html = (out / "pareto.html").read_text()
    # offline: no script is fetched (plotly.js's own source mentions its CDN for geo maps only)
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert len(html) > 1_000_000  # plotly.js itself is inlined
    for layout in tiny_study.numbers:
        if layout != "ALAL:pre":
            assert layout in html  # hover text carries the layout string
    md = (out / "report.md").read_text()
    for name in (*PNGS, "pareto.html"):
        assert f"({name})" in md
    assert re.search(r"Reference point: \(mean_accuracy = 0, latency_ms = [0-9.]+\)", md)
    for key in ("space", "recipe", "budget", "sampler"):
        assert f"| {key} |" in md
    assert "## Cost ledger" in md and "CPU-hours" in md
    for seed in SEEDS:
        assert f"`{seed}` (trial #{tiny_study.numbers[seed]})" in md
    assert "importance for mean_accuracy" in md and "importance for latency_ms" in md

    marker = json.loads((out / "report.json").read_text())
    assert marker["study"] == tiny_study.name and set(marker["files"]) == {*PNGS, "pareto.html", "report.md", "report.json"}

    # rerun: refused without --force; with it, the report's files are replaced and nothing else
    (out / "notes.txt").write_text("the user's notes beside the report")
    (out / "report.md").write_text("an older report")
    args = ["report", "--storage", tiny_study.storage, "--study", tiny_study.name, "--out", str(out)]
    assert main(args) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    capsys.readouterr()
    assert (out / "notes.txt").read_text() == "the user's notes beside the report"
    assert (out / "report.md").read_text() != "an older report" and "Reference point" in (out / "report.md").read_text()
    assert keep.read_text() == "not the report's"
    assert sorted(p.name for p in out.parent.iterdir()) == ["other.txt", "tiny"]


def test_hypervolume_of_the_real_front_matches_a_grid_count(tiny_study):
    study = optuna.load_study(study_name=tiny_study.name, storage=tiny_study.storage)
    recs, objs = records(study), objectives(study)
    ref = reference_point(recs, objs)
    pts = [r.values for r in recs if r.complete]
    # Monte-Carlo-free check: the dominated area is a union of rectangles; count it on the
    # distinct coordinates (exact for axis-aligned unions).
    xs = sorted({p[1] for p in pts} | {ref[1]})
    ys = sorted({p[0] for p in pts} | {ref[0]})
    area = 0.0
    for x0, x1 in zip(xs, xs[1:]):
        for y0, y1 in zip(ys, ys[1:]):
            if any(p[1] <= x0 and p[0] >= y1 for p in pts):
                area += (x1 - x0) * (y1 - y0)
    assert hypervolume_2d(pts, objs, ref) == pytest.approx(area, rel=1e-9)


def test_importance_with_too_few_trials_is_a_note_not_a_crash(tiny_study):
    study = optuna.load_study(study_name=tiny_study.name, storage=tiny_study.storage)
    objs = [Objective("mean_accuracy", "maximize"), Objective("latency_ms", "minimize")]
    few = [r for r in records(study) if r.complete][: MIN_TRIALS_FOR_IMPORTANCE - 1]
    imp = param_importances(study, few, objs)
    assert imp.values == {}
    assert all("need at least" in imp.notes[o.name] for o in objs)
    full = param_importances(study, records(study), objs)
    for o in objs:
        assert o.name in full.values, full.notes
        assert abs(sum(full.values[o.name].values()) - 1.0) < 1e-6


def test_report_bad_inputs_are_one_line_errors(tiny_study, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["report", "--storage", tiny_study.storage, "--out", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "cannot write" in err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    rc = main(["report", "--storage", tiny_study.storage, "--out", str(foreign)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "hsearch did not write it" in err
    assert (foreign / "notes.txt").read_text() == "mine"


def test_report_never_touches_a_folder_it_did_not_write(tiny_study, tmp_path, capsys):
    """A hand-made folder that happens to hold a report.md is refused, with --force too."""
    own = tmp_path / "mine"
    (own / "sub").mkdir(parents=True)
    files = {"report.md": "# my own notes\n", "precious.txt": "irreplaceable", "sub/data.csv": "a,b\n1,2\n"}
    for name, text in files.items():
        (own / name).write_text(text)
    for extra in ([], ["--force"]):
        rc = main(["report", "--storage", tiny_study.storage, "--out", str(own), *extra])
        err = capsys.readouterr().err
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "holds no report.json" in err
    assert {str(p.relative_to(own)) for p in own.rglob("*") if p.is_file()} == set(files)
    for name, text in files.items():
        assert (own / name).read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no scratch folder left behind
    rc = main(["report", "--storage", tiny_study.storage, "--study", "missing", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "'missing' not found" in err and not (tmp_path / "r").exists()
