"""HybridBertConfig validation, presets/overrides, and Auto-class registration."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

import hsearch.model  # noqa: F401  (registers the Auto classes)
from hsearch.errors import HsearchError
from hsearch.model import (
    ConfigError,
    HybridBertConfig,
    HybridBertForMaskedLM,
    HybridBertForSequenceClassification,
    HybridBertModel,
)
from _model_helpers import tiny_config


@pytest.mark.parametrize(
    "overrides, fragments",
    [
        (dict(layout="SASA:sub", num_hidden_layers=6), ["num_hidden_layers=6", "'SASA:sub'", "4 layers"]),
        (dict(layout="SAQA:sub"), ["layout", "'Q'", "position 2", "S, A, L"]),
        (dict(layout="SASA:side"), ["layout", "'side'", "post, pre, sub"]),
        (dict(hidden_size=30, num_attention_heads=4), ["hidden_size=30", "num_attention_heads=4", "divisible"]),
        (dict(position_embedding="rotary"), ["position_embedding='rotary'", "learned, sinusoidal"]),
        (dict(hidden_act="tanh"), ["hidden_act='tanh'", "gelu, relu"]),
        (dict(classifier_pooling="max"), ["classifier_pooling='max'", "cls, mean"]),
        (dict(hidden_dropout_prob=1.5), ["hidden_dropout_prob", "1.5", "[0, 1)"]),
        (dict(local_window=0), ["local_window", "positive"]),
        (dict(intermediate_size=-4), ["intermediate_size", "positive"]),
        (dict(ffn_bias="yes"), ["ffn_bias", "true or false"]),
        (dict(pad_token_id=500, vocab_size=100), ["pad_token_id=500", "[0, 100)"]),
        (dict(layout="hbert-v1"), ["preset name", "from_layout"]),
    ],
)
def test_bad_configs_raise_clear_errors(overrides, fragments):
    with pytest.raises(ConfigError) as info:
        HybridBertConfig(**overrides)
    err = info.value
    assert isinstance(err, HsearchError) and isinstance(err, ValueError)
    for fragment in fragments:
        assert fragment in str(err), (fragment, str(err))


def test_num_hidden_layers_is_derived_and_layout_canonical():
    cfg = HybridBertConfig(layout="S/sub A/sub S/sub")
    assert cfg.layout == "SAS:sub" and cfg.num_hidden_layers == 3
    assert HybridBertConfig(layout="SAS:sub", num_hidden_layers=3).num_hidden_layers == 3
    assert HybridBertConfig().layout == "SASA:sub" and HybridBertConfig().model_type == "hybrid-bert"


def test_from_layout_applies_preset_then_overrides():
    cfg = HybridBertConfig.from_layout("hbert-v2", hidden_size=64, num_attention_heads=4, hidden_dropout_prob=0.2)
    assert cfg.layout == "SSAAAAAAAASS:sub" and cfg.num_hidden_layers == 12
    assert (cfg.hidden_act, cfg.ffn_bias, cfg.position_embedding) == ("relu", False, "sinusoidal")
    assert cfg.hidden_dropout_prob == 0.2 and cfg.attention_probs_dropout_prob == 0.005
    plain = HybridBertConfig.from_layout("SAL:pre", hidden_act="relu")
    assert plain.layout == "SAL:pre" and plain.hidden_act == "relu" and plain.ffn_bias is True
    with pytest.raises(HsearchError, match="neither a preset"):
        HybridBertConfig.from_layout("hbert-v9")


def test_config_dict_round_trip(tmp_path):
    cfg = tiny_config("S/post A/sub", num_labels=5, position_embedding="sinusoidal", ffn_bias=False)
    cfg.save_pretrained(tmp_path)
    again = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(again, HybridBertConfig)
    for key in ("layout", "num_hidden_layers", "position_embedding", "ffn_bias", "local_window", "num_labels"):
        assert getattr(again, key) == getattr(cfg, key)


def test_auto_classes_are_registered():
    cfg = tiny_config()
    assert type(AutoConfig.for_model("hybrid-bert")) is HybridBertConfig
    assert type(AutoModel.from_config(cfg)) is HybridBertModel
    assert type(AutoModelForMaskedLM.from_config(cfg)) is HybridBertForMaskedLM
    assert type(AutoModelForSequenceClassification.from_config(cfg)) is HybridBertForSequenceClassification


def test_sequence_classification_outputs_and_loss():
    model = HybridBertForSequenceClassification(tiny_config(num_labels=3)).eval()
    ids = torch.randint(1, 97, (4, 9))
    out = model(ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([0, 1, 2, 1]))
    assert out.logits.shape == (4, 3) and out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert model.config.problem_type == "single_label_classification"


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_pooler_summarises_cls_or_the_unpadded_mean(pooling):
    from _model_helpers import batch, randomise_

    model = randomise_(HybridBertModel(tiny_config(classifier_pooling=pooling))).eval()
    ids, mask = batch()
    with torch.no_grad():
        out = model(ids, attention_mask=mask)
        for row in range(ids.shape[0]):
            n = int(mask[row].sum())
            hidden = model(ids[row:row + 1, :n]).last_hidden_state[0]  # the row without its padding
            summary = hidden[0] if pooling == "cls" else hidden.mean(dim=0)
            expected = torch.tanh(summary @ model.pooler.dense.weight.T + model.pooler.dense.bias)
            torch.testing.assert_close(out.pooler_output[row], expected, atol=1e-5, rtol=1e-5)
