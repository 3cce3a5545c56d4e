"""``hsearch trial``: runs a trial, prints and writes the result; bad input is one line, exit 2."""

from __future__ import annotations

import json

from hsearch.cli import main

TINY = ["--set", "model.hidden_size=32", "--set", "model.num_attention_heads=2", "--set", "model.intermediate_size=64",
        "--set", "pretrain.batch_size=8", "--set", "pretrain.seq_len=32", "--set", "corpus.max_tokens=20000",
        "--set", "corpus.eval_blocks=8", "--set", "tokenizer.train.max_documents=30",
        "--set", "tokenizer.train.vocab_size=600", "--set", "finetune.tasks={}", "--set", "latency.runs=3",
        "--set", "fidelity.rungs=[1]"]  # one rung: a few steps cannot hold three


def test_trial_command_writes_the_result(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HSEARCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "trial"
    code = main(["trial", "hbert-v2", "--recipe", "cpu-small", "--data-dir", str(shared_data), "--out", str(out),
                 "--budget", "3 steps", "--json", "--keep-checkpoint", *TINY, "--set", "finetune.pooling=mean"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "complete" and result["optimizer_steps"] == 3 and result["budget"] == "3 steps"
    assert result["layout"] == "SSAAAAAAAASS:sub" and result["latency_ms"] > 0
    assert json.loads(captured.out[captured.out.index("{"):])["recipe_hash"] == result["recipe_hash"]
    assert "MLM accuracy" in captured.out
    assert (out / "checkpoint" / "config.json").is_file() and (out / "tokenizer" / "tokenizer.json").is_file()
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(str(out / "checkpoint"))
    assert model.config.layout == "SSAAAAAAAASS:sub" and model.config.classifier_pooling == "mean"


def test_trial_command_bad_input_is_one_line(shared_data, capsys):
    code = main(["trial", "hbert-v1", "--recipe", "cpu-small", "--data-dir", str(shared_data), "--budget", "soon"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "soon" in err and err.startswith("hsearch trial: error:")
    code = main(["trial", "hbert-v1", "--set", "pretrain.nope=1", "--data-dir", str(shared_data)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "pretrain.nope" in err and "cpu-small.yaml" in err
