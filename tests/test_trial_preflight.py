"""preflight: what run_trial refuses before training, found in seconds, each a one-line error."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from hsearch.errors import HsearchError
from hsearch.trial import load_recipe, preflight, run_trial

TINY = {"model.hidden_size": 32, "model.num_attention_heads": 2, "model.intermediate_size": 64,
        "pretrain.batch_size": 8, "pretrain.seq_len": 32, "latency.enabled": False}


def _data(tmp_path, shared_data):
    """A data folder with a small valid corpus file and copies of the two tasks' first rows."""
    root = tmp_path / "data"
    (root / "wiki").mkdir(parents=True)
    with gzip.open(root / "wiki" / "wiki-000.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps({"text": f"document {i} about things"}) + "\n" for i in range(5))
    for task in ("emotion", "massive_en"):
        (root / task).mkdir()
        for split in ("train", "validation", "test"):
            lines = (shared_data / task / f"{split}.jsonl").read_text().splitlines()[:5]
            (root / task / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _error(recipe, **kwargs) -> str:
    with pytest.raises(HsearchError) as exc:
        preflight(recipe, **kwargs)
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_a_valid_setup_passes_without_torch(tmp_path, shared_data):
    root = _data(tmp_path, shared_data)
    code = ("import sys; from hsearch.trial import preflight; "
            f"preflight('cpu-small', data_dir={str(root)!r}, out_dir={str(tmp_path / 'out')!r}); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
    preflight(load_recipe("cpu-small"), data_dir=shared_data)  # the real data too


def test_each_problem_is_named(tmp_path, shared_data):
    recipe = load_recipe("cpu-small", TINY)
    root = _data(tmp_path, shared_data)
    empty = tmp_path / "empty-data"
    empty.mkdir()
    assert "emotion/train.jsonl not found" in _error(recipe, data_dir=empty)
    no_tasks = load_recipe("cpu-small", {**TINY, "finetune.tasks": {}})
    assert f"corpus folder {empty / 'wiki'} not found" in _error(no_tasks, data_dir=empty)
    assert "data directory" in _error(recipe, data_dir=tmp_path / "nowhere")

    corpus = root / "wiki" / "wiki-000.jsonl.gz"
    good = corpus.read_bytes()
    corpus.write_bytes(b"")
    assert f"data file {corpus} is empty" in _error(recipe, data_dir=root)
    corpus.write_bytes(b'{"text": "not compressed"}\n')
    assert f"{corpus}:1: not a readable gzip file" in _error(recipe, data_dir=root)
    corpus.write_bytes(good)

    train = root / "emotion" / "train.jsonl"
    train.write_text("")
    assert f"task 'emotion': data file {train} is empty" in _error(recipe, data_dir=root)
    train.write_text('{"text": "no label here"}\n')
    assert "no field 'label'" in _error(recipe, data_dir=root)
    train.unlink()
    assert "emotion/train.jsonl not found" in _error(recipe, data_dir=root)


def test_budget_too_small_and_output_that_is_a_file(tmp_path, shared_data):
    root = _data(tmp_path, shared_data)
    small = load_recipe("cpu-small", {"pretrain.budget": "1K"})  # one step is 16 x 64 = 1024 tokens
    text = _error(small, data_dir=root)
    assert "pretrain.budget '1K' is too small to take one step" in text
    assert "batch 16 x accumulation 1 x seq_len 64 = 1024 tokens" in text
    preflight(load_recipe("cpu-small", {"pretrain.budget": "1024 tokens", "fidelity.rungs": [1]}), data_dir=root)
    # With cpu-small's three rungs one step is too few: refused before any work, naming the rungs.
    assert "1 pretraining steps are too few for these rungs" in _error(
        load_recipe("cpu-small", {"pretrain.budget": "1024 tokens"}), data_dir=root)
    a_file = tmp_path / "result.txt"
    a_file.write_text("mine")
    assert f"--out {a_file}: exists and is not a folder" in _error(load_recipe("cpu-small", TINY), data_dir=root,
                                                                    out_dir=a_file)
    assert a_file.read_text() == "mine"


def test_run_trial_refuses_an_output_file_before_training(tmp_path, shared_data, monkeypatch):
    import hsearch.trial.pretrain as pretrain_mod

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(pretrain_mod, "pretrain", no_training)
    monkeypatch.setattr("hsearch.data.corpus.prepare_corpus", no_training)
    a_file = tmp_path / "out"
    a_file.write_text("")
    with pytest.raises(HsearchError, match="exists and is not a folder"):
        run_trial("hbert-v1", load_recipe("cpu-small", TINY), data_dir=shared_data, out_dir=a_file)
