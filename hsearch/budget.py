"""Budget strings: wall-clock durations, token counts and step counts (pure Python).

Durations use lower-case units and may be combined: ``90s``, ``30m``, ``1.5h``, ``1d``,
``1h30m``, ``3600`` (seconds). Token counts use upper-case SI suffixes or the word
``tokens``: ``200M``, ``1.5B``, ``50K``, ``1000000 tokens``. Steps: ``5000 steps``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hsearch.errors import HsearchError

_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_TOKEN_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
_TOKENS = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMBGT]?)\s*(?:tokens?)?$")
_STEPS = re.compile(r"^(\d+)\s*steps?$")


class BudgetError(HsearchError, ValueError):
    """A budget string that does not parse."""


class NotPositiveError(BudgetError):
    """A budget that parses but is zero or negative."""


_HELP = "e.g. 90s, 30m, 1.5h, 1d, 1h30m (time), 200M or 200M tokens (tokens), 5000 steps"


def parse_duration(text: str | float | int, *, strict_case: bool = False) -> float:
    """Seconds in a duration string such as ``1h30m``; a bare number is seconds.

    ``strict_case``: refuse upper-case units, where ``200M`` would otherwise read as minutes
    but means 200 million tokens in a pretraining budget.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().replace(" ", "")
        if strict_case and (upper := re.search(r"[A-Z]", raw)):
            raise BudgetError(
                f"{upper.group()!r} is not a time unit (a duration uses s, m, h, d: e.g. 90s, 30m, 24h); "
                "token and step budgets (200M, 5000 steps) belong to a recipe's pretrain.budget"
            )
        s = raw.lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", s):
            seconds = float(s)
        else:
            parts = _DURATION_PART.findall(s)
            if not parts or "".join(n + u for n, u in parts) != s:
                raise BudgetError(f"cannot parse duration {text!r} (e.g. 90s, 30m, 1.5h, 1d, 1h30m)")
            units = [u for _, u in parts]
            if len(set(units)) != len(units):
                raise BudgetError(f"cannot parse duration {text!r}: unit repeated")
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if not seconds > 0:
        raise NotPositiveError(f"duration {text!r} must be positive")
    return seconds


@dataclass(frozen=True)
class Budget:
    """A pretraining budget: exactly one of time, tokens or steps."""

    kind: str  # "time" | "tokens" | "steps"
    amount: float  # seconds, tokens or steps
    text: str

    def fraction(self, seconds: float, tokens: int, steps: int) -> float:
        """Fraction of the budget used, in [0, 1]; drives the LR schedule and the stop."""
        used = {"time": seconds, "tokens": tokens, "steps": steps}[self.kind]
        return min(1.0, used / self.amount)

    def __str__(self) -> str:
        return self.text


def parse_budget(text: str | int | float) -> Budget:
    """Parse a pretraining budget: ``30m`` (time), ``200M`` (tokens) or ``5000 steps``."""
    raw = str(text).strip()
    if m := _STEPS.fullmatch(raw.lower()):
        steps = int(m.group(1))
        if steps < 1:
            raise BudgetError(f"budget {text!r} must allow at least one step")
        return Budget("steps", float(steps), raw)
    if (m := _TOKENS.fullmatch(raw)) and (m.group(2) or raw.lower().endswith(("token", "tokens"))):
        tokens = float(m.group(1)) * _TOKEN_SUFFIX[m.group(2)]
        if tokens < 1:
            raise BudgetError(f"budget {text!r} must allow at least one token")
        return Budget("tokens", tokens, raw)
    try:
        return Budget("time", parse_duration(raw), raw)
    except NotPositiveError:
        raise NotPositiveError(f"budget {text!r} must be positive") from None
    except BudgetError:
        raise BudgetError(f"cannot parse budget {text!r} ({_HELP})") from None


def format_duration(seconds: float) -> str:
    """Short human form: ``1h02m``, ``3m05s``, ``42s``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
