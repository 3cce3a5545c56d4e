"""Replay benchmark: record real rung curves once, then compare search strategies in seconds.

``record`` trains layouts of a space straight to the top rung of a multi-fidelity recipe
(:func:`hsearch.trial.run_trial`, which scores every lower rung on the way from a decay branch:
the same numbers a promoted layout gets, see ``tests/test_trial_rungs.py``) and appends one JSON
line per layout, so recording can stop and go on in another sitting.

``simulate`` replays such a table, as Syne Tune's simulator does with tabulated benchmarks: a
strategy proposes layouts (the space's seeds first, as the driver queues them, then Optuna's
samplers over the real space; a proposal is answered by the recorded layout nearest to it, by
Hamming distance over the layer choices, among those not tried yet), pays the recorded cost of
what it trains on ``workers`` simulated slots, and ASHA promotes with the driver's own rules
(:func:`hsearch.fidelity.next_promotion`). A task's cost is the cost model's step time times the
steps it runs (a promotion resumes: only the new steps, and the lower rungs' decay branches are
paid only when trained from scratch), plus the recorded evaluation, fine-tuning (top rung only)
and latency time.
"""

from __future__ import annotations

import heapq
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from hsearch.fidelity import Entry, RungPlan, next_promotion
from hsearch.front import front_indices

STRATEGIES = ("random", "tpe", "nsga2", "asha-random", "asha-tpe")


@dataclass(frozen=True)
class Curve:
    """One recorded layout: its rung scores and what each part of its training cost."""

    layout: str
    params: dict[str, Any]
    rung_scores: tuple[float, ...]  # the promotion score at each rung (fidelity.score: MLM accuracy or -loss)
    objective: float  # the search objective at the top rung (mean fine-tuning accuracy)
    latency_ms: float  # the latency objective (predicted)
    step_seconds: float  # the cost model's step time
    total_steps: int
    eval_seconds: float  # per task: data, model build, held-out evaluation
    top_seconds: float  # fine-tuning and latency, paid at the top rung

    def task_seconds(self, plan: RungPlan, rung: int, resumed: bool) -> float:
        extra = self.top_seconds if rung == plan.top else 0.0
        return plan.steps_to_run(rung, resumed=resumed) * self.step_seconds + self.eval_seconds + extra

    def full_seconds(self) -> float:
        """A full-fidelity trial: the whole budget straight, no branches."""
        return self.total_steps * self.step_seconds + self.eval_seconds + self.top_seconds


@dataclass
class Table:
    recipe: dict[str, Any]
    fractions: list[float]
    decay: float
    warmup: float
    eta: int
    curves: list[Curve]
    hardware: dict[str, Any] = field(default_factory=dict)

    def plan(self, total_steps: int) -> RungPlan:
        return RungPlan.build(total_steps, self.fractions, decay=self.decay, warmup=self.warmup)


# -- recording ---------------------------------------------------------------------------


def record(recipe, space, out: Path, *, count: int, seed: int, data_dir: str | None, shard: tuple[int, int] = (0, 1),
           say: Callable[[str], None] = print) -> int:
    """Train ``count`` layouts of ``space`` (its seeds first, then a seeded random sample) under
    ``recipe`` to the top rung, appending one line per layout to ``out``; layouts already in
    ``out`` are skipped. ``shard=(i, n)``: only every n-th layout from the i-th, so n processes
    can record one table together. Returns how many lines ``out`` holds."""
    from hsearch.layout import resolve
    from hsearch.trial import run_trial

    if not recipe.fidelity.multi:
        raise ValueError(f"recipe {recipe.name} has one rung: recording needs fidelity.rungs with two or more")
    done = {json.loads(line)["layout"] for line in out.read_text().splitlines() if line.strip()} if out.exists() else set()
    layouts = [str(s.layout) for s in space.seeds]
    layouts += [lay for lay in sample_layouts(space, count, seed) if lay not in layouts]
    out.parent.mkdir(parents=True, exist_ok=True)
    for layout in layouts[:count][shard[0]::shard[1]]:
        if layout in done:
            continue
        t0 = time.time()
        result = run_trial(layout, recipe, data_dir=data_dir)
        line = {"layout": layout, "params": space.params_for(resolve(layout)[0]),
                "status": result.status, "error": result.error, "recipe_hash": recipe.hash,
                "rungs": result.rungs, "objective": result.mean_accuracy, "mlm_accuracy": result.mlm_accuracy,
                "latency_ms_predicted": result.latency_ms_predicted, "latency_ms": result.latency_ms,
                "step_seconds_predicted": result.step_seconds_predicted, "optimizer_steps": result.optimizer_steps,
                "steps_run": result.steps_run, "pretrain_seconds": result.pretrain_seconds,
                "finetune_seconds": result.finetune_seconds, "latency_seconds": result.latency_seconds,
                "total_seconds": result.total_seconds, "params_count": result.params,
                "tasks": {k: v.score_mean for k, v in result.tasks.items()},
                "hardware": result.hardware, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))}
        with out.open("a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
        done.add(layout)
        say(f"{len(done)}/{count} {layout}: {result.status} objective {result.mean_accuracy} "
            f"rungs {[round(r['mlm_accuracy'], 4) for r in result.rungs]} ({result.total_seconds:.0f} s)")
    return len(done)


def sample_layouts(space, count: int, seed: int) -> list[str]:
    """``count`` distinct layouts the space allows, drawn by Optuna's random sampler (``seed``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out: list[str] = []
    for _ in range(count * 50):
        if len(out) == count:
            break
        layout = space.layout(space.suggest(study.ask()))
        if not space.violations(layout) and str(layout) not in out:
            out.append(str(layout))
    return out


def load_table(path: Path, recipe) -> Table:
    """The complete lines of a recorded file as a :class:`Table` for ``recipe`` (its rungs)."""
    curves = []
    hardware: dict[str, Any] = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        if d["status"] != "complete" or d["objective"] is None:
            continue
        overhead = d["total_seconds"] - d["pretrain_seconds"] - d["finetune_seconds"] - d["latency_seconds"]
        score = (lambda r: -r["mlm_loss"]) if recipe.fidelity.score == "mlm-loss" else (lambda r: r["mlm_accuracy"])
        curves.append(Curve(d["layout"], d["params"], tuple(score(r) for r in d["rungs"]), d["objective"],
                            d["latency_ms_predicted"], d["step_seconds_predicted"], d["optimizer_steps"],
                            max(0.0, overhead) / len(recipe.fidelity.fractions),
                            d["finetune_seconds"] + d["latency_seconds"]))
        hardware = d["hardware"]
    fid = recipe.fidelity
    return Table(recipe.to_dict(), fid.fractions, fid.decay, recipe.pretrain.warmup, fid.eta, curves, hardware)


# -- simulation ------------------------------------------------------------------------------


def hypervolume(points: Sequence[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by (objective up, latency down) points, bounded by ``ref``."""
    from hsearch.analysis.hypervolume import hypervolume_2d
    from hsearch.analysis.study import Objective

    return hypervolume_2d(points, [Objective("score", "maximize"), Objective("latency", "minimize")], ref)


def reference(table: Table) -> tuple[float, float]:
    return (min(0.0, min(c.objective for c in table.curves)), 1.1 * max(c.latency_ms for c in table.curves))


class _Proposer:
    """New layouts from an Optuna sampler over the space, answered by the nearest untried curve."""

    def __init__(self, table: Table, space, sampler: str, seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        samplers = {"random": lambda: optuna.samplers.RandomSampler(seed=seed),
                    "tpe": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True),
                    "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed, population_size=8)}
        self.study = optuna.create_study(directions=["maximize", "minimize"], sampler=samplers[sampler]())
        recorded = {c.layout for c in table.curves}
        for preset in space.seeds:  # the driver queues the space's seeds before the sampler's own
            if str(preset.layout) in recorded:
                self.study.enqueue_trial(dict(preset.params))
        self.space, self.table = space, table
        self.untried = list(range(len(table.curves)))
        self.rng = random.Random(seed)
        self.trials: dict[int, Any] = {}

    def propose(self) -> int | None:
        if not self.untried:
            return None
        trial = self.study.ask()
        wanted = self.space.layout(self.space.suggest(trial))
        want = str(wanted).split(":")
        def distance(i: int) -> tuple[int, float]:
            have = self.table.curves[i].layout.split(":")
            return sum(a != b for a, b in zip(want[0], have[0])) + (want[1] != have[1]), self.rng.random()
        pick = min(self.untried, key=distance)
        self.untried.remove(pick)
        self.trials[pick] = trial
        return pick

    def abandon(self, i: int) -> None:
        """A proposal the budget cannot pay for: failed, and its layout untried again."""
        from optuna.trial import TrialState

        self.study.tell(self.trials.pop(i), state=TrialState.FAIL)
        self.untried.append(i)

    def complete(self, i: int) -> None:
        c = self.table.curves[i]
        self.study.tell(self.trials.pop(i), [c.objective, c.latency_ms])

    def stopped(self, i: int, grade: float) -> None:
        from optuna.trial import TrialState

        trial = self.trials.pop(i)
        trial.set_constraint("hsearch_infeasible", grade)
        self.study.tell(trial, state=TrialState.PRUNED)


@dataclass
class Trace:
    strategy: str
    seed: int
    compute: list[float] = field(default_factory=list)  # slot-seconds of finished tasks at each top-rung result
    hv: list[float] = field(default_factory=list)

    def at(self, budget: float) -> float:
        """Hypervolume reached within ``budget`` slot-seconds of compute."""
        best = 0.0
        for c, h in zip(self.compute, self.hv):
            if c <= budget:
                best = h
        return best


def simulate(table: Table, space, strategy: str, seed: int, budget: float, workers: int = 2) -> Trace:
    """One search of ``strategy`` with ``budget`` slot-seconds of compute on ``workers`` slots."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} (allowed: {', '.join(STRATEGIES)})")
    asha = strategy.startswith("asha-")
    proposer = _Proposer(table, space, strategy.removeprefix("asha-"), seed)
    ref = reference(table)
    plans = {i: table.plan(c.total_steps) for i, c in enumerate(table.curves)}
    top = len(table.fractions) - 1
    trace = Trace(strategy, seed)
    front: list[tuple[float, float]] = []
    committed = done = 0.0
    events: list[tuple[float, int, int, int, float]] = []  # (finish time, order, curve, rung, cost)
    populations: dict[int, list] = {r: [] for r in range(top)}
    paused: dict[int, int] = {}
    order = 0

    def start(now: float) -> bool:
        """Give a free slot its next task (the driver's order: a promotion, else a new layout)."""
        nonlocal committed, order
        choice = None
        if asha:
            pick = next_promotion(populations, paused, table.eta)
            if pick is not None:
                i, rung = pick
                cost = table.curves[i].task_seconds(plans[i], rung, resumed=True)
                if committed + cost <= budget:
                    paused.pop(i)
                    choice = (i, rung, cost)
        if choice is None:
            i = proposer.propose()
            if i is None:
                return False
            c = table.curves[i]
            choice = (i, 0, c.task_seconds(plans[i], 0, resumed=False)) if asha else (i, top, c.full_seconds())
            if committed + choice[2] > budget:
                proposer.abandon(i)
                return False
        i, rung, cost = choice
        committed += cost
        heapq.heappush(events, (now + cost, order, i, rung, cost))
        order += 1
        return True

    for _ in range(workers):
        if not start(0.0):
            break
    while events:
        now, _, i, rung, cost = heapq.heappop(events)
        done += cost
        c = table.curves[i]
        if rung == top:
            proposer.complete(i)
            front.append((c.objective, c.latency_ms))
            trace.compute.append(done)
            trace.hv.append(hypervolume(front, ref))
        else:
            populations[rung].append(Entry(i, c.rung_scores[rung], c.latency_ms))
            paused[i] = rung
        start(now)
    for i, rung in paused.items():  # the run's end stops the paused layouts, as the driver does
        proposer.stopped(i, float(top - rung))
    return trace


@dataclass
class Comparison:
    budget: float
    seeds: int
    workers: int
    traces: dict[str, list[Trace]]
    ref: tuple[float, float]

    def median_at(self, strategy: str, budget: float) -> float:
        return statistics.median(t.at(budget) for t in self.traces[strategy])

    def compute_to_reach(self, strategy: str, target: float, grid: int = 400) -> float | None:
        """Least compute at which the strategy's median hypervolume reaches ``target``."""
        for k in range(1, grid + 1):
            b = self.budget * k / grid
            if self.median_at(strategy, b) >= target - 1e-12:
                return b
        return None


def compare(table: Table, space, *, budget: float, seeds: int, workers: int = 2,
            strategies: Sequence[str] = STRATEGIES) -> Comparison:
    traces = {s: [simulate(table, space, s, seed, budget, workers) for seed in range(seeds)] for s in strategies}
    return Comparison(budget, seeds, workers, traces, reference(table))


def full_trial_seconds(table: Table) -> float:
    return statistics.fmean(c.full_seconds() for c in table.curves)


def rung_spearman(table: Table) -> list[float | None]:
    """Over all recorded layouts, Spearman's rho between each lower rung's promotion score and the
    top-rung objective: how much ASHA's early stops can know."""
    from hsearch.fidelity import spearman

    objectives = [c.objective for c in table.curves]
    return [spearman([c.rung_scores[r] for c in table.curves], objectives) for r in range(len(table.fractions) - 1)]


def table_front(table: Table) -> list[Curve]:
    """The recorded layouts no other recorded layout dominates (objective up, latency down)."""
    points = [(c.objective, c.latency_ms) for c in table.curves]
    return [table.curves[i] for i in front_indices(points, (True, False))]


def summary_rows(cmp: Comparison, fractions: Sequence[float] = (1 / 9, 1 / 3, 2 / 3, 1.0)) -> list[list[str]]:
    rows = []
    for s, traces in cmp.traces.items():
        vals = [cmp.median_at(s, cmp.budget * f) for f in fractions]
        q = sorted(t.at(cmp.budget) for t in traces)
        rows.append([s] + [f"{v:.4f}" for v in vals] + [f"{q[len(q) // 4]:.4f}–{q[(3 * len(q)) // 4]:.4f}"])
    return rows


def write_plot(cmp: Comparison, path: Path, best: float) -> None:
    """Regret (the table's own hypervolume ``best`` minus the median reached) against compute, on a
    log scale, as HPO benchmarks plot it: the last few percent of hypervolume stay visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    grid = [cmp.budget * k / 200 for k in range(1, 201)]
    floor = 1e-4 * best  # a strategy that found the table's front
    for s, style in zip(cmp.traces, ("-", "--", "-.", ":", (0, (5, 1)))):
        ax.plot([g / 3600 for g in grid], [max(floor, best - cmp.median_at(s, g)) for g in grid], label=s,
                linestyle=style)
    ax.set_yscale("log")
    ax.set_xlabel("compute spent (slot-hours, simulated)")
    ax.set_ylabel(f"table's hypervolume − median of {cmp.seeds} seeds")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(cmp: Comparison, table: Table, out_dir: Path, source: str) -> Path:
    """``replay.md`` (with the goal check), ``replay.json`` and ``replay.png`` in ``out_dir``."""
    import optuna

    out_dir.mkdir(parents=True, exist_ok=True)
    front = table_front(table)
    best = hypervolume([(c.objective, c.latency_ms) for c in front], cmp.ref)
    write_plot(cmp, out_dir / "replay.png", best)
    target = cmp.median_at("tpe", cmp.budget) if "tpe" in cmp.traces else None
    lines = [
        "# Replay benchmark: hypervolume against compute", "",
        f"Table: `{source}`, {len(table.curves)} recorded layouts, rungs "
        f"{', '.join(f'{f:.3g}' for f in table.fractions)}, eta {table.eta}; hardware of the recording: "
        f"{table.hardware.get('device_name', '?')}, torch {table.hardware.get('torch', '?')}.",
        f"Each strategy ran {cmp.seeds} search seeds on {cmp.workers} simulated slots with a compute budget of "
        f"{cmp.budget / 3600:.2f} slot-hours ({cmp.budget / full_trial_seconds(table):.1f} mean full trials). "
        f"Hypervolume reference point: score {cmp.ref[0]:g}, latency {cmp.ref[1]:.3f} ms. Samplers: Optuna "
        f"{optuna.__version__} (their proposals, so the traces, may change with its version).", "",
        "| strategy | median HV at 1/9 | at 1/3 | at 2/3 | at the whole budget | IQR at the whole budget |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(cmp)]
    rhos = rung_spearman(table)
    lines += ["", f"The table's own front: {len(front)} of {len(table.curves)} layouts, hypervolume {best:.4f} "
                  "(what a search that trained every recorded layout reaches).",
              "Spearman's rho between each lower rung's promotion score and the objective, over all recorded "
              "layouts: " + ", ".join(f"rung {r} ({table.fractions[r]:.3g}): "
                                      + ("n/a" if rho is None else f"{rho:+.2f}") for r, rho in enumerate(rhos))
              + ".", ""]
    goal = {}
    if target is not None:
        lines.append(f"Goal: reach full-fidelity TPE's final median hypervolume ({target:.4f}) with at most 1/3 of "
                     "its compute.")
        for s in ("asha-tpe", "asha-random"):
            if s in cmp.traces:
                need = cmp.compute_to_reach(s, target)
                goal[s] = None if need is None else need / cmp.budget
                lines.append(f"- {s}: " + ("never reached it within the budget" if need is None else
                                           f"reached it with {need / cmp.budget:.2f} of the compute"))
    lines += ["", "![hypervolume regret against compute](replay.png)", ""]
    (out_dir / "replay.md").write_text("\n".join(lines))
    (out_dir / "replay.json").write_text(json.dumps({
        "source": source, "optuna": optuna.__version__, "layouts": len(table.curves), "budget_seconds": cmp.budget, "seeds": cmp.seeds,
        "workers": cmp.workers, "reference": cmp.ref, "goal_compute_fraction": goal,
        "table_front": [c.layout for c in front], "table_hypervolume": best, "rung_spearman": rhos,
        "traces": {s: [{"seed": t.seed, "compute": t.compute, "hv": t.hv} for t in ts] for s, ts in cmp.traces.items()},
    }, indent=1))
    return out_dir / "replay.md"
