"""An exported layout used the standard `transformers` way: Auto classes, fill-mask pipeline,
fine-tuning with `Trainer` under named labels, text-classification pipeline (tiny model, CPU)."""

from __future__ import annotations

import json
import re

import pytest
import torch

import hsearch.model  # noqa: F401  (registers hybrid-bert with the Auto classes)
from _model_helpers import randomise_, tiny_config
from hsearch.analysis.export import _write_model, model_card
from hsearch.analysis.study import Objective, TrialRecord
from hsearch.data.tokenizer import train_wordpiece

LAYOUT = "SAL:sub"
POSITIVE = ["what a lovely layout", "a great and lovely model", "great work, lovely day", "lovely great fun"]
NEGATIVE = ["an awful slow layout", "a bad and awful model", "awful work, bad day", "bad slow pain"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny trained-looking checkpoint exported through the export path, with its model card."""
    from hsearch.model import HybridBertForMaskedLM

    root = tmp_path_factory.mktemp("export-usage")
    tok = train_wordpiece(POSITIVE + NEGATIVE + ["the layout of a model is data, not code"], 120, 1)
    model = randomise_(HybridBertForMaskedLM(tiny_config(LAYOUT, vocab_size=len(tok))), seed=3).eval()
    checkpoint = root / "checkpoint"
    model.save_pretrained(checkpoint)
    tok.save_pretrained(checkpoint)
    folder = root / "exported"
    folder.mkdir()
    rec = TrialRecord(number=4, state="COMPLETE", layout=LAYOUT, values=(0.5, 1.0), params={},
                      attrs={"latency_ms": 1.0}, datetime_start=None, datetime_complete=None)
    _write_model(rec, checkpoint, folder)
    card = model_card(rec, [Objective("score", "maximize"), Objective("latency_ms", "minimize")], {}, "tiny",
                      str(folder))
    (folder / "README.md").write_text(card)
    return folder, model, card


def _train_set(tokenizer, texts, labels):
    import datasets

    ds = datasets.Dataset.from_dict({"sentence": texts, "label": labels})
    return ds.map(lambda b: tokenizer(b["sentence"], truncation=True, max_length=32), batched=True)


def test_exported_folder_loads_with_auto_class_and_fills_masks(exported):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    folder, original, _ = exported
    model = AutoModelForMaskedLM.from_pretrained(folder).eval()
    assert type(model).__name__ == "HybridBertForMaskedLM" and model.config.layout == LAYOUT
    tok = AutoTokenizer.from_pretrained(folder)
    batch = tok(["a lovely [MASK] layout"], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, original(**batch).logits)
    fill = pipeline("fill-mask", model=str(folder), device="cpu")
    out = fill("a lovely [MASK] layout", top_k=3)
    assert len(out) == 3
    assert [o["score"] for o in out] == sorted((o["score"] for o in out), reverse=True)
    assert 0 < sum(o["score"] for o in out) <= 1 + 1e-6
    for o in out:  # each candidate is a real vocabulary token, put in the mask's place
        piece = o["token_str"].replace(" ", "").removeprefix("##")
        assert piece in o["sequence"].replace(" ", "") and o["token"] < len(tok)
    # the most likely token is the model's own argmax at the masked position
    with torch.no_grad():
        logits = model(**batch).logits[0, batch["input_ids"][0].tolist().index(tok.mask_token_id)]
    assert out[0]["token"] == int(logits.argmax())


def test_finetune_with_trainer_then_classify_with_label_names(exported, tmp_path):
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments,
                              pipeline)

    folder, _, _ = exported
    names = {0: "negative", 1: "positive"}
    tok = AutoTokenizer.from_pretrained(folder)
    texts, labels = POSITIVE + NEGATIVE, [1] * len(POSITIVE) + [0] * len(NEGATIVE)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(folder, id2label=names,
                                                               label2id={v: k for k, v in names.items()})
    assert type(model).__name__ == "HybridBertForSequenceClassification"
    assert model.config.label2id == {"negative": 0, "positive": 1}
    args = TrainingArguments(str(tmp_path / "run"), max_steps=24, learning_rate=3e-3, per_device_train_batch_size=8,
                             logging_steps=4, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                             disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=_train_set(tok, texts, labels), processing_class=tok)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 6 and losses[-1] < losses[0] / 2, losses  # it learned the training set
    saved = tmp_path / "classifier"
    trainer.save_model(str(saved))
    config = json.loads((saved / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["layout"] == LAYOUT

    clf = pipeline("text-classification", model=str(saved), device="cpu")
    got = clf(texts)
    assert {g["label"] for g in got} <= set(names.values())
    assert sum(g["label"] == names[y] for g, y in zip(got, labels)) == len(texts)  # the names, not LABEL_0


def test_the_model_card_lines_run_as_written(exported, tmp_path, monkeypatch, capsys):
    from transformers import AutoModelForMaskedLM

    folder, _, card = exported
    blocks = re.findall(r"```python\n(.*?)```", card, re.S)
    assert len(blocks) == 2 and f'pipeline("fill-mask", model={json.dumps(str(folder))})' in card
    load, finetune = blocks
    assert finetune.count("\n") == 4  # the import and three lines
    monkeypatch.chdir(tmp_path)  # TrainingArguments("finetuned") writes beside the caller
    namespace: dict = {}
    exec(load, namespace)
    tok = namespace["tokenizer"]
    namespace["train"] = _train_set(tok, POSITIVE + NEGATIVE, [1] * len(POSITIVE) + [0] * len(NEGATIVE))
    exec(finetune, namespace)
    printed = capsys.readouterr().out
    assert re.search(r"\[\{'label': '(negative|positive)', 'score': [0-9.e-]+\}\]", printed), printed
    # the encoder was trained, not just loaded
    before = AutoModelForMaskedLM.from_pretrained(folder).bert.embeddings.word_embeddings.weight
    after = namespace["model"].bert.embeddings.word_embeddings.weight
    assert not torch.equal(before, after.detach().cpu())
