"""Trial artifacts in Optuna's artifact store: a trial that ran on another node exports from it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request

import optuna
import pytest
from fixtures_dashboard import dashboard, get_json
from fixtures_search import write_recipe
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState

from hsearch.cli import main
from hsearch.errors import HsearchError
from hsearch.search.artifacts import open_store

RELOAD = """
import sys, torch
import hsearch.model  # registers the Auto classes
from transformers import AutoModelForMaskedLM, AutoTokenizer
model = AutoModelForMaskedLM.from_pretrained(sys.argv[1])
tok = AutoTokenizer.from_pretrained(sys.argv[1])
out = model(**tok("the cat sat on the mat", return_tensors="pt"))
print(tuple(out.logits.shape), bool(torch.isfinite(out.logits).all()))
"""


def test_a_trial_from_the_other_node_exports_from_the_store(repo_root, two_nodes, shared_data, tmp_path, capsys):
    import ray

    recipe = write_recipe(tmp_path / "keep.yaml", "tiny", **{"output.keep_checkpoint": True})
    db = tmp_path / "a.db"
    store = tmp_path / "store"
    # Two one-CPU nodes, two one-CPU trials at a time: the two trials run on different nodes.
    assert main(["run", "--space", str(repo_root / "search_spaces" / "hbert.yaml"), "--recipe", str(recipe),
                 "--storage", f"sqlite:///{db}", "--address", two_nodes.address, "--data-dir", str(shared_data),
                 "--artifacts", str(tmp_path / "art"), "--artifact-store", f"file://{store}",
                 "--max-trials", "2", "--reevaluate-share", "0"]) == 0
    study = optuna.load_study(study_name="hbert-tiny", storage=f"sqlite:///{db}")
    trials = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(trials) == 2 and len({t.user_attrs["ray_node"] for t in trials}) == 2
    ray.init(address=two_nodes.address, log_to_driver=False)
    try:
        head = next(n["NodeID"] for n in ray.nodes() if "node:__internal_head__" in n.get("Resources", {}))
    finally:
        ray.shutdown()
    other = next(t for t in trials if t.user_attrs["ray_node"] != head)
    names = sorted(m.filename for m in get_all_artifact_meta(other, storage=study._storage))
    assert names == ["checkpoint.tar.gz", "result.json", "tokenizer.tar.gz"]
    assert other.user_attrs["artifacts"] == ["result.json", "tokenizer.tar.gz", "checkpoint.tar.gz"]
    # The trial folders are gone (as on a node this machine cannot see): export uses the store.
    shutil.rmtree(tmp_path / "art")
    out = tmp_path / "exported"
    capsys.readouterr()
    assert main(["export", "--storage", f"sqlite:///{db}", "--trial", str(other.number), "--out", str(out)]) == 0
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["trials"][0]["checkpoint"] == f"artifact store file://{store}"
    reload = subprocess.run([sys.executable, "-c", RELOAD, str(out)], capture_output=True, text=True, timeout=300)
    assert reload.returncode == 0, reload.stderr[-2000:]
    assert reload.stdout.strip().endswith("True")

    # optuna-dashboard lists the files on the trial page and serves them from the study's store.
    with dashboard("--storage", f"sqlite:///{db}", "--no-notes") as board:
        detail = get_json(f"{board.api}/studies/{study._study_id}")
        page = next(t for t in detail["trials"] if t["number"] == other.number)
        listed = {a["filename"]: a["artifact_id"] for a in page["artifacts"]}
        assert set(listed) == {"result.json", "tokenizer.tar.gz", "checkpoint.tar.gz"}
        url = f"http://127.0.0.1:{board.port}/artifacts/{study._study_id}/{page['trial_id']}/{listed['result.json']}"
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert json.loads(resp.read())["layout"] == other.user_attrs["layout"]


def test_bad_store_urls_are_one_line_errors(tmp_path):
    for url, why in (("nowhere", "expected file:///path"), ("file://rel/path", "absolute path"),
                     ("ftp://host/x", "unknown scheme 'ftp'"), ("s3://bucket/prefix", "name a bucket only")):
        with pytest.raises(HsearchError, match=why):
            open_store(url)
    assert not (tmp_path / "x").exists()
    open_store(f"file://{tmp_path / 'x'}", create=False)
    assert not (tmp_path / "x").exists()  # checking writes nothing
