import pytest

from hsearch.budget import BudgetError, format_duration, parse_budget, parse_duration
from hsearch.errors import HsearchError


@pytest.mark.parametrize(
    "text, seconds",
    [("24h", 86400), ("90m", 5400), ("3600s", 3600), ("1d", 86400), ("1h30m", 5400),
     ("1.5h", 5400), ("45", 45), ("2d12h", 216000), (" 20 s ", 20)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "10x", "1h1h", "-5m", "0s", "h", "1.2.3h", "m30"])
def test_bad_durations_name_the_input(text):
    with pytest.raises(BudgetError) as info:
        parse_duration(text)
    assert repr(text) in str(info.value)
    assert isinstance(info.value, HsearchError)


@pytest.mark.parametrize(
    "text, kind, amount",
    [("30m", "time", 1800), ("1.5h", "time", 5400), ("1d", "time", 86400),
     ("200M", "tokens", 200e6), ("1.5B", "tokens", 1.5e9), ("50K tokens", "tokens", 50e3),
     ("1000000 tokens", "tokens", 1e6), ("5000 steps", "steps", 5000), ("1 step", "steps", 1),
     ("90s", "time", 90)],
)
def test_pretraining_budgets(text, kind, amount):
    budget = parse_budget(text)
    assert (budget.kind, budget.amount, str(budget)) == (kind, pytest.approx(amount), text)


def test_minutes_and_million_tokens_differ_by_case():
    assert parse_budget("30m").kind == "time"
    assert parse_budget("30M").kind == "tokens"


@pytest.mark.parametrize("text", ["lots", "0 steps", "10 parsecs", "M", "0M"])
def test_bad_budgets(text):
    with pytest.raises(BudgetError, match="budget"):
        parse_budget(text)


def test_fraction_is_clamped_and_follows_the_kind():
    assert parse_budget("100s").fraction(seconds=50, tokens=0, steps=0) == 0.5
    assert parse_budget("100 steps").fraction(seconds=1e9, tokens=0, steps=25) == 0.25
    assert parse_budget("1K").fraction(seconds=0, tokens=5000, steps=0) == 1.0


@pytest.mark.parametrize("seconds, text", [(42, "42s"), (185, "3m05s"), (3720, "1h02m"), (90000, "1d01h")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
