"""Mean, standard deviation and a 95% interval of a few repeated values (pure Python).

A re-evaluated front member has a handful of values per objective (one per fine-tuning seed,
pretraining seed or latency repeat). Its interval is the two-sided 95% Student-t interval of
the mean::

    mean ± t(0.975, n - 1) · s / √n        s: the sample standard deviation (divisor n - 1)

It says where the member's *mean* lies, not where one more run would land. One value gives
no interval (``ci95`` is None): such a member can be neither separated from others nor
separated by them (:func:`hsearch.front.separably_dominates`).

scipy is not a dependency, so the quantiles are a table: the 0.025 upper critical values
t(0.975, df) of NIST/SEMATECH e-Handbook of Statistical Methods, section 1.3.6.7.2
("Critical Values of the Student's t Distribution", https://www.itl.nist.gov/div898/handbook/
eda/section3/eda3672.htm), to the three decimals printed there. Between the tabulated degrees
of freedom above 30 the next *lower* tabulated df is used, whose quantile is larger, so the
interval errs wide; beyond 100 the normal 1.960. ``tests/test_intervals.py`` checks every
entry against a numerical integration of the t density.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

T975: dict[int, float] = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
    18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
    26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 100: 1.984,
}
Z975 = 1.960  # the normal quantile, for df beyond the table


def t975(df: int) -> float:
    """t(0.975, df): the table's entry, the next lower tabulated df's between entries, 1.960 beyond 100."""
    if not isinstance(df, int) or df < 1:
        raise ValueError(f"degrees of freedom must be a positive integer, got {df!r}")
    if df in T975:
        return T975[df]
    if df > max(T975):
        return Z975
    return T975[max(d for d in T975 if d < df)]


@dataclass(frozen=True)
class Spread:
    """``n`` values summarised: mean, sample standard deviation and the 95% t-interval of the mean."""

    n: int
    mean: float
    std: float | None  # None for one value
    ci95: tuple[float, float] | None  # None for one value

    @property
    def half_width(self) -> float | None:
        return None if self.ci95 is None else (self.ci95[1] - self.ci95[0]) / 2


def spread(values: Sequence[float]) -> Spread:
    """Summarise ``values`` (at least one, all finite)."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("spread of no values")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError(f"spread of non-finite values: {xs}")
    n = len(xs)
    mean = math.fsum(xs) / n
    if n == 1:
        return Spread(1, mean, None, None)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t975(n - 1) * std / math.sqrt(n)
    return Spread(n, mean, std, (mean - half, mean + half))
