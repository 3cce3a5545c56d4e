"""`hsearch export`: a Hugging Face folder that loads in a fresh Python with the Auto classes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import optuna
import yaml
from analysis_study import CANCELLED, SAMPLED

from hsearch.cli import main

pytest_plugins = ["analysis_study"]  # the session-scoped tiny_study fixture, run once

COMPARE = textwrap.dedent(
    """
    import json, sys
    import torch
    import hsearch.model  # registers hybrid-bert with the Auto classes
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    exported, checkpoint = sys.argv[1], sys.argv[2]
    config = AutoConfig.from_pretrained(exported)
    model = AutoModelForMaskedLM.from_pretrained(exported).eval()
    tok = AutoTokenizer.from_pretrained(exported)
    ref = AutoModelForMaskedLM.from_pretrained(checkpoint).eval()
    batch = tok(["the layout of a model is data, not code", "hello world"], return_tensors="pt", padding=True)
    with torch.no_grad():
        a = model(**batch).logits
        b = ref(**batch).logits
    print(json.dumps({
        "layout": config.layout, "model_type": config.model_type, "class": type(model).__name__,
        "max_abs_diff": float((a - b).abs().max()), "shape": list(a.shape),
        "same_vocab": tok.get_vocab() == AutoTokenizer.from_pretrained(checkpoint).get_vocab(),
    }))
    """
)


def _complete_trial(tiny_study, layout):
    study = optuna.load_study(study_name=tiny_study.name, storage=tiny_study.storage)
    return study.trials[tiny_study.numbers[layout]]


def test_export_loads_in_a_fresh_process_with_the_same_outputs(tiny_study, tmp_path, capsys):
    layout = SAMPLED[0]
    trial = _complete_trial(tiny_study, layout)
    out = tmp_path / "export"
    rc = main(["export", "--storage", tiny_study.storage, "--study", tiny_study.name,
               "--trial", str(trial.number), "--out", str(out)])
    printed, err = capsys.readouterr()
    assert rc == 0, err
    assert f"trial #{trial.number} {layout}" in printed
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "seeds.yaml", "export.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl", ".pth")) for n in names)  # no pickles
    config = json.loads((out / "config.json").read_text())
    assert config["layout"] == layout and config["model_type"] == "hybrid-bert"
    assert "auto_map" not in config  # no remote code

    checkpoint = trial.user_attrs["checkpoint_dir"]
    proc = subprocess.run([sys.executable, "-c", COMPARE, str(out), checkpoint],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["layout"] == layout and got["class"] == "HybridBertForMaskedLM"
    assert got["max_abs_diff"] == 0.0 and got["same_vocab"]

    card = (out / "README.md").read_text()
    a = trial.user_attrs
    for text in (layout, f"trial #{trial.number}", tiny_study.name, f"{trial.values[0]:.4f}",
                 f"{a['latency_ms']:.3f} ms", f"{a['tokens_seen']}", a["budget"], "hardware"):
        assert text in card, text
    seeds = yaml.safe_load((out / "seeds.yaml").read_text())
    assert seeds == {"seeds": [layout]}
    # the seed entry is accepted by a search space file as is
    from hsearch.search.space import load_space

    space_text = tiny_study.space_file.read_text().replace('seeds: ["SSSS:post", "AAAA:post"]\n', "")
    space_file = tmp_path / "next.yaml"
    space_file.write_text(space_text + (out / "seeds.yaml").read_text())
    assert [str(s.layout) for s in load_space(space_file).seeds] == [layout]

    # an existing export is replaced only with --force
    args = ["export", "--storage", tiny_study.storage, "--study", tiny_study.name,
            "--trial", str(trial.number), "--out", str(out)]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--force" in err
    (out / "notes.txt").write_text("the user's, beside the export")
    assert main([*args, "--force"]) == 0
    capsys.readouterr()
    assert (out / "notes.txt").read_text() == "the user's, beside the export"  # not hsearch's: kept
    written = json.loads((out / "export.json").read_text())["files"]
    assert "notes.txt" not in written and {"config.json", "model.safetensors", "seeds.yaml"} <= set(written)


def test_export_pareto_and_best_under_latency(tiny_study, tmp_path, capsys):
    study = optuna.load_study(study_name=tiny_study.name, storage=tiny_study.storage)
    front = {t.number for t in study.best_trials}
    out = tmp_path / "front"
    assert main(["export", "--storage", tiny_study.storage, "--pareto", "--out", str(out)]) == 0
    capsys.readouterr()
    assert {p.name for p in out.iterdir() if p.is_dir()} == {f"trial-{n}" for n in front}
    for n in front:
        assert (out / f"trial-{n}" / "model.safetensors").is_file()
    assert set(yaml.safe_load((out / "seeds.yaml").read_text())["seeds"]) == {
        study.trials[n].user_attrs["layout"] for n in front
    }
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    limit = sorted(t.values[1] for t in done)[1]  # the two fastest fit
    # best score within the limit; equal scores go to the faster trial
    best = max((t for t in done if t.values[1] <= limit), key=lambda t: (t.values[0], -t.values[1]))
    one = tmp_path / "best"
    assert main(["export", "--storage", tiny_study.storage, "--best-under-latency", repr(limit), "--out", str(one)]) == 0
    assert f"trial #{best.number} " in capsys.readouterr().out
    assert json.loads((one / "config.json").read_text())["layout"] == best.user_attrs["layout"]


def test_export_refusals_are_one_line(tiny_study, tmp_path, capsys):
    base = ["export", "--storage", tiny_study.storage, "--study", tiny_study.name]

    def refused(*extra, says):
        rc = main([*base, *extra])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert len(err.strip().splitlines()) == 1, err
        assert says in err, err

    refused("--trial", "999", "--out", str(tmp_path / "a"), says="no such trial")
    refused("--trial", str(tiny_study.numbers[CANCELLED]), "--out", str(tmp_path / "b"), says="not complete")
    refused("--best-under-latency", "0.000001", "--out", str(tmp_path / "c"), says="no complete trial fits")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    refused("--trial", str(tiny_study.numbers[SAMPLED[0]]), "--out", str(blocker / "x"), says="cannot write")
    assert not any((tmp_path / n).exists() for n in "abc")
    rc = main(["export", "--storage", tiny_study.storage, "--study", "nope", "--trial", "0", "--out", str(tmp_path / "d")])
    assert rc == 2 and "'nope' not found" in capsys.readouterr().err


def test_checkpoint_found_under_the_run_artifacts_layout(tmp_path):
    from hsearch.analysis.export import find_checkpoint
    from hsearch.analysis.study import TrialRecord

    # Recorded folders gone (moved machine): the --artifacts DIR given to `hsearch run`, which
    # writes DIR/<study>/trial-<n>/, is where export looks.
    rec = TrialRecord(number=7, state="COMPLETE", layout="SASA:sub", values=(0.5, 1.0), params={},
                      attrs={"checkpoint_dir": str(tmp_path / "gone" / "checkpoint"),
                             "artifacts_dir": str(tmp_path / "gone")},
                      datetime_start=None, datetime_complete=None)
    ckpt = tmp_path / "arts" / "my-study" / "trial-7" / "checkpoint"
    assert find_checkpoint(rec, "my-study", tmp_path / "arts") is None
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text("{}")
    assert find_checkpoint(rec, "my-study", tmp_path / "arts") == ckpt
    assert find_checkpoint(rec, "other-study", tmp_path / "arts") is None
