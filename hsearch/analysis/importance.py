"""Why the front looks as it does: per-layer effects of kinds/norms, and Optuna importances.

Per-layer effects are read from the layout strings (not from sampler parameters), so seeds
and sampled trials count alike: for layer position i and kind k, the mean objective of
complete trials with kind k at i minus the mean over all complete trials.

Optuna 5's default importance evaluator (PED-ANOVA) scores how much a parameter matters
for *low* target values, so the maximised objective is passed negated.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

from hsearch.analysis.study import Objective, TrialRecord
from hsearch.layout import KINDS, NORMS, Layout, LayoutError

# Below this many complete trials with parameters, importances are noise: say so instead.
MIN_TRIALS_FOR_IMPORTANCE = 4


@dataclass
class LayerEffects:
    """effects[objective][category][layer] = mean difference (NaN where nobody had it)."""

    num_layers: int
    kinds: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    norms: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    counts_kind: dict[str, list[int]] = field(default_factory=dict)
    counts_norm: dict[str, list[int]] = field(default_factory=dict)


def _layouts(recs: Sequence[TrialRecord]) -> list[tuple[TrialRecord, Layout]]:
    out = []
    for r in recs:
        if not r.complete or not r.layout:
            continue
        try:
            out.append((r, Layout.parse(r.layout)))
        except LayoutError:
            continue  # a layout this version cannot read still counts in the front, not here
    return out


def layer_effects(recs: Sequence[TrialRecord], objs: Sequence[Objective]) -> LayerEffects:
    pairs = _layouts(recs)
    n = max((lay.num_layers for _, lay in pairs), default=0)
    eff = LayerEffects(n)
    for attr, cats, store, counts in (
        ("kinds", list(KINDS), eff.kinds, eff.counts_kind),
        ("norms", list(NORMS), eff.norms, eff.counts_norm),
    ):
        for c in cats:
            counts[c] = [sum(1 for _, lay in pairs if i < lay.num_layers and getattr(lay, attr)[i] == c) for i in range(n)]
        for j, o in enumerate(objs):
            overall = [r.values[j] for r, _ in pairs]
            mean_all = sum(overall) / len(overall) if overall else math.nan
            store[o.name] = {}
            for c in cats:
                per_layer = []
                for i in range(n):
                    vals = [r.values[j] for r, lay in pairs if i < lay.num_layers and getattr(lay, attr)[i] == c]
                    per_layer.append(sum(vals) / len(vals) - mean_all if vals else math.nan)
                store[o.name][c] = per_layer
    return eff


@dataclass
class Importances:
    values: dict[str, dict[str, float]]  # objective -> param -> importance (sums to 1)
    notes: dict[str, str]  # objective -> why importances are missing


def param_importances(study, recs: Sequence[TrialRecord], objs: Sequence[Objective]) -> Importances:
    import optuna

    usable = [r for r in recs if r.complete and r.params]
    values: dict[str, dict[str, float]] = {}
    notes: dict[str, str] = {}
    varying = {k for r in usable for k in r.params if len({str(u.params.get(k)) for u in usable}) > 1}
    for j, o in enumerate(objs):
        if len(usable) < MIN_TRIALS_FOR_IMPORTANCE:
            notes[o.name] = (
                f"not computed: {len(usable)} complete trial(s) with sampled parameters, "
                f"need at least {MIN_TRIALS_FOR_IMPORTANCE}"
            )
            continue
        if not varying:
            notes[o.name] = "not computed: no parameter took more than one value"
            continue
        sign = -1.0 if o.maximize else 1.0  # evaluator rewards low targets

        def target(t, j=j, sign=sign):
            return sign * t.values[j]

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imp = optuna.importance.get_param_importances(study, target=target, params=sorted(varying))
        except Exception as exc:  # the evaluator's own limits (e.g. too few distinct values)
            notes[o.name] = f"not computed: {type(exc).__name__}: {exc}".splitlines()[0]
            continue
        values[o.name] = dict(imp)
    return Importances(values, notes)
