"""model.init_from (the paper's §4.4): a trial starts from a pretrained BERT, offline, tiny.

A BertForMaskedLM of width 32 and a character-level WordPiece vocabulary are saved with
save_pretrained to a folder that the recipe names; the Hub path is a stand-in serving the
same files. Mismatches are one-line errors before any training.
"""

from __future__ import annotations

import json
import shutil
import string

import pytest
import torch

from hsearch.errors import HsearchError
from hsearch.trial import load_recipe, preflight, run_trial

LAYERS = 4
LAYOUT = "SASA:sub"  # S layers 0, 2 copy BERT's attention; A layers 1, 3 and the sub-LN norms stay fresh
CHARS = list(string.ascii_lowercase) + list(string.digits) + list(".,'\"()-:;!?")


def _vocab(extra: list[str] = ()) -> dict[str, int]:
    from hsearch.data.tokenizer import SPECIAL_TOKENS

    tokens = SPECIAL_TOKENS + CHARS + [f"##{c}" for c in string.ascii_lowercase + string.digits] + list(extra)
    return {t: i for i, t in enumerate(tokens)}


def _save_tokenizer(vocab: dict[str, int], folder) -> None:
    from hsearch.data.tokenizer import _bert_from_vocab

    _bert_from_vocab(vocab).save_pretrained(str(folder))


def _save_bert(folder, vocab_size: int, **overrides) -> None:
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(123)
    cfg = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(BertConfig(**{**cfg, **overrides})).save_pretrained(str(folder))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny BERT checkpoint with its tokenizer beside it (tokenizer.json only, as transformers 5 saves)."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = _vocab()
    _save_tokenizer(vocab, folder)
    _save_bert(folder, len(vocab))
    return folder


def _recipe(ckpt, **overrides):
    base = {"model.hidden_size": 32, "model.num_attention_heads": 2, "model.intermediate_size": 64,
            "pretrain.batch_size": 4, "pretrain.seq_len": 32, "pretrain.eval_batch_size": 32,
            "pretrain.budget": "2 steps", "corpus.eval_blocks": 8, "corpus.max_tokens": 8000,
            "fidelity.rungs": [1.0], "pretrain.schedule": "linear", "finetune.tasks": {}, "latency.enabled": False,
            "tokenizer.train": None, "tokenizer.name": str(ckpt), "model.init_from": str(ckpt)}
    return load_recipe("cpu-small", {**base, **overrides})


def _one_line(fn, *args, **kwargs) -> str:
    with pytest.raises(HsearchError) as exc:
        fn(*args, **kwargs)
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_trial_starts_from_the_checkpoint(ckpt, shared_data, trial_cache, tmp_path, monkeypatch):
    """The weights pretraining receives are the checkpoint's where the structure matches, and
    fresh elsewhere; the copy report goes with the result (and its JSON)."""
    import hsearch.trial.pretrain as pretrain_mod
    from transformers import BertForMaskedLM

    seen = {}
    original = pretrain_mod.pretrain

    def capture(model, *args, **kwargs):
        seen.update({n: p.detach().clone() for n, p in model.named_parameters()})
        return original(model, *args, **kwargs)

    monkeypatch.setattr(pretrain_mod, "pretrain", capture)
    recipe = _recipe(ckpt)
    result = run_trial(LAYOUT, recipe, data_dir=shared_data, out_dir=tmp_path / "t")
    assert result.status == "complete", result.error
    assert result.optimizer_steps == 2 and seen

    bert = dict(BertForMaskedLM.from_pretrained(str(ckpt)).named_parameters())
    assert torch.equal(seen["bert.embeddings.word_embeddings.weight"], bert["bert.embeddings.word_embeddings.weight"])
    for i in (0, 2):  # S layers: fused qkv = query, key, value stacked; output projection
        src = f"bert.encoder.layer.{i}.attention"
        qkv = torch.cat([bert[f"{src}.self.{n}.weight"] for n in ("query", "key", "value")])
        assert torch.equal(seen[f"bert.encoder.layer.{i}.attention.qkv.weight"], qkv)
        assert torch.equal(seen[f"bert.encoder.layer.{i}.attention.out.weight"], bert[f"{src}.output.dense.weight"])
    for i in range(LAYERS):  # every layer's FFN
        assert torch.equal(seen[f"bert.encoder.layer.{i}.ffn.fc1.weight"],
                           bert[f"bert.encoder.layer.{i}.intermediate.dense.weight"])
    report = result.init_report
    assert report["source"] == str(ckpt) and 0 < report["copied_fraction"] < 1
    assert report["copied"]["bert.encoder.layer.0.attention.qkv.weight"].endswith("attention.self.value.weight")
    for fresh in ("bert.encoder.layer.1.attention.qkv.weight", "bert.encoder.layer.1.attention.query_score",
                  "bert.encoder.layer.0.attention_norm.weight", "bert.encoder.layer.0.attention.norm.weight"):
        assert fresh in report["fresh"] and fresh not in report["copied"]
    # A layers' qkv is not BERT's (it was left as initialised)
    assert not torch.equal(seen["bert.encoder.layer.1.attention.qkv.weight"],
                           torch.cat([bert[f"bert.encoder.layer.1.attention.self.{n}.weight"]
                                      for n in ("query", "key", "value")]))
    stored = json.loads((tmp_path / "t" / "result.json").read_text())
    assert stored["init_report"] == json.loads(json.dumps(report))


def test_trial_without_init_from_has_no_report():
    from hsearch.trial.result import TrialResult

    r = TrialResult(status="complete", layout="S:post", recipe_name="x", recipe_hash="h", seed=0)
    assert r.init_report is None and TrialResult.from_dict(r.to_dict()) == r


@pytest.mark.parametrize("key,value,theirs", [("model.hidden_size", 64, 32), ("model.num_attention_heads", 4, 2),
                                              ("model.intermediate_size", 128, 64),
                                              ("model.max_position_embeddings", 256, 128)])
def test_dimension_mismatch_is_one_line(ckpt, key, value, theirs):
    text = _one_line(preflight, _recipe(ckpt, **{key: value}))
    name = key.split(".")[1]
    assert f"{key} is {value}" in text and f"{name} {theirs}" in text and str(ckpt) in text


def test_layer_count_mismatch_before_training(ckpt, shared_data, trial_cache, monkeypatch):
    import hsearch.trial.pretrain as pretrain_mod

    recipe = _recipe(ckpt)
    preflight(recipe, layout=LAYOUT)
    text = _one_line(preflight, recipe, layout="SASASA:sub")
    assert "6 layers" in text and "num_hidden_layers 4" in text

    def no_training(*args, **kwargs):
        raise AssertionError("trained despite the mismatch")

    monkeypatch.setattr(pretrain_mod, "pretrain", no_training)
    monkeypatch.setattr(pretrain_mod, "pretrain_wsd", no_training)
    text = _one_line(run_trial, "SA:sub", recipe, data_dir=shared_data)
    assert "2 layers" in text and "num_hidden_layers 4" in text


def test_tokenizer_must_be_the_checkpoints(ckpt, tmp_path):
    bigger = tmp_path / "bigger"
    _save_tokenizer(_vocab(extra=["hello"]), bigger)
    text = _one_line(preflight, _recipe(ckpt, **{"tokenizer.name": str(bigger)}))
    assert f"{len(_vocab()) + 1} tokens against the checkpoint's {len(_vocab())}" in text

    swapped = tmp_path / "swapped"  # same size, two tokens exchanged; written as a vocab.txt
    tokens = list(_vocab())
    tokens[5], tokens[6] = tokens[6], tokens[5]
    swapped.mkdir()
    (swapped / "vocab.txt").write_text("\n".join(tokens) + "\n")
    text = _one_line(preflight, _recipe(ckpt, **{"tokenizer.name": str(swapped)}))
    assert "id 5 is 'b'" in text and "'a' in the checkpoint's" in text

    same = tmp_path / "same"  # the same vocabulary elsewhere is accepted
    _save_tokenizer(_vocab(), same)
    preflight(_recipe(ckpt, **{"tokenizer.name": str(same)}))

    # The checkpoint's config says a different vocab size than its (and the recipe's) tokenizer.
    odd = tmp_path / "odd"
    shutil.copytree(ckpt, odd)
    cfg = json.loads((odd / "config.json").read_text())
    cfg["vocab_size"] = 30522
    (odd / "config.json").write_text(json.dumps(cfg))
    text = _one_line(preflight, _recipe(odd))
    assert f"has {len(_vocab())} tokens" in text and "vocab_size 30522" in text

    # A vocabulary trained on the corpus can never be the checkpoint's: refused with the recipe.
    text = _one_line(load_recipe, "cpu-small", {"model.init_from": str(ckpt)})
    assert "tokenizer.train" in text and "model.init_from" in text


def test_bad_checkpoint_folders(ckpt, tmp_path):
    for missing in (tmp_path / "nowhere", "./no-such-checkpoint", "~/no/such/checkpoint"):
        text = _one_line(preflight, _recipe(ckpt, **{"model.init_from": str(missing)}))
        assert "folder not found" in text and str(missing) in text
    (tmp_path / "file").write_text("x")
    assert "not a folder" in _one_line(preflight, _recipe(ckpt, **{"model.init_from": str(tmp_path / "file")}))
    (tmp_path / "empty").mkdir()
    assert "no config.json" in _one_line(preflight, _recipe(ckpt, **{"model.init_from": str(tmp_path / "empty")}))
    roberta = tmp_path / "roberta"
    shutil.copytree(ckpt, roberta)
    cfg = json.loads((roberta / "config.json").read_text())
    (roberta / "config.json").write_text(json.dumps({**cfg, "model_type": "roberta"}))
    assert "model_type is 'roberta'" in _one_line(preflight, _recipe(ckpt, **{"model.init_from": str(roberta)}))
    with pytest.raises(HsearchError):
        load_recipe("cpu-small", {"tokenizer.train": None, "model.init_from": " "})


def test_hub_id_goes_through_the_hub(ckpt, monkeypatch):
    """A Hub id reads config.json and the tokenizer files with hf_hub_download, and the weights
    with from_pretrained(id) (stand-ins serving the local folder's files)."""
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError
    from transformers import BertForMaskedLM

    asked = []

    def download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        assert repo_id == "someone/tiny-bert"
        if not (ckpt / filename).is_file():
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(ckpt / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    recipe = _recipe(ckpt, **{"model.init_from": "someone/tiny-bert"})
    preflight(recipe, layout=LAYOUT)
    assert ("someone/tiny-bert", "config.json") in asked and ("someone/tiny-bert", "tokenizer.json") in asked
    text = _one_line(preflight, _recipe(ckpt, **{"model.init_from": "someone/tiny-bert", "model.hidden_size": 64}))
    assert "'someone/tiny-bert' has hidden_size 32" in text

    loaded = []
    real = BertForMaskedLM.from_pretrained

    def from_pretrained(name, *args, **kwargs):
        loaded.append(name)
        return real(str(ckpt), *args, **kwargs)

    monkeypatch.setattr(BertForMaskedLM, "from_pretrained", from_pretrained)
    from hsearch.layout import Layout
    from hsearch.model import HybridBertConfig, HybridBertForMaskedLM
    from hsearch.trial.warmstart import warm_start

    model = HybridBertForMaskedLM(HybridBertConfig(layout=LAYOUT, vocab_size=len(_vocab()), hidden_size=32,
                                                   num_attention_heads=2, intermediate_size=64))
    report = warm_start(model, recipe, Layout.parse(LAYOUT))
    assert loaded == ["someone/tiny-bert"] and report["source"] == "someone/tiny-bert" and report["copied"]


def test_unloadable_weights_are_one_line(ckpt, tmp_path):
    from hsearch.layout import Layout
    from hsearch.model import HybridBertConfig, HybridBertForMaskedLM
    from hsearch.trial.warmstart import warm_start

    broken = tmp_path / "broken"
    shutil.copytree(ckpt, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    model = HybridBertForMaskedLM(HybridBertConfig(layout=LAYOUT, vocab_size=len(_vocab()), hidden_size=32,
                                                   num_attention_heads=2, intermediate_size=64))
    text = _one_line(warm_start, model, _recipe(broken), Layout.parse(LAYOUT))
    assert "weights cannot be loaded" in text and str(broken) in text
