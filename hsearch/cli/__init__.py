"""Command line: one module per command, each with ``add(subparsers)`` and a handler.

Building the parser imports only argparse and :mod:`hsearch.defaults`; a handler imports
its library layer when it runs, so ``hsearch --help`` and the read-only commands stay
fast (no torch). Any :class:`~hsearch.errors.HsearchError` becomes one line on stderr and
exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from hsearch.cli import (bench, dashboard, export, layouts, pareto, plan, recipe, reevaluate, report, run, status,
                         trial)
from hsearch.errors import HsearchError

COMMANDS = (layouts, run, plan, status, pareto, reevaluate, report, export, dashboard, bench, trial, recipe)


def build_parser() -> argparse.ArgumentParser:
    from hsearch import __version__

    parser = argparse.ArgumentParser(
        prog="hsearch",
        description="Search the attention layout of BERT-style encoders under a compute budget.",
    )
    parser.add_argument("--version", action="version", version=f"hsearch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HsearchError as exc:
        print(f"hsearch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hsearch {args.command}: interrupted", file=sys.stderr)
        return 130
