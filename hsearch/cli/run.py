"""``hsearch run``: the search, with a live panel on a terminal and log lines otherwise."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from hsearch import defaults
from hsearch.cli.common import STORAGE_HELP, add_search_flags, parse_sets, stdout_console


def add(sub) -> None:
    p = sub.add_parser("run", help="search layouts: Optuna study, trials on Ray, a total time budget")
    add_search_flags(p)
    p.add_argument("--max-trials", type=int, default=None,
                   help="stop once the study holds N trained trials (all runs and drivers together)")
    p.add_argument("--storage", default=None, help=STORAGE_HELP)
    p.add_argument("--study", default=None, help="study name (default: <space>-<recipe>)")
    p.add_argument("--sampler", default=defaults.SAMPLER, choices=defaults.SAMPLERS)
    p.add_argument("--seed", type=int, default=None, help="sampler seed")
    p.add_argument("--objective", default=defaults.OBJECTIVE, choices=defaults.OBJECTIVES,
                   help="score to maximise (latency is always minimised)")
    p.add_argument("--address", default=None, help="join a Ray cluster: auto or HOST:PORT (default: start one)")
    p.add_argument("--data-dir", default=None, help="offline data folder for the trials (else $HSEARCH_DATA_DIR / Hub)")
    p.add_argument("--artifacts", default=defaults.ARTIFACTS, help="trial folders go to DIR/<study>/trial-<n>/")
    p.add_argument("--artifact-store", default=None, metavar="URL",
                   help="Optuna artifact store each trial's result, tokenizer and checkpoint are uploaded to, "
                        "linked to the trial: file:///abs/path, s3://bucket or gs://bucket "
                        "(default: file://<--artifacts>/artifact-store)")
    p.add_argument("--heartbeat", type=int, default=defaults.HEARTBEAT_S,
                   help="seconds between heartbeats; a trial silent for twice this is stale (default: %(default)s)")
    p.add_argument("--trial-overhead", type=float, default=None,
                   help="initial guess, in seconds, of a trial's time beyond its pretraining budget "
                        "(replaced by measurements; default 60 s + half the pretraining budget)")
    p.add_argument("--max-latency-ms", type=float, default=None, metavar="MS",
                   help="never train a layout whose predicted latency exceeds MS (the space's "
                        "constraints.max_latency_ms otherwise)")
    p.add_argument("--max-params", type=int, default=None, metavar="N",
                   help="never train a layout with more than N parameters (constraints.max_params otherwise)")
    p.add_argument("--rungs", default=None, metavar="F,F,...",
                   help="multi-fidelity rungs as fractions of the pretraining budget, e.g. 1/9,1/3,1 "
                        "(1 alone: every layout trains the whole budget; more than one implies "
                        "pretrain.schedule=wsd; default: the recipe's fidelity.rungs)")
    p.add_argument("--eta", type=int, default=None, metavar="N",
                   help="ASHA reduction factor: the top 1/N of a rung's results go up (default: the recipe's)")
    p.add_argument("--reevaluate-share", type=float, default=defaults.REEVALUATE_SHARE, metavar="F",
                   help="share of --budget kept, at the end, for re-evaluating the final front and the seeds "
                        "(as hsearch reevaluate; 0 turns it off; needs --budget; default: %(default)s)")
    p.add_argument("--reevaluate-seeds", type=int, default=defaults.REEVALUATE_SEEDS, metavar="K",
                   help="fine-tuning seeds per member in that re-evaluation (default: %(default)s)")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from hsearch.search.driver import RunConfig, run_search

    config = RunConfig(
        space=args.space, recipe=args.recipe, recipe_overrides={**parse_sets(args.overrides), **fidelity_sets(args)},
        budget=args.budget,
        storage=defaults.storage_url(args.storage), study=args.study, sampler=args.sampler,
        objective=args.objective, address=args.address, max_trials=args.max_trials,
        data_dir=args.data_dir, seed=args.seed, artifacts=args.artifacts, artifact_store=args.artifact_store, heartbeat=args.heartbeat,
        trial_overhead=args.trial_overhead, max_latency_ms=args.max_latency_ms, max_params=args.max_params,
        reevaluate_share=args.reevaluate_share, reevaluate_seeds=args.reevaluate_seeds,
    )
    with live_progress() as progress:
        summary = run_search(config, progress)
    print_summary(summary)
    if summary.started and not summary.complete:  # trials ran, and none gave a result
        print(f"hsearch run: no trial completed in this run ({summary.stop_reason})", flush=True)
        return 1
    return 0


def fidelity_sets(args) -> dict[str, Any]:
    """``--rungs`` and ``--eta`` as recipe overrides (checked with the recipe)."""
    sets: dict[str, Any] = {}
    if args.rungs is not None:
        sets["fidelity.rungs"] = [r.strip() for r in args.rungs.split(",") if r.strip()]
        if len(sets["fidelity.rungs"]) > 1:
            sets["pretrain.schedule"] = "wsd"
    if args.eta is not None:
        sets["fidelity.eta"] = args.eta
    return sets


def _front_table(front: list, metric: str):
    from rich.table import Table

    table = Table(title="best front so far", title_justify="left", show_edge=False)
    for col in ("#", "layout", metric, "latency ms"):
        table.add_column(col, justify="right" if col != "layout" else "left")
    for number, layout, score, latency in front[:10]:
        table.add_row(str(number), layout, f"{score:.4f}", f"{latency:.2f}")
    return table


def _panel(event: dict[str, Any], log: list[str]):
    from rich.console import Group
    from rich.text import Text

    from hsearch.budget import format_duration

    left = event.get("time_left")
    head = Text.assemble(
        ("hsearch run ", "bold"), (event["study"], "cyan"),
        f"  time left {format_duration(left) if left is not None else '∞'}",
        f"  done {event['complete']}  running {event['running']}  failed {event['failed']}"
        f"  cancelled {event['cancelled']}  skipped {event['skipped']}",
    )
    return Group(head, _front_table(event["front"], event["metric"]), Text("\n".join(log[-8:]), style="dim"))


@contextmanager
def live_progress(console=None) -> Iterator[Any]:
    """A progress callback: a live panel on a terminal, one line per event otherwise."""
    from rich.console import Console
    from rich.live import Live


    console = console or Console(stderr=True)
    log: list[str] = []
    if not console.is_terminal:
        # Under nohup, tmux or a scheduler: the driver's events, running trials' progress
        # included, are log records of "hsearch.run" (INFO); printed to stderr unless the
        # program already configured logging, which then routes them.
        _log_to_stderr()
        yield lambda event: None
        return
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        def update(event: dict[str, Any]) -> None:
            log.append(event["text"])
            live.update(_panel(event, log))

        yield update


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a test's capture, a redirected file)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_to_stderr() -> None:
    logger = logging.getLogger("hsearch")
    if logging.getLogger().handlers or any(isinstance(h, _StderrHandler) for h in logger.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def print_summary(summary, console=None) -> None:
    from hsearch.budget import format_duration

    console = console or stdout_console()
    console.print(
        f"study {summary.study_name}: {summary.started} trial(s) started in {format_duration(summary.seconds)}; "
        f"complete {summary.complete}, failed {summary.failed}, cancelled {summary.cancelled}, "
        f"skipped {summary.skipped}; stopped: {summary.stop_reason}",
        highlight=False, soft_wrap=True,
    )
    if summary.reevaluation is not None:
        from hsearch.cli.reevaluate import print_summary as reeval_summary

        reeval_summary(summary.reevaluation, console)
