"""``hsearch export``: trials as Hugging Face model folders plus a ``seeds:`` entry."""

from __future__ import annotations

from hsearch import defaults
from hsearch.cli.common import add_study_flags, finite_positive


def add(sub) -> None:
    p = sub.add_parser("export", help="export trials as Hugging Face model folders plus a seeds: entry")
    add_study_flags(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, help="export this trial number")
    which.add_argument("--pareto", action="store_true", help="export every Pareto-optimal trial (DIR/trial-N/)")
    which.add_argument("--best-under-latency", type=float, metavar="MS", help="best score with latency <= MS")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--force", action="store_true", help="replace what an earlier export wrote in DIR")
    p.add_argument("--artifacts", default=None,
                   help="the --artifacts folder given to hsearch run: checkpoints are looked up in "
                        f"DIR/<study>/trial-<n>/ (default: {defaults.ARTIFACTS})")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from hsearch.analysis.export import export

    finite_positive("--best-under-latency", args.best_under_latency)
    done = export(
        args.storage, args.study, args.out, trial=args.trial, front=args.pareto,
        max_latency_ms=args.best_under_latency, force=args.force, artifacts=args.artifacts,
    )
    for e in done:
        print(f"trial #{e.trial} {e.layout} -> {e.folder}")
    print(f"seed entries: {args.out}/seeds.yaml")
    return 0
