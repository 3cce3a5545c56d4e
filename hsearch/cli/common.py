"""Flags and argument checks that several commands share."""

from __future__ import annotations

import math

from hsearch import defaults
from hsearch.errors import HsearchError

STORAGE_HELP = (f"Optuna storage: sqlite:///FILE.db (or a plain SQLite file path), journal:///ABS/PATH.log "
                "(an Optuna journal file, for machines sharing a file system), or postgresql+psycopg://... "
                f"(default: ${defaults.STORAGE_ENV} or {defaults.STORAGE})")


def add_study_flags(p) -> None:
    p.add_argument("--storage", default=None, help=STORAGE_HELP)
    p.add_argument("--study", default=None, help="study name (needed when the storage holds several)")


def add_search_flags(p) -> None:
    """What a search is of: the space, the recipe and its overrides, the run's budget."""
    p.add_argument("--space", default=defaults.SPACE, help="search space: a YAML file or a built-in name "
                   "(default: %(default)s)")
    p.add_argument("--recipe", default=defaults.RECIPE, help="trial recipe: a YAML file or a built-in name "
                   "(default: %(default)s)")
    add_set_flag(p)
    p.add_argument("--budget", default=None, help="total wall clock of the run: 24h, 90m, 3600s, 1d, 1h30m")


def add_set_flag(p) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value by dotted key, e.g. --set pretrain.lr=5e-4 (repeatable; "
                        "values are read as YAML)")


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """``--set key=value`` pairs -> recipe overrides (the recipe reads the values as YAML)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HsearchError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. pretrain.lr=5e-4")
        out[key.strip()] = value
    return out


def finite_positive(flag: str, value: float | None) -> float | None:
    """A float flag that must be a positive finite number when given."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise HsearchError(f"{flag} {value}: must be a positive finite number")
    return value


def stdout_console():
    """A rich console on stdout; piped output (files, tests) gets a wide one, not 80 columns."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=240)
