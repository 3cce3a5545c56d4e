"""Trials: a recipe, a budgeted pretraining loop, fine-tuning, latency -> TrialResult.

Knows nothing of Optuna or Ray, so ``run_trial`` works from a notebook. Names are imported
lazily: ``load_recipe`` and ``preflight`` import no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Recipe": "recipe", "RecipeError": "recipe", "load_recipe": "recipe",
    "TaskScore": "result", "TrialResult": "result",
    "preflight": "checks",
    "run_trial": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"hsearch.trial.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'hsearch.trial' has no attribute {name!r}")
