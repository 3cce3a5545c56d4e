"""Command line: argument parsing and display; one library call per command.

Each command has an ``_add_<name>(subparsers)`` that declares its flags and sets
``func`` to a ``_cmd_<name>(args)`` handler. Handlers import their layer lazily so that
``hsearch --help`` stays fast. Any :class:`~hsearch.errors.HsearchError` becomes one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from hsearch.errors import HsearchError


def _add_layouts(sub) -> None:
    p = sub.add_parser("layouts", help="list the preset layouts, or describe a layout string")
    p.add_argument("layout", nargs="*", help="layout strings or preset names to describe")
    p.set_defaults(func=_cmd_layouts)


def _cmd_layouts(args) -> int:
    from hsearch.layout import KINDS, NORMS, PRESETS, resolve

    if not args.layout:
        width = max(map(len, PRESETS))
        for preset in PRESETS.values():
            opts = ", ".join(f"{k}={v}" for k, v in preset.options.items())
            print(f"{preset.name:<{width}}  {str(preset.layout):<18} {preset.description}")
            print(f"{'':<{width}}  {'':<18} {opts}")
        print()
        print("kinds: " + "; ".join(f"{k} {v}" for k, v in KINDS.items()))
        print("norms: " + "; ".join(f"{k} {v}" for k, v in NORMS.items()))
        return 0
    for text in args.layout:
        layout, options, name = resolve(text)
        counts = ", ".join(f"{layout.count(k)}×{k}" for k in KINDS if layout.count(k))
        label = f" (preset {name})" if name else ""
        print(f"{layout}{label}: {layout.num_layers} layers, {counts}")
    return 0


# --- analysis commands: pareto, report, export, dashboard (owner: analysis) ---------------


def _add_study_flags(p) -> None:
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL or SQLite file (default: $HSEARCH_STORAGE or sqlite:///hsearch.db)",
    )
    p.add_argument("--study", default=None, help="study name (needed when the storage holds several)")


def _add_pareto(sub) -> None:
    p = sub.add_parser("pareto", help="list the Pareto-optimal trials, and the seeds against them")
    _add_study_flags(p)
    p.add_argument("--format", default="table", choices=("table", "json", "csv"), help="output format")
    p.set_defaults(func=_cmd_pareto)


def _cmd_pareto(args) -> int:
    from hsearch.analysis import load_study, pareto, render

    print(render(pareto(load_study(args.storage, args.study)), args.format))
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="write a report folder: Pareto plots, hypervolume, per-layer view, report.md")
    _add_study_flags(p)
    p.add_argument("--out", required=True, help="report folder, e.g. analysis/NAME (replaced if it holds a report)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args) -> int:
    from hsearch.analysis.report import write_report

    s = write_report(args.storage, args.study, args.out)
    ref = ", ".join(f"{v:g}" for v in s.reference_point)
    print(
        f"wrote {s.out}/ ({', '.join(s.files)}): {s.front} Pareto-optimal of {s.complete} complete trials, "
        f"hypervolume {s.hypervolume:.6g} (reference point {ref})"
    )
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export trials as Hugging Face model folders plus a seeds: entry")
    _add_study_flags(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, help="export this trial number")
    which.add_argument("--pareto", action="store_true", help="export every Pareto-optimal trial (DIR/trial-N/)")
    which.add_argument("--best-under-latency", type=float, metavar="MS", help="best score with latency <= MS")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--force", action="store_true", help="replace DIR if it holds an earlier export")
    p.add_argument("--artifacts", default=None, help="the --artifacts folder given to hsearch run: checkpoints are looked up in DIR/<study>/trial-<n>/ (default: hsearch-artifacts)")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args) -> int:
    from hsearch.analysis.export import export

    done = export(
        args.storage, args.study, args.out, trial=args.trial, front=args.pareto,
        max_latency_ms=args.best_under_latency, force=args.force, artifacts=args.artifacts,
    )
    for e in done:
        print(f"trial #{e.trial} {e.layout} -> {e.folder}")
    print(f"seed entries: {args.out}/seeds.yaml")
    return 0


def _add_dashboard(sub) -> None:
    p = sub.add_parser("dashboard", help="serve optuna-dashboard on the study storage (Ctrl-C stops it)")
    _add_study_flags(p)
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--artifact-dir", default=None, help="Optuna artifact store folder, if the study uses one")
    p.set_defaults(func=_cmd_dashboard)


def _cmd_dashboard(args) -> int:
    from hsearch.analysis.dashboard import start

    import signal

    board = start(args.storage, host=args.host, port=args.port, study_name=args.study, artifact_dir=args.artifact_dir)

    def stop(signum, frame):  # SIGTERM too, and SIGINT even where a shell started us ignoring it
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    print(f"optuna-dashboard on {board.url}  (Ctrl-C stops it)", flush=True)
    try:
        board.serve_forever()
    except KeyboardInterrupt:
        print("dashboard stopped", file=sys.stderr)
    return 0


# --- search commands: run, status (owner: search) -------------------------------------------


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="search layouts: Optuna study, trials on Ray, a total time budget")
    p.add_argument("--space", default="search_spaces/hbert.yaml", help="search space YAML (default: %(default)s)")
    p.add_argument("--recipe", default="cpu-small", help="trial recipe YAML or name in trials/ (default: %(default)s)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key, e.g. --set pretrain.budget=30s (repeatable; YAML values)")
    p.add_argument("--budget", default=None, help="total wall clock of this run: 24h, 90m, 3600s, 1d, 1h30m")
    p.add_argument("--max-trials", type=int, default=None,
                   help="stop once the study holds N trained trials (all runs and drivers together)")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL or SQLite file (default: $HSEARCH_STORAGE or sqlite:///hsearch.db)")
    p.add_argument("--study", default=None, help="study name (default: <space>-<recipe>)")
    p.add_argument("--sampler", default="tpe", choices=("tpe", "nsga2", "gp", "random"))
    p.add_argument("--seed", type=int, default=None, help="sampler seed")
    p.add_argument("--objective", default="mean", choices=("mean", "mlm", "emotion", "massive"),
                   help="score to maximise (latency is always minimised)")
    p.add_argument("--address", default=None, help="join a Ray cluster: auto or HOST:PORT (default: start one)")
    p.add_argument("--data-dir", default=None, help="offline data folder for the trials (else $HSEARCH_DATA_DIR / Hub)")
    p.add_argument("--artifacts", default="hsearch-artifacts", help="trial folders go to DIR/<study>/trial-<n>/")
    p.add_argument("--heartbeat", type=int, default=30,
                   help="seconds between heartbeats; a trial silent for twice this is stale (default: 30)")
    p.add_argument("--trial-overhead", type=float, default=None,
                   help="initial guess, in seconds, of a trial's time beyond its pretraining budget "
                        "(replaced by measurements; default 60 s + half the pretraining budget)")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args) -> int:
    import yaml

    from hsearch.cli_run import live_progress, print_summary
    from hsearch.errors import HsearchError
    from hsearch.search.driver import RunConfig, run_search
    from hsearch.search.study import storage_url

    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HsearchError(f"--set {item!r}: expected KEY=VALUE, e.g. pretrain.budget=30s")
        overrides[key.strip()] = yaml.safe_load(value) if value.strip() else value
    config = RunConfig(
        space=args.space, recipe=args.recipe, recipe_overrides=overrides, budget=args.budget,
        storage=storage_url(args.storage), study=args.study, sampler=args.sampler,
        objective=args.objective, address=args.address, max_trials=args.max_trials,
        data_dir=args.data_dir, seed=args.seed, artifacts=args.artifacts, heartbeat=args.heartbeat,
        trial_overhead=args.trial_overhead,
    )
    with live_progress() as progress:
        summary = run_search(config, progress)
    print_summary(summary)
    return 0


def _add_status(sub) -> None:
    p = sub.add_parser("status", help="table of a study's trials: state, layout, score, latency, front")
    _add_study_flags(p)
    p.set_defaults(func=_cmd_status)


def _cmd_status(args) -> int:
    from hsearch.analysis.study import storage_url  # read-only: a mistyped SQLite path is not created
    from hsearch.cli_run import print_status
    from hsearch.search.status import study_status

    print_status(study_status(storage_url(args.storage), args.study))
    return 0


def _add_bench(sub) -> None:
    from hsearch.cli_bench import add_bench_parser

    add_bench_parser(sub)
    sub.choices["bench"].set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from hsearch.cli_bench import run_bench

    return run_bench(args)


def _add_trial(sub) -> None:
    p = sub.add_parser("trial", help="run one trial: budgeted MLM pretraining, fine-tuning, latency")
    p.add_argument("layout", metavar="LAYOUT_OR_PRESET", help="preset name (hbert-v1, ...) or layout string")
    p.add_argument("--recipe", default="cpu-small", help="trial recipe file or name in trials/ (default: cpu-small)")
    p.add_argument("--data-dir", help="offline data folder (DIR/emotion, DIR/massive_en, DIR/wiki); "
                   "default $HSEARCH_DATA_DIR, else the Hugging Face Hub")
    p.add_argument("--out", help="trial folder for result.json, tokenizer/ and checkpoint/")
    p.add_argument("--budget", help="pretraining budget overriding the recipe's: 90s, 30m, 200M (tokens), 500 steps")
    p.add_argument("--seed", type=int, help="pretraining seed (fine-tune seeds follow it)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: the GPU if any")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe value by dotted key, e.g. --set pretrain.lr=5e-4 (repeatable)")
    p.add_argument("--keep-checkpoint", action="store_true", help="save the pretrained model under OUT/checkpoint")
    p.add_argument("--json", action="store_true", help="also print the result as JSON on stdout")
    p.set_defaults(func=_cmd_trial)


def _cmd_trial(args) -> int:
    from hsearch.cli_trial import run_trial_command

    return run_trial_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hsearch",
        description="Search the attention layout of BERT-style encoders under a compute budget.",
    )
    from hsearch import __version__

    parser.add_argument("--version", action="version", version=f"hsearch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_layouts, _add_pareto, _add_report, _add_export, _add_dashboard, _add_run, _add_status, _add_bench, _add_trial):
        add(sub)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
