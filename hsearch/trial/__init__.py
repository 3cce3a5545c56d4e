"""Trials: a recipe, a budgeted pretraining loop, fine-tuning, latency -> TrialResult.

Knows nothing of Optuna or Ray, so ``run_trial`` works from a notebook.
"""

from hsearch.trial.recipe import Recipe, RecipeError, load_recipe
from hsearch.trial.result import TaskScore, TrialResult
from hsearch.trial.runner import run_trial

__all__ = ["Recipe", "RecipeError", "TaskScore", "TrialResult", "load_recipe", "run_trial"]
