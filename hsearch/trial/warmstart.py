"""``model.init_from``: a trial's model starts from a pretrained BERT (the paper's §4.4, Table 3).

The copy itself is :func:`hsearch.model.init_from_bert` (embeddings, S/L attention, every FFN,
post-norm LayerNorms, pooler and MLM head; A layers and pre/sub-norm LayerNorms stay fresh).
This module loads the checkpoint the recipe names (a Hub id through ``from_pretrained``, or a
local ``save_pretrained`` folder), checks it against the layout first (one-line errors, before
any training) and turns the copy report into plain data for :class:`TrialResult.init_report`.
"""

from __future__ import annotations

from typing import Any

from hsearch.errors import HsearchError
from hsearch.layout import Layout
from hsearch.trial.checks import _one_line, check_init_layers, init_source
from hsearch.trial.recipe import Recipe


def load_bert(recipe: Recipe):
    """The recipe's ``model.init_from`` checkpoint as a ``BertForMaskedLM`` on the CPU."""
    from transformers import BertForMaskedLM

    source = recipe.model.init_from
    folder = init_source(recipe)
    try:
        return BertForMaskedLM.from_pretrained(str(folder) if folder is not None else source).eval()
    except Exception as exc:  # noqa: BLE001 - missing weights, no network, corrupt file: one line
        raise HsearchError(f"{recipe.path}: model.init_from {source!r}: the BERT weights cannot be loaded: "
                           f"{type(exc).__name__}: {_one_line(exc)}") from None


def report_dict(report, source: str) -> dict[str, Any]:
    """An :class:`~hsearch.model.InitReport` as JSON-ready data."""
    return {"source": source, "copied": dict(report.copied), "fresh": list(report.fresh),
            "unused": list(report.unused), "notes": list(report.notes), "copied_numel": report.copied_numel,
            "total_numel": report.total_numel, "copied_fraction": report.copied_fraction,
            "summary": report.summary()}


def warm_start(model, recipe: Recipe, layout: Layout) -> dict[str, Any] | None:
    """Copy the ``model.init_from`` checkpoint into ``model`` in place; the copy report (``None``
    when the recipe has no init_from). Raises a one-line :class:`HsearchError` on a mismatch."""
    from hsearch.model import init_from_bert

    if recipe.model.init_from is None:
        return None
    check_init_layers(recipe, layout)  # before the weights are read
    bert = load_bert(recipe)
    report = init_from_bert(model, bert)  # its ConfigError (an HsearchError) names both values
    return report_dict(report, recipe.model.init_from)
