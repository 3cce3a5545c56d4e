"""TrialResult: everything one trial measured, JSON-serialisable.

The search layer stores ``user_attrs()`` on the Optuna trial under these stable names;
analysis and the dashboard read them back. Renaming a key breaks old studies.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Trial outcomes. Only "complete" carries objective values.
COMPLETE = "complete"
DIVERGED = "diverged"  # loss became NaN/inf
OOM = "oom"  # out of device memory
FAILED = "failed"  # any other exception
CANCELLED = "cancelled"  # stopped by the caller (deadline, Ctrl-C)
STATUSES = (COMPLETE, DIVERGED, OOM, FAILED, CANCELLED)

OBJECTIVES = ("mean", "mlm", "emotion", "massive")


@dataclass
class TaskScore:
    """Fine-tuning result of one downstream task over several fine-tune seeds."""

    name: str
    score_split: str  # split the search optimises (e.g. "validation")
    report_split: str  # split that is reported (e.g. "test")
    score_mean: float
    score_std: float
    report_mean: float
    report_std: float
    num_classes: int
    train_examples: int
    seeds: list[int] = field(default_factory=list)
    score_per_seed: list[float] = field(default_factory=list)
    report_per_seed: list[float] = field(default_factory=list)


@dataclass
class TrialResult:
    status: str
    layout: str
    recipe_name: str
    recipe_hash: str
    seed: int
    mlm_accuracy: float | None = None  # held-out split, masked positions
    mlm_loss: float | None = None
    tasks: dict[str, TaskScore] = field(default_factory=dict)
    mean_accuracy: float | None = None  # mean of the tasks' score-split accuracy
    latency_ms: float | None = None  # steady latency: lowest median over blocks of runs (the objective)
    latency_ms_median: float | None = None  # median of all timed runs
    latency_ms_spread: float | None = None  # inter-quartile range of all timed runs
    latency_path: str | None = None  # which inference path was timed (e.g. "cpu-fp32-eager")
    params: int | None = None
    tokens_seen: int = 0
    optimizer_steps: int = 0
    pretrain_seconds: float = 0.0  # charged against the budget
    data_prep_seconds: float = 0.0  # tokenisation/packing, not charged
    compile_seconds: float = 0.0  # torch.compile warm-up, not charged
    finetune_seconds: float = 0.0
    latency_seconds: float = 0.0
    total_seconds: float = 0.0
    tokens_per_second: float = 0.0
    budget: str | None = None  # the pretraining budget as given ("60s", "200M", "1000 steps")
    budget_fraction_used: float = 0.0
    hardware: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    checkpoint_dir: str | None = None  # save_pretrained folder (model + tokenizer), if kept
    cache_hit: bool = False  # tokenised corpus came from the cache

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown trial status {self.status!r} (allowed: {', '.join(STATUSES)})")

    @property
    def ok(self) -> bool:
        return self.status == COMPLETE

    def objective(self, name: str) -> float:
        """The score the search maximises: ``mean`` | ``mlm`` | ``emotion`` | ``massive``."""
        if name == "mean":
            value = self.mean_accuracy
        elif name == "mlm":
            value = self.mlm_accuracy
        elif name in self.tasks:
            value = self.tasks[name].score_mean
        else:
            raise ValueError(
                f"objective {name!r} is not available for this trial "
                f"(allowed: mean, mlm, {', '.join(self.tasks) or 'no tasks'})"
            )
        if value is None or not math.isfinite(value):
            raise ValueError(f"trial has no finite {name!r} score (status {self.status})")
        return float(value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialResult":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrialResult fields: {', '.join(sorted(unknown))}")
        data = dict(data)
        data["tasks"] = {k: TaskScore(**v) for k, v in data.get("tasks", {}).items()}
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "TrialResult":
        return cls.from_dict(json.loads(text))

    def user_attrs(self) -> dict[str, Any]:
        """Flat, stable attribute names for Optuna (shown by the dashboard).

        Scalars stay scalars so the dashboard can sort and plot them; ``result`` holds
        the whole result as JSON so nothing is lost.
        """
        attrs: dict[str, Any] = {
            "layout": self.layout,
            "status": self.status,
            "recipe": self.recipe_name,
            "recipe_hash": self.recipe_hash,
            "seed": self.seed,
            "mlm_accuracy": self.mlm_accuracy,
            "mlm_loss": self.mlm_loss,
            "mean_accuracy": self.mean_accuracy,
            "latency_ms": self.latency_ms,
            "latency_ms_median": self.latency_ms_median,
            "latency_ms_spread": self.latency_ms_spread,
            "latency_path": self.latency_path,
            "params": self.params,
            "tokens_seen": self.tokens_seen,
            "optimizer_steps": self.optimizer_steps,
            "tokens_per_second": self.tokens_per_second,
            "pretrain_seconds": self.pretrain_seconds,
            "total_seconds": self.total_seconds,
            "budget": self.budget,
            "device": self.hardware.get("device_name"),
            "hardware": json.dumps(self.hardware, sort_keys=True),
            "error": self.error,
            "checkpoint_dir": self.checkpoint_dir,
        }
        for name, task in self.tasks.items():
            attrs[f"{name}_accuracy"] = task.score_mean
            attrs[f"{name}_accuracy_std"] = task.score_std
            attrs[f"{name}_test_accuracy"] = task.report_mean
        attrs["result"] = self.to_json(sort_keys=True)
        return {k: v for k, v in attrs.items() if v is not None}
