"""``hsearch reevaluate``: the front's members and the seeds run again with several seeds, latency
timed on a whole node; per-seed values, means and 95% intervals stored on their trials."""

from __future__ import annotations

from hsearch import defaults
from hsearch.cli.common import add_set_flag, add_study_flags, parse_sets, stdout_console


def add(sub) -> None:
    p = sub.add_parser(
        "reevaluate",
        help="re-evaluate the front (and the seed layouts) with K fine-tuning seeds and whole-node latency",
        description="Run the front's members and the seed layouts again with K fine-tuning seeds per task "
                    "from the same pretrained model (the same pretraining seed, steps and data), optionally P "
                    "pretraining seeds, and latency timed on a Ray task that holds a whole node; stores the "
                    "per-seed values, mean, standard deviation and 95% interval on each trial (reeval_*).")
    add_study_flags(p)
    p.add_argument("--top", type=int, default=None, metavar="N",
                   help="only the N front members with the best score (default: the whole front)")
    p.add_argument("--seeds", type=int, default=defaults.REEVALUATE_SEEDS, metavar="K", help="fine-tuning seeds per task (default: %(default)s)")
    p.add_argument("--pretrain-seeds", type=int, default=1, metavar="P",
                   help="pretraining seeds: the trial's seed s, then s+1, ... (default: %(default)s)")
    p.add_argument("--no-seed-layouts", dest="with_seeds", action="store_false",
                   help="leave out the seed layouts (by default they are re-evaluated too, for comparison)")
    p.add_argument("--budget", default=None,
                   help="wall clock for the whole re-evaluation: a run starts only if its estimate fits")
    p.add_argument("--redo", action="store_true",
                   help="run members again that were re-evaluated with the same K and P (replacing their values)")
    p.add_argument("--address", default=None, help="join a Ray cluster: auto or HOST:PORT (default: start one)")
    p.add_argument("--data-dir", default=None, help="offline data folder (else $HSEARCH_DATA_DIR / Hub)")
    p.add_argument("--recipe", default=None,
                   help="only for studies that hold no recipe:<hash> (made before it was stored): the recipe "
                        "the trials ran under, with the same --set overrides; its hash must match")
    add_set_flag(p)
    p.set_defaults(func=handle)


def handle(args) -> int:
    from hsearch.search.reevaluate import ReevalConfig, run_reevaluation

    console = stdout_console()
    cfg = ReevalConfig(storage=args.storage, study=args.study,
                       top=args.top, seeds=args.seeds, pretrain_seeds=args.pretrain_seeds,
                       with_seeds=args.with_seeds, budget=args.budget, address=args.address,
                       data_dir=args.data_dir, recipe=args.recipe, recipe_overrides=parse_sets(args.overrides),
                       redo=args.redo)
    summary = run_reevaluation(cfg, emit=lambda text: console.print(text, highlight=False, soft_wrap=True))
    print_summary(summary, console)
    return 0 if summary.done or summary.already or not summary.members else 1


def print_summary(summary, console=None) -> None:
    from hsearch.budget import format_duration

    console = console or stdout_console()
    parts = [f"re-evaluated {len(summary.done)} of {len(summary.members)} trial(s) with {summary.seeds} "
             f"fine-tuning seed(s) x {summary.pretrain_seeds} pretraining seed(s) in "
             f"{format_duration(summary.seconds)}"]
    if summary.already:
        parts.append(f"{len(summary.already)} already re-evaluated with these seeds "
                     f"({', '.join(f'#{n}' for n in summary.already)})")
    if summary.failed:
        parts.append("failed: " + "; ".join(f"#{n} {why}" for n, why in sorted(summary.failed.items())))
    if summary.not_started:
        parts.append(f"not started for lack of time: {', '.join(f'#{n}' for n in summary.not_started)}")
    console.print("; ".join(parts), highlight=False, soft_wrap=True)
    if summary.done or summary.already:
        console.print("see `hsearch pareto` for the front with intervals and the robust front", highlight=False)
