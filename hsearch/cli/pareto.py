"""``hsearch pareto``: the Pareto-optimal trials, and the seeds against them."""

from __future__ import annotations

from hsearch.cli.common import add_study_flags


def add(sub) -> None:
    p = sub.add_parser("pareto", help="list the Pareto-optimal trials, and the seeds against them")
    add_study_flags(p)
    p.add_argument("--format", default="table", choices=("table", "json", "csv"), help="output format")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from hsearch.analysis import load_study, pareto, render

    print(render(pareto(load_study(args.storage, args.study)), args.format))
    return 0
