"""``hsearch report``: plots and report.md for a study."""

from __future__ import annotations

from hsearch.cli.common import add_study_flags


def add(sub) -> None:
    p = sub.add_parser("report", help="write a report folder: Pareto plots, hypervolume, per-layer view, report.md")
    add_study_flags(p)
    p.add_argument("--out", required=True, metavar="DIR", help="report folder, e.g. analysis/NAME")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that is not empty, replacing only the report's own files")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from hsearch.analysis.report import write_report

    s = write_report(args.storage, args.study, args.out, force=args.force)
    ref = ", ".join(f"{v:g}" for v in s.reference_point)
    print(
        f"wrote {s.out}/ ({', '.join(s.files)}): {s.front} Pareto-optimal of {s.complete} complete trials, "
        f"hypervolume {s.hypervolume:.6g} (reference point {ref})"
    )
    return 0
