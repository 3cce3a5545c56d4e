"""TrialResult: everything one trial measured, JSON-serialisable.

The search layer stores it on the Optuna trial under stable attribute names
(:func:`hsearch.search.study.result_attrs`); renaming a field breaks old studies.
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
    latency_ms: float | None = None  # measured steady latency: lowest median over blocks of runs
    latency_ms_median: float | None = None  # median of all timed runs
    latency_ms_spread: float | None = None  # inter-quartile range of all timed runs
    latency_path: str | None = None  # which inference path was timed (e.g. "cpu-fp32-eager")
    latency_ms_repeats: list[float] = field(default_factory=list)  # steady latency of each repeat of the protocol
    params: int | None = None
    tokens_seen: int = 0
    optimizer_steps: int = 0
    pretrain_seconds: float = 0.0  # the training loop's wall clock (charged against a wall-clock budget)
    charge: str = "wall-clock"  # how the time budget was charged: "wall-clock" | "cost-model"
    cost_table: str | None = None  # key of the cost table the predictions come from
    step_seconds_predicted: float | None = None  # the cost table's step time for this layout
    pretrain_seconds_predicted: float | None = None  # steps x predicted step time (charged on the cost model)
    latency_ms_predicted: float | None = None  # the cost table's latency: the search's objective when present
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
    # Multi-fidelity (pretrain.schedule: wsd): the rung this result is at, each rung scored in this
    # task (hsearch.trial.pretrain.RungRecord as dicts), and the optimiser steps the task itself ran
    # (optimizer_steps counts the model's steps, resumed ones included).
    rung: int | None = None
    rungs: list[dict[str, Any]] = field(default_factory=list)
    steps_run: int = 0
    # model.init_from (the paper's §4.4): the checkpoint and what was copied from it
    # (hsearch.trial.warmstart.report_dict: source, copied {ours: BERT's}, fresh, unused, notes,
    # copied_numel, total_numel, copied_fraction, summary); None for a model trained from scratch.
    init_report: dict[str, Any] | None = None

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
