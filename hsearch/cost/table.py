"""The cost table of one recipe on one machine, and what it predicts for any layout (pure Python).

A layout's cost is modelled as additive over its layers::

    cost(layout) = fixed + exit * exit_norms(layout) + sum_i per_layer[kind_i/norm_i]

for the training step (forward + backward + optimiser step, seconds), the inference forward
(ms, the latency protocol's shape) and the parameter count. ``fixed`` holds the embeddings,
the MLM head and their optimiser share; ``exit`` the LayerNorm a pre/sub run ends on. The
terms are fitted by least squares to whole-model probes measured on the machine
(:func:`fit`), so what is predicted is what was timed, never a FLOP count.

The table is data: JSON with the hardware and versions it was measured on, stored on a
study and cached per machine, so a trial charged on it is a function of (layout, recipe,
seed, table) alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from hsearch.layout import Layout

TERMS = ("step_seconds", "latency_ms", "params")


@dataclass(frozen=True)
class Probe:
    """One measured whole model: its layout and the three costs."""

    layout: str
    step_seconds: float
    latency_ms: float
    params: int
    step_spread: float = 0.0  # IQR of the timed runs, in the same units
    latency_spread: float = 0.0


@dataclass(frozen=True)
class Prediction:
    step_seconds: float
    latency_ms: float
    params: int


def variant(kind: str, norm: str) -> str:
    return f"{kind}/{norm}"


def exit_norms(layout: Layout) -> int:
    """LayerNorms a pre/sub run ends on: one after every such run followed by a post layer or the end."""
    norms = layout.norms
    return sum(1 for i, n in enumerate(norms) if n != "post" and (i == len(norms) - 1 or norms[i + 1] == "post"))


def _features(layout: Layout, variants: Sequence[str]) -> list[float]:
    counts = {v: 0 for v in variants}
    for k, n in zip(layout.kinds, layout.norms):
        counts[variant(k, n)] += 1
    return [1.0, float(exit_norms(layout)), *(float(counts[v]) for v in variants)]


def _lstsq(rows: list[list[float]], ys: list[float]) -> list[float]:
    """Minimum-norm least squares (numpy), so a term no probe can tell apart gets 0, not noise."""
    import numpy as np

    solution, *_ = np.linalg.lstsq(np.asarray(rows), np.asarray(ys), rcond=None)
    return [float(v) for v in solution]


@dataclass(frozen=True)
class CostTable:
    key: str  # what it was measured for: hardware, versions, recipe shapes
    hardware: dict[str, Any]
    shapes: dict[str, Any]
    variants: tuple[str, ...]
    fixed: dict[str, float]
    exit: dict[str, float]
    per_layer: dict[str, dict[str, float]]  # variant -> term -> cost
    probes: tuple[Probe, ...] = ()
    seconds: float = 0.0  # how long measuring took
    notes: dict[str, Any] = field(default_factory=dict)

    def covers(self, layout: Layout) -> bool:
        """Whether every layer of ``layout`` is a variant this table measured."""
        return all(variant(k, n) in self.per_layer for k, n in zip(layout.kinds, layout.norms))

    def predict(self, layout: Layout | str) -> Prediction:
        lay = layout if isinstance(layout, Layout) else Layout.parse(str(layout))
        missing = sorted({variant(k, n) for k, n in zip(lay.kinds, lay.norms)} - set(self.per_layer))
        if missing:
            raise KeyError(f"the cost table has no layer variant {', '.join(missing)} "
                           f"(measured: {', '.join(self.variants)})")
        x = _features(lay, self.variants)
        out = {term: sum(c * f for c, f in zip(self._coefficients(term), x)) for term in TERMS}
        return Prediction(out["step_seconds"], out["latency_ms"], int(round(out["params"])))

    def _coefficients(self, term: str) -> list[float]:
        """The fitted terms in :func:`_features` order."""
        return [self.fixed[term], self.exit[term], *(self.per_layer[v][term] for v in self.variants)]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "CostTable":
        data = json.loads(text)
        data["variants"] = tuple(data["variants"])
        data["probes"] = tuple(Probe(**p) for p in data.get("probes", ()))
        return cls(**data)


def fit(probes: Sequence[Probe], variants: Sequence[str], *, key: str, hardware: dict[str, Any],
        shapes: dict[str, Any], seconds: float = 0.0) -> CostTable:
    """Fit the additive model to measured probes (see the module docstring)."""
    variants = tuple(variants)
    rows = [_features(Layout.parse(p.layout), variants) for p in probes]
    solved = {term: _lstsq(rows, [float(getattr(p, term)) for p in probes]) for term in TERMS}
    fixed = {term: solved[term][0] for term in TERMS}
    exit_ = {term: solved[term][1] for term in TERMS}
    per_layer = {v: {term: solved[term][2 + i] for term in TERMS} for i, v in enumerate(variants)}
    table = CostTable(key, hardware, shapes, variants, fixed, exit_, per_layer, tuple(probes), seconds)
    worst = max((abs(table.predict(p.layout).step_seconds / p.step_seconds - 1) for p in probes), default=math.nan)
    return dataclasses.replace(table, notes={"probe_fit_worst_step_error": worst})
