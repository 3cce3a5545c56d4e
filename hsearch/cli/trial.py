"""``hsearch trial``: one trial with a live progress display; prints and writes the result."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from hsearch import defaults
from hsearch.budget import format_duration
from hsearch.cli.common import add_set_flag, parse_sets
from hsearch.errors import HsearchError


def add(sub) -> None:
    p = sub.add_parser("trial", help="run one trial: budgeted MLM pretraining, fine-tuning, latency")
    p.add_argument("layout", metavar="LAYOUT_OR_PRESET", help="preset name (hbert-v1, ...) or layout string")
    p.add_argument("--recipe", default=defaults.RECIPE, help="trial recipe file or name in trials/ (default: %(default)s)")
    p.add_argument("--data-dir", help="offline data folder (DIR/emotion, DIR/massive_en, DIR/wiki); "
                   "default $HSEARCH_DATA_DIR, else the Hugging Face Hub")
    p.add_argument("--out", help="trial folder for result.json, tokenizer/ and checkpoint/")
    p.add_argument("--budget", help="pretraining budget overriding the recipe's: 90s, 30m, 200M (tokens), 500 steps")
    p.add_argument("--seed", type=int, help="pretraining seed (fine-tune seeds follow it)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: the GPU if any")
    add_set_flag(p)
    p.add_argument("--keep-checkpoint", action="store_true", help="save the pretrained model under OUT/checkpoint")
    p.add_argument("--json", action="store_true", help="also print the result as JSON on stdout")
    p.set_defaults(func=handle)


class TrialDisplay:
    """Collects progress updates and renders them as one rich panel (plain lines without a TTY)."""

    def __init__(self, layout: str, recipe_name: str, budget: str, console) -> None:
        self.layout, self.recipe_name, self.budget = layout, recipe_name, budget
        self.console = console
        self.state: dict[str, Any] = {"phase": "starting"}
        self.started = time.perf_counter()
        self.last_plain = 0.0

    def update(self, info: dict[str, Any]) -> None:
        if info.get("phase") != self.state.get("phase"):
            self.state.pop("message", None)  # a message belongs to the phase that sent it
        if info.get("phase") == "finetune" and "accuracy" in info:
            self.state.setdefault("accuracies", {})[info["task"]] = info["accuracy"]
        self.state.update(info)
        if not self.console.is_terminal:
            now = time.perf_counter()
            if info.get("phase") != self.state.get("_printed_phase") or now - self.last_plain > 10:
                self.last_plain = now
                self.state["_printed_phase"] = info.get("phase")
                self.console.print(self.line(), highlight=False)

    def line(self) -> str:
        s = self.state
        parts = [f"[{format_duration(time.perf_counter() - self.started)}]", s.get("phase", "")]
        if s.get("phase") == "pretrain":
            parts.append(f"budget {100 * s.get('budget_fraction', 0):.0f}%")
            if "loss" in s:
                parts.append(f"loss {s['loss']:.3f}  {s.get('tokens_per_s', 0):,.0f} tok/s  step {s.get('step', 0)}")
        elif s.get("phase") == "finetune" and "task" in s:
            parts.append(f"{s['task']} seed {s.get('seed')} step {s.get('step', 0)}/{s.get('steps', '?')}")
        elif "message" in s:
            parts.append(str(s["message"]))
        return "  ".join(str(p) for p in parts if p != "")

    def __rich__(self):
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        s = self.state
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("phase", str(s.get("phase", "")) + (f"  ({s['message']})" if s.get("phase") == "data" and "message" in s else ""))
        frac = float(s.get("budget_fraction", 0.0))
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=1.0, completed=frac, width=40), f"{100 * frac:.0f}% of {self.budget}")
        table.add_row("budget", bar)
        if "loss" in s and s.get("phase") == "pretrain":
            table.add_row("MLM loss", f"{s['loss']:.4f}   lr {s.get('lr', 0):.2e}   step {s.get('step', 0)}")
            table.add_row("tokens/s", f"{s.get('tokens_per_s', 0):,.0f}   ({s.get('tokens', 0):,} tokens)")
        if s.get("phase") == "finetune" and "task" in s:
            table.add_row("fine-tune", f"{s['task']}  seed {s.get('seed')}  step {s.get('step', 0)}/{s.get('steps', '?')}")
        for task, acc in s.get("accuracies", {}).items():
            table.add_row(f"  {task}", f"{acc:.3f}")
        table.add_row("elapsed", format_duration(time.perf_counter() - self.started))
        return Panel(table, title=f"trial {self.layout} · {self.recipe_name}", expand=False)


def print_result(result, console) -> None:
    from rich.table import Table

    t = Table(title=f"{result.layout} · {result.recipe_name} · {result.status}", show_header=False)
    t.add_column(style="bold")
    t.add_column()

    def fmt(v, spec=".4f"):
        return "-" if v is None else format(v, spec)

    t.add_row("MLM accuracy / loss", f"{fmt(result.mlm_accuracy)} / {fmt(result.mlm_loss)}")
    for name, task in result.tasks.items():
        t.add_row(f"{name} ({task.score_split} / {task.report_split})",
                  f"{task.score_mean:.4f} ± {task.score_std:.4f} / {task.report_mean:.4f} ± {task.report_std:.4f}")
    t.add_row("mean accuracy", fmt(result.mean_accuracy))
    t.add_row("latency (steady; median, IQR)", f"{fmt(result.latency_ms, '.2f')} ms; "
              f"{fmt(result.latency_ms_median, '.2f')} ms, {fmt(result.latency_ms_spread, '.2f')} ms"
              + (f"  [{result.latency_path}]" if result.latency_path else ""))
    t.add_row("parameters", f"{result.params:,}" if result.params else "-")
    t.add_row("pretraining", f"{result.optimizer_steps} steps, {result.tokens_seen:,} tokens, "
              f"{result.pretrain_seconds:.1f}s ({100 * result.budget_fraction_used:.0f}% of {result.budget}), "
              f"{result.tokens_per_second:,.0f} tok/s")
    t.add_row("not charged", f"data {result.data_prep_seconds:.1f}s (cache {'hit' if result.cache_hit else 'miss'}), "
              f"warm-up/compile {result.compile_seconds:.1f}s")
    t.add_row("total", f"{result.total_seconds:.1f}s on {result.hardware.get('device_name')} "
              f"({result.hardware.get('threads')} threads, {result.hardware.get('precision')})")
    if result.error:
        t.add_row("error", result.error)
    console.print(t)


def handle(args) -> int:
    from rich.console import Console
    from rich.live import Live

    from hsearch.budget import BudgetError, parse_budget
    from hsearch.layout import resolve
    from hsearch.trial import RecipeError, load_recipe, preflight, run_trial
    from hsearch.trial.checks import check_budget

    console = Console(stderr=True)
    resolve(args.layout)
    overrides = parse_sets(args.overrides)
    if args.budget is not None:
        try:
            parse_budget(args.budget)
        except BudgetError as exc:
            raise HsearchError(f"--budget {args.budget}: {exc}") from None
        overrides["pretrain.budget"] = args.budget
    if args.seed is not None:
        overrides["pretrain.seed"] = str(args.seed)
    recipe = load_recipe(args.recipe, overrides or None)
    out_dir = Path(args.out) if args.out else None
    # Everything the trial would refuse, refused now: not after minutes of training. The
    # budget first, so a --budget too small for one step is named by its flag.
    if args.budget is not None:
        try:
            check_budget(recipe)
        except RecipeError as exc:
            raise HsearchError(f"--budget {args.budget}: {exc}") from None
    preflight(recipe, data_dir=args.data_dir, out_dir=out_dir)
    display = TrialDisplay(args.layout, recipe.name, recipe.pretrain.budget.text, console)
    kwargs = dict(data_dir=args.data_dir, out_dir=out_dir, device=args.device,
                  progress=display.update, keep_checkpoint=True if args.keep_checkpoint else None)
    if console.is_terminal:
        with Live(display, console=console, refresh_per_second=4, transient=True):
            result = run_trial(args.layout, recipe, **kwargs)
    else:
        result = run_trial(args.layout, recipe, **kwargs)
    print_result(result, Console())  # the live display is on stderr; the result goes to stdout
    if args.json:
        sys.stdout.write(result.to_json(indent=1, sort_keys=True) + "\n")
    if out_dir is not None:
        console.print(f"result written to {out_dir / 'result.json'}", highlight=False)
    return 0 if result.ok else 1
