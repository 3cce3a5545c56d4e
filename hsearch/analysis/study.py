"""Read a finished (or running) study back: per-trial records and the study's objectives.

Analysis only reads: the study is opened with :func:`hsearch.search.study.load_existing_study`,
which refuses a SQLite file that does not exist instead of creating an empty one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hsearch.search.study import load_existing_study as load_study  # noqa: F401  (analysis's entry point)


@dataclass
class Objective:
    name: str
    direction: str  # "maximize" | "minimize"

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b


def objectives(study) -> list[Objective]:
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    return [Objective(n, d.name.lower()) for n, d in zip(names, study.directions)]


@dataclass
class TrialRecord:
    """One Optuna trial as analysis sees it (values only for complete trials)."""

    number: int
    state: str  # Optuna state name: COMPLETE, FAIL, PRUNED, RUNNING, WAITING
    layout: str | None
    values: tuple[float, ...] | None
    attrs: dict[str, Any]
    params: dict[str, Any]
    datetime_start: datetime | None
    datetime_complete: datetime | None
    result: dict[str, Any] = field(default_factory=dict)  # TrialResult.to_dict() when stored

    @property
    def complete(self) -> bool:
        return self.state == "COMPLETE" and self.values is not None and all(math.isfinite(v) for v in self.values)

    @property
    def origin(self) -> str:
        return str(self.attrs.get("origin", ""))

    @property
    def seed_preset(self) -> str | None:
        """The seed's label when the trial evaluates a seed of the search: its own (origin
        ``seed:<label>``) or, for a retry of a seed's lost attempt, the ``seed_label`` it carries."""
        if self.attrs.get("seed_label"):
            return str(self.attrs["seed_label"])
        if self.origin.startswith("seed:"):
            return self.origin.split(":", 1)[1] or self.layout
        return None

    @property
    def hardware(self) -> dict[str, Any]:
        raw = self.attrs.get("hardware")
        if isinstance(raw, dict):
            return raw
        try:
            return json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            return {}

    def task_accuracies(self) -> dict[str, float]:
        """Per-task score-split accuracy (``<task>_accuracy`` attrs, MLM and mean excluded)."""
        out = {}
        for key, value in self.attrs.items():
            if key.endswith("_accuracy") and key not in ("mlm_accuracy", "mean_accuracy") and not key.endswith(
                "_test_accuracy"
            ):
                out[key[: -len("_accuracy")]] = value
        return dict(sorted(out.items()))


def records(study) -> list[TrialRecord]:
    out = []
    for t in study.get_trials(deepcopy=False):
        attrs = dict(t.user_attrs)
        result: dict[str, Any] = {}
        if isinstance(attrs.get("result"), str):
            try:
                result = json.loads(attrs["result"])
            except ValueError:
                result = {}
        out.append(
            TrialRecord(
                number=t.number,
                state=t.state.name,
                layout=attrs.get("layout") or result.get("layout"),
                values=tuple(float(v) for v in t.values) if t.values is not None else None,
                attrs=attrs,
                params=dict(t.params),
                datetime_start=t.datetime_start,
                datetime_complete=t.datetime_complete,
                result=result,
            )
        )
    return out


def study_info(study) -> dict[str, Any]:
    """The study's user attrs, JSON strings decoded where they are JSON objects/lists."""
    info: dict[str, Any] = {}
    for key, value in study.user_attrs.items():
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except ValueError:
                pass
        info[key] = value
    return info
