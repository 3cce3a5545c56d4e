"""Trial notes on the dashboard page (hsearch.search.note): the text of a realistic trial, how
it is written and kept, and the real optuna-dashboard page rendered by headless Chromium."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import optuna
import pytest
from fixtures_dashboard import chromium, dashboard, get_json
from optuna.trial import TrialState

from hsearch.layout import Layout
from hsearch.search.note import FOOTER, trial_note, write_note, write_notes
from hsearch.search.space import load_space
from hsearch.search.study import make_storage, open_study, result_attrs
from hsearch.trial.result import TaskScore, TrialResult

LAYOUT = "SASASASASASA:sub"


def _result(layout: str = LAYOUT, status: str = "complete", **kw) -> TrialResult:
    tasks = {
        "emotion": TaskScore("emotion", "validation", "test", 0.6012, 0.0123, 0.5934, 0.011, 6, 1000,
                             seeds=[0, 1, 2], score_per_seed=[0.59, 0.60, 0.61]),
        "massive": TaskScore("massive", "validation", "test", 0.2211, 0.0088, 0.2150, 0.007, 60, 1000,
                             seeds=[0, 1, 2], score_per_seed=[0.21, 0.22, 0.23]),
    } if status == "complete" else {}
    base = dict(status=status, layout=layout, recipe_name="cpu-small", recipe_hash="0123456789abcdef", seed=0,
                hardware={"device_name": "AMD EPYC 9B14"}, budget="60s", tokens_seen=1_234_567, optimizer_steps=500,
                charge="cost-model")
    if status == "complete":
        base.update(mlm_accuracy=0.1234, mlm_loss=6.52, tasks=tasks, mean_accuracy=0.41115, latency_ms=3.4,
                    latency_ms_median=3.5, latency_ms_spread=0.12, latency_path="cpu-fp32-eager",
                    latency_ms_predicted=3.21, params=12_345_678)
    base.update(kw)
    return TrialResult(**base)


def _rungs() -> dict:
    return {"rung0_fraction": 0.25, "rung0_steps": 125, "rung0_mlm_accuracy": 0.0512, "rung0_mlm_loss": 7.1,
            "rung0_score": 0.3001, "rung0_latency_ms": 3.21, "rung1_fraction": 1.0, "rung1_steps": 500,
            "rung1_mlm_accuracy": 0.1234, "rung1_score": 0.41115, "rung1_latency_ms": 3.21, "rung": 1}


def _frozen(layout: str = LAYOUT, state: TrialState = TrialState.COMPLETE, extra: dict | None = None,
            result: TrialResult | None = None, space: str = "hbert") -> optuna.trial.FrozenTrial:
    """A trial as the driver records it: params from the space, result_attrs plus driver attrs."""
    space = load_space(space)
    params = space.params_for(Layout.parse(layout))
    dists = {name: optuna.distributions.CategoricalDistribution(space.choices(name)) for name in params}
    result = result or _result(layout)
    attrs = result_attrs(result)
    attrs.update(space=space.name, origin="seed:hbert-v1", dispatched=True, wall_seconds=71.2, cpu_seconds=70.0,
                 gpu_seconds=0.0, outcome=result.status, artifacts_dir="/tmp/art/trial-3")
    attrs.update(extra or {})
    values = [result.mean_accuracy, result.latency_ms_predicted] if state == TrialState.COMPLETE else None
    return optuna.trial.create_trial(state=state, values=values, params=params, distributions=dists,
                                     user_attrs=attrs)


def test_note_of_a_complete_multi_fidelity_trial():
    trial = _frozen(extra={**_rungs(), "fidelity_state": "top"})
    trial.number = 7
    text = trial_note(trial)
    lines = text.splitlines()
    assert lines[0] == f"### Trial 7: `{LAYOUT}` (hbert-v1)"
    assert "**COMPLETE**" in lines[2] and "origin `seed:hbert-v1`" in lines[2]
    assert "recipe `cpu-small` (`01234567`)" in lines[2] and "device `AMD EPYC 9B14`" in lines[2]
    # the layer strip: one column per layer, kind and norm rows
    assert "| layer | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 |" in lines
    assert "| kind | " + " | ".join(["**S**", "**A**"] * 6) + " |" in lines
    assert "| norm | " + " | ".join(["sub"] * 12) + " |" in lines
    assert "| emotion accuracy | 0.6012 ± 0.0123 (std over 3 fine-tuning seeds); test 0.5934 |" in lines
    assert "| massive accuracy | 0.2211 ± 0.0088 (std over 3 fine-tuning seeds); test 0.2150 |" in lines
    assert "| mean accuracy | 0.4112 |" in lines
    assert "| MLM accuracy | 0.1234 (loss 6.520) |" in lines
    assert "| latency (objective: predicted) | 3.210 ms |" in lines
    assert "| latency (measured) | 3.400 ms (median 3.500, IQR 0.120, cpu-fp32-eager) |" in lines
    assert "| tokens seen | 1.23M in 500 steps (budget 60s) |" in lines
    assert "| parameters | 12.3M |" in lines
    assert "| objectives (score · latency ms) | 0.4112 · 3.2100 |" in lines
    assert "| 0 | 0.250 | 125 | 0.0512 | 0.3001 | 3.210 |" in lines
    assert "| 1 | 1.000 | 500 | 0.1234 | 0.4112 | 3.210 |" in lines
    assert "fidelity state `top`" in lines
    assert "Why it" not in text and lines[-1] == FOOTER
    # the order a person reads it in: layout, strip, scores, rungs
    assert text.index("| kind |") < text.index("emotion accuracy") < text.index("Multi-fidelity rungs")


def test_note_of_stopped_failed_and_odd_trials():
    stopped = _frozen("SSSSSSSSSSSS:post", TrialState.PRUNED, result=_result("SSSSSSSSSSSS:post", status="failed"),
                      extra={"rung0_fraction": 0.25, "rung0_steps": 125, "rung0_mlm_accuracy": 0.02, "rung0_score": 0.1,
                             "rung0_latency_ms": 5.0, "rung": 0, "fidelity_state": "stopped", "stopped_at_rung": 0,
                             "outcome": "stopped", "reason": "stopped at rung 0: below the keep quota | 1 of 3"})
    text = trial_note(stopped)
    assert "(bert-base)" in text.splitlines()[0] and "**PRUNED** · outcome `stopped`" in text
    assert "fidelity state `stopped`; stopped at rung 0" in text
    assert "**Why it stopped** (`stopped`)" in text
    assert "~~~text\nstopped at rung 0: below the keep quota | 1 of 3\n~~~" in text  # verbatim, not a table cell
    assert "emotion accuracy" not in text

    oom = _frozen("S/pre A/sub L/post S/pre A/sub L/post S/pre A/sub L/post S/pre A/sub L/post", TrialState.FAIL,
                  result=_result("S/pre A/sub L/post " * 4, status="oom", error="CUDA out of memory"),
                  extra={"reason": "oom: CUDA out of memory", "outcome": "oom"}, space="extended")
    text = trial_note(oom)
    assert "| kind | " + " | ".join(["**S**", "**A**", "**L**"] * 4) + " |" in text
    assert "| norm | " + " | ".join(["pre", "sub", "post"] * 4) + " |" in text
    assert "**Why it failed** (`oom`)" in text and "oom: CUDA out of memory" in text
    assert "| tokens seen | 1.23M in 500 steps (budget 60s) |" in text

    # a trial with next to nothing (a stale one, or another tool's): still a note, no exception
    bare = optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"layout": "not a layout", "result": "{bad"})
    text = trial_note(bare)
    assert "layout `not a layout` (not a layout hsearch can read)" in text
    assert "no reason recorded" in text and text.endswith(FOOTER + "\n")


def _note(study, number: int) -> str:
    from optuna_dashboard import get_note

    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return get_note(SimpleNamespace(storage=study._storage, study=study, _trial_id=trial_id))


def _study_with_trials(url: str) -> optuna.Study:
    study = open_study(url, "notes", objective="mean", sampler="nsga2", seed=0)
    study.add_trial(_frozen(extra={**_rungs(), "fidelity_state": "top"}))
    study.add_trial(_frozen("SSSSSSSSSSSS:post", TrialState.FAIL, result=_result("SSSSSSSSSSSS:post", status="oom"),
                            extra={"outcome": "oom", "reason": "oom: CUDA out of memory"}))
    return study


@pytest.mark.parametrize("scheme", ["sqlite", "journal"])
def test_write_note_on_finished_trials_keeps_edited_notes_and_never_raises(tmp_path, scheme, caplog):
    url = f"sqlite:///{tmp_path / 'n.db'}" if scheme == "sqlite" else f"journal://{tmp_path / 'n.log'}"
    study = _study_with_trials(url)
    assert write_note(study, 0) is True  # a finished trial (NSGA-II sampler: no before_trial hook is run)
    assert "| kind | **S** | **A**" in _note(study, 0)
    assert write_note(study, 0) is False  # unchanged: nothing written
    assert write_notes(study) == 1  # only trial 1 lacked one
    assert "**Why it failed** (`oom`)" in _note(study, 1)
    # a person edits trial 1's note in the dashboard: hsearch leaves it alone from then on
    from optuna_dashboard import save_note

    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, 1)
    save_note(SimpleNamespace(storage=study._storage, study=study, _trial_id=trial_id), "my own note")
    # trial 0 gets a new attribute (as the re-evaluation adds): its hsearch note is refreshed
    from hsearch.search.study import set_finished_trial_attrs

    set_finished_trial_attrs(study, 0, {"mlm_accuracy": 0.2})
    again = optuna.load_study(study_name="notes", storage=make_storage(url))
    assert write_notes(again) == 1
    assert "| MLM accuracy | 0.2000 (loss 6.520) |" in _note(again, 0) and _note(again, 1) == "my own note"
    # problems are logged, never raised
    with caplog.at_level(logging.WARNING, logger="hsearch.search.note"):
        assert write_note(again, 99) is False
        assert write_note(SimpleNamespace(), 0) is False
    assert "could not write the dashboard note of trial 99" in caplog.text


def test_dashboard_writes_notes_at_start_and_chromium_shows_them(tmp_path):
    """An existing study without notes: `hsearch dashboard` writes them; the trial page shows
    the layout strip and the scores."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = _study_with_trials(url)
    assert _note(study, 0) == ""
    with dashboard("--storage", url, "--study", "notes") as board:
        base = board.url
        study_id = base.rstrip("/").rsplit("/", 1)[1]
        detail = get_json(f"{board.api}/studies/{study_id}")
        notes = {t["number"]: t["note"]["body"] for t in detail["trials"]}
        assert "| kind | **S** | **A**" in notes[0] and "**Why it failed**" in notes[1]
        page = f"{base}/trials?numbers=0"
        dom = chromium(tmp_path / "profile", "--dump-dom", page).stdout
        assert "<title>Optuna Dashboard</title>" in dom
        assert re.search(rf"<h3>Trial 0: <code[^>]*>{LAYOUT}</code> \(hbert-v1\)</h3>", dom), dom[-3000:]
        # the strip renders as a table: the kind row's cells, bold
        assert "<td>kind</td>" in dom and dom.count("<strong>A</strong>") >= 6
        assert "0.6012 ± 0.0123 (std over 3 fine-tuning seeds)" in dom
        assert "3.210 ms" in dom and "1.23M in 500 steps" in dom
    err = board.proc.stderr.read()
    assert "wrote the notes of 2 trial(s)" in err, err
