"""Layout strings: parsing, canonical round trips, error messages, presets."""

from __future__ import annotations

import pytest

from hsearch.errors import HsearchError
from hsearch.layout import KINDS, NORMS, PRESETS, Layout, LayoutError, preset_name, resolve


@pytest.mark.parametrize(
    "text, kinds, norms",
    [
        ("SASASASASASA:sub", "SASASASASASA", ("sub",) * 12),
        ("SLA:pre", "SLA", ("pre",) * 3),
        ("S/pre A/sub L/post", "SAL", ("pre", "sub", "post")),
        ("  A:post ", "A", ("post",)),
    ],
)
def test_parse(text, kinds, norms):
    layout = Layout.parse(text)
    assert layout.kinds == tuple(kinds)
    assert layout.norms == norms
    assert layout.num_layers == len(kinds)


@pytest.mark.parametrize("text", ["SASA:sub", "S/pre A/sub L/post", "L:pre", "S/sub S/pre"])
def test_round_trip(text):
    layout = Layout.parse(text)
    assert Layout.parse(str(layout)) == layout
    assert str(Layout.parse(str(layout))) == str(layout)


def test_per_layer_form_with_one_norm_becomes_compact():
    layout = Layout.parse("S/sub A/sub")
    assert str(layout) == "SA:sub"
    assert layout.uniform_norm == "sub"
    assert Layout.parse("S/sub A/pre").uniform_norm is None


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("SAXS:sub", ["'X'", "position 2", "S, A, L"]),
        ("SASA:mid", ["'mid'", "post, pre, sub"]),
        ("SASA", ["no norm placement", "post, pre, sub"]),
        ("S/pre Q/sub", ["layer 1", "'Q/sub'", "S, A, L"]),
        ("S/pre A/side", ["layer 1", "'side'", "post, pre, sub"]),
        (":sub", ["no layers"]),
        ("", ["empty"]),
    ],
)
def test_errors_name_the_problem(text, fragments):
    with pytest.raises(LayoutError) as info:
        Layout.parse(text)
    assert isinstance(info.value, HsearchError) and isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_constructor_validates():
    with pytest.raises(LayoutError, match="3 attention kinds but 2"):
        Layout(("S", "A", "S"), ("sub", "sub"))
    with pytest.raises(LayoutError, match="layer 1: unknown attention kind 'Z'"):
        Layout(("S", "Z"), ("sub", "sub"))


def test_presets_match_the_paper():
    assert set(PRESETS) == {"bert-base", "addbert", "hbert-v1", "hbert-v2"}
    assert str(PRESETS["bert-base"].layout) == "SSSSSSSSSSSS:post"
    assert str(PRESETS["addbert"].layout) == "AAAAAAAAAAAA:post"
    v1 = PRESETS["hbert-v1"].layout
    assert [i for i, k in enumerate(v1.kinds) if k == "S"] == [0, 2, 4, 6, 8, 10]
    assert v1.uniform_norm == "sub"
    v2 = PRESETS["hbert-v2"].layout
    assert [i for i, k in enumerate(v2.kinds) if k == "S"] == [0, 1, 10, 11]
    for name in ("hbert-v1", "hbert-v2"):
        opts = PRESETS[name].options
        assert (opts["hidden_act"], opts["ffn_bias"], opts["position_embedding"]) == ("relu", False, "sinusoidal")
        assert opts["hidden_dropout_prob"] == 0.005
    for name in ("bert-base", "addbert"):
        opts = PRESETS[name].options
        assert (opts["hidden_act"], opts["ffn_bias"], opts["position_embedding"]) == ("gelu", True, "learned")
        assert opts["hidden_dropout_prob"] == 0.1
    for preset in PRESETS.values():
        assert preset_name(preset.layout) == preset.name
        assert set(preset.layout.kinds) <= set(KINDS) and set(preset.layout.norms) <= set(NORMS)


def test_resolve():
    layout, options, name = resolve("HBERT-V2")
    assert name == "hbert-v2" and layout == PRESETS["hbert-v2"].layout and options["hidden_act"] == "relu"
    layout, options, name = resolve("SAL:pre")
    assert name is None and dict(options) == {} and str(layout) == "SAL:pre"
    with pytest.raises(LayoutError, match="neither a preset"):
        resolve("hbert-v3")
    assert preset_name(Layout.parse("SAL:pre")) is None
