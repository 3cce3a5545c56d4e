"""Display for ``hsearch run`` (live panel) and ``hsearch status`` (trial table), with rich."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hsearch.budget import format_duration


def _front_table(front: list, metric: str) -> Table:
    table = Table(title="best front so far", title_justify="left", show_edge=False)
    for col in ("#", "layout", metric, "latency ms"):
        table.add_column(col, justify="right" if col != "layout" else "left")
    for number, layout, score, latency in front[:10]:
        table.add_row(str(number), layout, f"{score:.4f}", f"{latency:.2f}")
    return table


def _panel(event: dict[str, Any], log: list[str]) -> Group:
    left = event.get("time_left")
    head = Text.assemble(
        ("hsearch run ", "bold"), (event["study"], "cyan"),
        f"  time left {format_duration(left) if left is not None else '∞'}",
        f"  done {event['complete']}  running {event['running']}  failed {event['failed']}"
        f"  cancelled {event['cancelled']}  skipped {event['skipped']}",
    )
    return Group(head, _front_table(event["front"], event["metric"]), Text("\n".join(log[-8:]), style="dim"))


@contextmanager
def live_progress(console: Console | None = None) -> Iterator[Any]:
    """A progress callback: a live panel on a terminal, one line per event otherwise."""
    console = console or Console(stderr=True)
    log: list[str] = []
    if not console.is_terminal:
        def plain(event: dict[str, Any]) -> None:
            if event["kind"] != "tick":
                left = event.get("time_left")
                when = f"[{format_duration(left)} left] " if left is not None else ""
                console.print(f"{when}{event['text']}", highlight=False, soft_wrap=True)

        yield plain
        return
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        def update(event: dict[str, Any]) -> None:
            log.append(event["text"])
            live.update(_panel(event, log))

        yield update


def print_summary(summary, console: Console | None = None) -> None:
    console = console or _stdout_console()
    console.print(
        f"study {summary.study_name}: {summary.started} trial(s) started in {format_duration(summary.seconds)}; "
        f"complete {summary.complete}, failed {summary.failed}, cancelled {summary.cancelled}, "
        f"skipped {summary.skipped}; stopped: {summary.stop_reason}",
        highlight=False, soft_wrap=True,
    )


def _stdout_console() -> Console:
    # Piped output (files, tests) gets a wide table instead of rich's 80-column default.
    console = Console()
    return console if console.is_terminal else Console(width=240)


def print_status(status, console: Console | None = None) -> None:
    console = console or _stdout_console()
    a = status.attrs
    console.print(
        f"study {status.study_name}  space {a.get('space', '?')}  recipe {a.get('recipe', '?')} "
        f"({str(a.get('recipe_hash', '?'))[:12]})  objective {status.metric} (max), latency_ms (min)",
        highlight=False, soft_wrap=True,
    )
    table = Table(show_edge=False)
    for col, just in (("#", "right"), ("state", "left"), ("layout", "left"), ("origin", "left"),
                      (status.metric, "right"), ("latency ms", "right"), ("time", "right"),
                      ("front", "center"), ("note", "left")):
        table.add_column(col, justify=just, no_wrap=col in ("layout", "origin"))
    for r in status.rows:
        table.add_row(
            str(r.number), r.outcome, r.layout, r.origin,
            "" if r.score is None else f"{r.score:.4f}",
            "" if r.latency_ms is None else f"{r.latency_ms:.2f}",
            "" if r.seconds is None else format_duration(r.seconds),
            "*" if r.pareto else "", r.note,
        )
    console.print(table)
    counts = {}
    for r in status.rows:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    console.print("trials: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), highlight=False)
    total = status.ledger.get("total")
    if total:
        console.print(
            f"cost: {total['cpu_seconds'] / 3600:.2f} CPU-h, {total['gpu_seconds'] / 3600:.2f} GPU-h, "
            f"{total['wall_seconds'] / 3600:.2f} trial-h wall over {len(status.ledger.get('runs', []))} run(s)",
            highlight=False,
        )
    if counts.get("duplicate"):
        console.print("duplicates are skipped: a layout already trained under the same recipe is not trained "
                      "again and its earlier trial keeps the result", highlight=False, soft_wrap=True)
