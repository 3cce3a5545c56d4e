"""Figures for the report: matplotlib PNGs (Agg, no display) and one offline plotly page."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from hsearch.analysis.hypervolume import HypervolumePoint
from hsearch.analysis.importance import Importances, LayerEffects
from hsearch.analysis.pareto import ParetoResult
from hsearch.analysis.study import Objective, TrialRecord


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _label(o: Objective) -> str:
    return f"{o.name} ({'higher' if o.maximize else 'lower'} is better)"


def _seed_label(r: TrialRecord) -> str:
    return f"{r.seed_preset} #{r.number}"


def pareto_png(res: ParetoResult, path: Path) -> None:
    """Every complete trial; the front as a step line; seeds labelled by preset name.

    x = the second objective (latency), y = the first (score), the usual trade-off view.
    """
    plt = _pyplot()
    ox, oy = res.objectives[1], res.objectives[0]
    done = res.complete
    front_ids = {r.number for r in res.front}
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    others = [r for r in done if r.number not in front_ids]
    ax.scatter([r.values[1] for r in others], [r.values[0] for r in others], s=28, c="#9aa5b1", label="trial")
    front = sorted(res.front, key=lambda r: r.values[1])
    ax.step([r.values[1] for r in front], [r.values[0] for r in front], where="post", c="#d1495b", lw=1.2, alpha=0.7)
    ax.scatter([r.values[1] for r in front], [r.values[0] for r in front], s=46, c="#d1495b", label="Pareto front", zorder=3)
    seeds = [r for r, _ in res.seeds if r.complete]
    if seeds:
        ax.scatter(
            [r.values[1] for r in seeds], [r.values[0] for r in seeds], s=110, facecolors="none",
            edgecolors="#1d3557", linewidths=1.4, label="seed", zorder=4,
        )
        for r in seeds:
            ax.annotate(_seed_label(r), (r.values[1], r.values[0]), textcoords="offset points", xytext=(6, 6), fontsize=8)
    for r in front:
        if r.seed_preset is None:
            ax.annotate(r.layout or "?", (r.values[1], r.values[0]), textcoords="offset points", xytext=(6, -11),
                        fontsize=7, color="#7a1f2b")
    ax.set_xlabel(_label(ox))
    ax.set_ylabel(_label(oy))
    ax.set_title(f"{res.study_name}: {len(res.front)} Pareto-optimal of {len(done)} complete trials")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def pareto_html(res: ParetoResult, path: Path) -> None:
    """Interactive version with plotly.js inlined, so the page works offline."""
    import plotly.graph_objects as go

    ox, oy = res.objectives[1], res.objectives[0]
    front_ids = {r.number for r in res.front}
    fig = go.Figure()

    def trace(recs: Sequence[TrialRecord], name: str, **marker) -> None:
        fig.add_trace(
            go.Scatter(
                x=[r.values[1] for r in recs], y=[r.values[0] for r in recs], mode="markers", name=name,
                marker=marker, text=[r.layout for r in recs],
                customdata=[[r.number, r.seed_preset or ""] for r in recs],
                hovertemplate=(
                    "<b>%{text}</b><br>trial #%{customdata[0]} %{customdata[1]}<br>"
                    f"{oy.name}=%{{y:.4f}}<br>{ox.name}=%{{x:.3f}}<extra></extra>"
                ),
            )
        )

    trace([r for r in res.complete if r.number not in front_ids], "trial", color="#9aa5b1", size=8)
    front = sorted(res.front, key=lambda r: r.values[1])
    trace(front, "Pareto front", color="#d1495b", size=11)
    fig.add_trace(go.Scatter(x=[r.values[1] for r in front], y=[r.values[0] for r in front], mode="lines",
                             line=dict(shape="hv", color="#d1495b", width=1), hoverinfo="skip", showlegend=False))
    seeds = [r for r, _ in res.seeds if r.complete]
    if seeds:
        fig.add_trace(go.Scatter(
            x=[r.values[1] for r in seeds], y=[r.values[0] for r in seeds], mode="markers+text", name="seed",
            text=[_seed_label(r) for r in seeds], textposition="top right", hoverinfo="skip",
            marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color="#1d3557", width=2)),
        ))
    fig.update_layout(
        title=f"{res.study_name}: accuracy vs latency ({len(res.front)} Pareto-optimal of {len(res.complete)})",
        xaxis_title=_label(ox), yaxis_title=_label(oy), template="plotly_white",
    )
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)


def hypervolume_png(points: Sequence[HypervolumePoint], objs: Sequence[Objective], ref: Sequence[float],
                    path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    ref_text = ", ".join(f"{o.name}={v:g}" for o, v in zip(objs, ref))
    hv = [p.hypervolume for p in points]
    axes[0].plot(range(1, len(points) + 1), hv, marker="o", ms=3, drawstyle="steps-post")
    axes[0].set_xlabel("complete trials (in completion order)")
    axes[0].set_ylabel("hypervolume")
    times = [p.when for p in points]
    if points and all(t is not None for t in times):
        start = min(times)
        axes[1].plot([(t - start).total_seconds() / 60 for t in times], hv, marker="o", ms=3, c="#2a9d8f",
                     drawstyle="steps-post")
    axes[1].set_xlabel("minutes since the first trial completed")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"Hypervolume of the front; reference point ({ref_text})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def layers_png(eff: LayerEffects, imp: Importances, objs: Sequence[Objective], path: Path) -> None:
    """Rows: objectives. Columns: kind effect per layer, norm effect per layer, importances.

    Colours are oriented so green is always better (higher score, lower latency); the
    numbers in the cells are the raw mean differences in the objective's own units.
    """
    plt = _pyplot()
    import numpy as np

    fig, axes = plt.subplots(len(objs), 3, figsize=(15, 3.6 * len(objs)), dpi=100,
                             gridspec_kw={"width_ratios": [3, 3, 2]}, squeeze=False)
    for row, o in enumerate(objs):
        for col, (what, table, counts) in enumerate((("kind", eff.kinds, eff.counts_kind),
                                                     ("norm", eff.norms, eff.counts_norm))):
            ax = axes[row][col]
            cats = [c for c in table.get(o.name, {}) if any(counts.get(c, []))]
            data = np.array([table[o.name][c] for c in cats], dtype=float) if cats else np.zeros((0, 0))
            if data.size == 0 or np.all(np.isnan(data)):
                ax.text(0.5, 0.5, "no complete trials with a readable layout", ha="center", va="center")
                ax.set_axis_off()
                continue
            shown = data if o.maximize else -data
            lim = np.nanmax(np.abs(shown)) or 1.0
            ax.imshow(np.ma.masked_invalid(shown), cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
            for (i, j), v in np.ndenumerate(data):
                if not math.isnan(v):
                    ax.text(j, i, f"{v:+.3g}\nn={counts[cats[i]][j]}", ha="center", va="center", fontsize=7)
            ax.set_yticks(range(len(cats)), cats)
            ax.set_xticks(range(eff.num_layers), [str(i) for i in range(eff.num_layers)])
            ax.set_xlabel("layer")
            ax.set_title(f"{o.name}: mean difference by {what} (green = better)", fontsize=9)
        ax = axes[row][2]
        values = imp.values.get(o.name)
        if values:
            names = list(values)[::-1]
            ax.barh(names, [values[n] for n in names], color="#457b9d")
            ax.set_xlim(0, 1)
            ax.set_title(f"Optuna importance for {o.name}" + (" (target negated)" if o.maximize else ""), fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
        else:
            ax.text(0.5, 0.5, "importance " + imp.notes.get(o.name, "not computed"), ha="center", va="center",
                    wrap=True, fontsize=8)
            ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def robust_png(res: ParetoResult, path: Path) -> None:
    """The re-evaluated trials at (mean measured latency, mean score) with their 95% intervals as
    error bars; robust-front members filled, separably dominated ones hollow, seeds labelled."""
    plt = _pyplot()
    oy = res.objectives[0]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    seeds = {r.number: r for r, _ in res.seeds}
    for group, colour, label in ((True, "#d1495b", "robust front"), (False, "#9aa5b1", "separably dominated")):
        ms = [m for m in res.robust if m.robust == group]
        if not ms:
            continue
        xs, ys = [m.means[1] for m in ms], [m.means[0] for m in ms]

        def err(i: int, ms=ms):
            lo = [m.means[i] - m.bounds[i][0] if math.isfinite(m.bounds[i][0]) else 0.0 for m in ms]
            hi = [m.bounds[i][1] - m.means[i] if math.isfinite(m.bounds[i][1]) else 0.0 for m in ms]
            return [lo, hi]

        ax.errorbar(xs, ys, xerr=err(1), yerr=err(0), fmt="o", ms=7, capsize=4, lw=1.2, color=colour,
                    mfc=colour if group else "white", label=label, zorder=3 if group else 2)
    for m in res.robust:
        text = _seed_label(seeds[m.number]) if m.number in seeds else f"#{m.number} {m.attrs.get('layout', '?')}"
        ax.annotate(text, (m.means[1], m.means[0]), textcoords="offset points", xytext=(7, 6), fontsize=7,
                    color="#1d3557" if m.number in seeds else "#7a1f2b")
    ax.set_xlabel("latency_ms, measured on a whole node (lower is better)")
    ax.set_ylabel(_label(oy) + ", mean over seeds")
    ax.set_title(f"{res.study_name}: {len(res.robust_front)} robust of {len(res.robust)} re-evaluated "
                 "(bars: 95% intervals)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
