"""Reading a study back: Pareto front, hypervolume, per-layer importance, report, export, dashboard."""

from hsearch.analysis.pareto import ParetoResult, dominates, non_dominated, pareto, render
from hsearch.analysis.study import TrialRecord, load_study, records

__all__ = [
    "ParetoResult",
    "TrialRecord",
    "dominates",
    "load_study",
    "non_dominated",
    "pareto",
    "records",
    "render",
]
