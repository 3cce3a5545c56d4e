"""``hsearch bench cost``: a fresh table against whole models it never probed, written with hardware."""

from __future__ import annotations

import json
import math

from hsearch.cli import main

TINY = ["--set", "model.hidden_size=32", "--set", "model.num_attention_heads=2", "--set", "model.intermediate_size=64",
        "--set", "model.local_window=8", "--set", "pretrain.batch_size=4", "--set", "pretrain.seq_len=32",
        "--set", "corpus.max_tokens=20000", "--set", "corpus.eval_blocks=8", "--set", "tokenizer.train.max_documents=30",
        "--set", "tokenizer.train.vocab_size=600", "--set", "latency.runs=5", "--set", "latency.seq_len=32"]


def test_bench_cost_compares_predictions_with_whole_models(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HSEARCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "cost.json"
    layouts = "SASA:sub,S/post A/sub L/pre S/sub,LLAA:pre"
    rc = main(["bench", "cost", "--recipe", "cpu-small", *TINY, "--layouts", layouts, "--data-dir", str(shared_data),
               "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    report = json.loads(out.read_text())
    assert [r["layout"] for r in report["rows"]] == ["SASA:sub", "S/post A/sub L/pre S/sub", "LLAA:pre"]
    for r in report["rows"]:
        assert r["params_predicted"] == r["params"]  # parameters are additive: exact
        for term in ("step", "latency"):
            assert r[f"{term}_ms"] > 0 and r[f"{term}_ms_predicted"] > 0 and math.isfinite(r[f"{term}_error"])
    assert {"parameters predicted exactly": "yes"}.items() <= {t["target"]: t["value"]
                                                                 for t in report["targets"]}.items()
    assert report["hardware"]["cpu"] and "[MET] parameters predicted exactly" in printed
    # A bench measures a fresh table and leaves the cache that trials charge on alone.
    assert not (tmp_path / "cache" / "cost").exists()
