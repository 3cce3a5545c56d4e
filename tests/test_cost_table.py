"""The cost table's additive model: exit norms, the least-squares fit, predictions, JSON."""

from __future__ import annotations

import pytest

from hsearch.cost.table import CostTable, Probe, exit_norms, fit
from hsearch.layout import Layout

# A made-up machine: what each part costs, written down by hand.
FIXED = {"step_seconds": 0.010, "latency_ms": 0.50, "params": 300_000}
EXIT = {"step_seconds": 0.0004, "latency_ms": 0.02, "params": 128}
PER_LAYER = {
    "S/post": {"step_seconds": 0.004, "latency_ms": 0.30, "params": 50_000},
    "A/post": {"step_seconds": 0.003, "latency_ms": 0.20, "params": 45_000},
    "S/sub": {"step_seconds": 0.005, "latency_ms": 0.35, "params": 50_512},
    "A/sub": {"step_seconds": 0.0035, "latency_ms": 0.25, "params": 45_512},
}


def _truth(text: str) -> dict[str, float]:
    lay = Layout.parse(text)
    out = {}
    for term in FIXED:
        out[term] = FIXED[term] + EXIT[term] * exit_norms(lay) + sum(
            PER_LAYER[f"{k}/{n}"][term] for k, n in zip(lay.kinds, lay.norms))
    return out


def _probe(text: str) -> Probe:
    t = _truth(text)
    return Probe(str(Layout.parse(text)), t["step_seconds"], t["latency_ms"], int(t["params"]))


@pytest.mark.parametrize("text, exits", [
    ("SSSS:post", 0), ("SASA:sub", 1), ("S/pre A/post", 1), ("S/sub A/sub S/post A/pre", 2),
    ("S/post A/pre S/sub A/post", 1), ("S/pre S/post S/pre S/post", 2),
])
def test_exit_norms_counted_as_the_model_builds_them(text, exits):
    assert exit_norms(Layout.parse(text)) == exits


def test_fit_recovers_the_parts_and_predicts_unseen_layouts_exactly():
    # Probes as hsearch takes them: every variant one layer deep and full depth.
    probes = [_probe(" ".join([v] * n)) for v in PER_LAYER for n in (1, 12)]
    table = fit(probes, list(PER_LAYER), key="k", hardware={"cpu": "test"}, shapes={"num_layers": 12})
    for v, costs in PER_LAYER.items():
        for term, value in costs.items():
            assert table.per_layer[v][term] == pytest.approx(value, rel=1e-9, abs=1e-9)
    for text in ("SASASASASASA:sub", "SSAAAAAAAASS:sub", "AAAAAASSAAAS:post"):
        want = _truth(text)
        got = table.predict(text)
        assert got.step_seconds == pytest.approx(want["step_seconds"], rel=1e-9)
        assert got.latency_ms == pytest.approx(want["latency_ms"], rel=1e-9)
        assert got.params == int(want["params"])
    assert table.notes["probe_fit_worst_step_error"] < 1e-9


def test_a_term_no_probe_separates_gets_no_noise():
    # Only sub layers: every probe has one exit norm, so fixed and exit cannot be told apart;
    # the minimum-norm solution still predicts every layout of that family exactly.
    variants = ["S/sub", "A/sub"]
    probes = [_probe(" ".join([v] * n)) for v in variants for n in (1, 12)]
    table = fit(probes, variants, key="k", hardware={}, shapes={})
    want = _truth("SASASASASASA:sub")
    assert table.predict("SASASASASASA:sub").step_seconds == pytest.approx(want["step_seconds"], rel=1e-9)


def test_unknown_variant_names_the_missing_ones_and_json_round_trips():
    probes = [_probe(" ".join(["S/post"] * n)) for n in (1, 12)]
    table = fit(probes, ["S/post"], key="k", hardware={"cpu": "x"}, shapes={"a": 1}, seconds=1.5)
    with pytest.raises(KeyError, match="no layer variant A/post"):
        table.predict("SASA:post")
    again = CostTable.from_json(table.to_json())
    assert again == table and again.predict("SSSS:post") == table.predict("SSSS:post")
