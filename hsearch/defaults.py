"""Defaults and choices shared by the CLI, the search and analysis (pure Python, no imports).

The CLI builds its parser from these without importing Optuna or torch, so ``--help`` is fast.
"""

from __future__ import annotations

import os

STORAGE = "sqlite:///hsearch.db"  # in the working directory; $HSEARCH_STORAGE overrides
STORAGE_ENV = "HSEARCH_STORAGE"
ARTIFACTS = "hsearch-artifacts"  # trial folders: ARTIFACTS/<study>/trial-<n>/
SPACE = "search_spaces/hbert.yaml"
RECIPE = "cpu-small"
SAMPLERS = ("tpe", "nsga2", "gp", "random")
SAMPLER = "tpe"
OBJECTIVES = ("mean", "mlm", "emotion", "massive")  # the score maximised; latency is minimised
OBJECTIVE = "mean"
HEARTBEAT_S = 30  # a trial silent for twice this is stale
REEVALUATE_SHARE = 0.2  # of a run's --budget, kept at the end to re-evaluate the front
REEVALUATE_SEEDS = 3  # fine-tuning seeds per re-evaluated member


def storage_url(text: str | os.PathLike | None) -> str:
    """A storage URL as given, or ``sqlite:///`` + a plain file path; None means
    ``$HSEARCH_STORAGE``, else :data:`STORAGE`."""
    text = str(text) if text else os.environ.get(STORAGE_ENV) or STORAGE
    return text if "://" in text else f"sqlite:///{text}"
