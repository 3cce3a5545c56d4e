"""``hsearch plan``: the cost table, the space's cheapest, median and dearest trials, what fits."""

from __future__ import annotations

from hsearch import defaults
from hsearch.cli.common import add_search_flags, parse_sets


def add(sub) -> None:
    p = sub.add_parser("plan", help="cost a search before running it: cost table, trial times, what fits the budget")
    add_search_flags(p)
    p.add_argument("--address", default=None, help="measure on a Ray cluster's node: auto or HOST:PORT")
    p.add_argument("--max-latency-ms", type=float, default=None, metavar="MS", help="latency cap to count against")
    p.add_argument("--max-params", type=int, default=None, metavar="N", help="parameter cap to count against")
    p.add_argument("--data-dir", default=None, help="offline data folder (the tokenizer is trained from the corpus)")
    p.add_argument("--trial-overhead", type=float, default=None, metavar="S",
                   help="seconds a trial takes beyond pretraining (fine-tuning, latency, data); as for hsearch run")
    p.add_argument("--reevaluate-share", type=float, default=defaults.REEVALUATE_SHARE, metavar="F",
                   help="share of --budget the run keeps to re-evaluate its front, as for hsearch run "
                        "(default: %(default)s)")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from hsearch.search.plan import describe, make_plan

    plan = make_plan(args.space, args.recipe, parse_sets(args.overrides), args.budget, address=args.address,
                     max_latency_ms=args.max_latency_ms, max_params=args.max_params, data_dir=args.data_dir,
                     trial_overhead=args.trial_overhead, reevaluate_share=args.reevaluate_share)
    print(describe(plan))
    return 0
