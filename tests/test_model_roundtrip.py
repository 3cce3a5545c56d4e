"""save_pretrained -> AutoModelForMaskedLM.from_pretrained in a fresh Python process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import torch
from safetensors.torch import load_file, save_file

from hsearch.model import HybridBertForMaskedLM
from _model_helpers import batch, randomise_, tiny_config

CHILD = textwrap.dedent(
    """
    import sys, torch
    from safetensors.torch import load_file, save_file
    import hsearch.model  # registers the Auto classes; no trust_remote_code
    from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification
    torch.set_num_threads(1)
    path = sys.argv[1]
    inputs = load_file(path + "/inputs.safetensors")
    model = AutoModelForMaskedLM.from_pretrained(path).eval()
    assert type(model).__name__ == "HybridBertForMaskedLM", type(model)
    assert model.lm_head.decoder.weight is model.bert.embeddings.word_embeddings.weight
    with torch.no_grad():
        dense = model(inputs["ids"], attention_mask=inputs["mask"]).logits
        sparse = model(inputs["ids"], attention_mask=inputs["mask"], labels=inputs["labels"])
    assert type(AutoModel.from_pretrained(path)).__name__ == "HybridBertModel"
    clf = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    assert type(clf).__name__ == "HybridBertForSequenceClassification"
    save_file({"dense": dense.contiguous(), "sparse": sparse.logits.contiguous(),
               "loss": sparse.loss.reshape(1)}, path + "/child.safetensors")
    """
)


def test_round_trip_in_a_fresh_process(tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_config("S/post A/sub L/pre A/sub", position_embedding="sinusoidal", hidden_act="relu", ffn_bias=False)
    model = randomise_(HybridBertForMaskedLM(cfg)).eval()
    ids, mask = batch(seed=5)
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[2, 1], labels[1, 4] = 3, 4, 5
    with torch.no_grad():
        dense = model(ids, attention_mask=mask).logits
        sparse = model(ids, attention_mask=mask, labels=labels)
    model.save_pretrained(tmp_path)
    save_file({"ids": ids, "mask": mask, "labels": labels}, str(tmp_path / "inputs.safetensors"))

    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "hybrid-bert" and saved["layout"] == cfg.layout
    assert "auto_map" not in saved and (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True,
                          env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    child = load_file(str(tmp_path / "child.safetensors"))
    assert torch.equal(child["dense"], dense)
    assert torch.equal(child["sparse"], sparse.logits)
    assert torch.equal(child["loss"], sparse.loss.reshape(1))
