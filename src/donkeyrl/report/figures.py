"""The study's figures (matplotlib), each returned as a PNG data URI for the self-contained page.

Why ``matplotlib.figure.Figure`` and never ``pyplot``: no global figure state and no GUI backend,
so a report can be built inside a study controller, a test or a thread without side effects.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from donkeyrl.bo.space import Param
from donkeyrl.report.optuna_study import Importance
from donkeyrl.report.study import StudyData, TrialView

__all__ = ["png_data_uri", "history_figure", "champion_progress_figure", "importance_figure",
           "slice_figure", "curves_overview_figure", "curves_grid_figure", "SOURCE_STYLE",
           "MAX_CURVE_PANELS"]

#: Marker colour and label per proposal source (see donkeyrl.report.study).
SOURCE_STYLE = {"random": ("#e69f00", "random proposal"), "gp": ("#0072b2", "GP+UCB proposal"),
                "confirmation": ("#cc79a7", "confirmation run (same params, new seed)"),
                "unknown": ("#999999", "proposal source unknown")}
FAILED_COLOUR = "#d55e00"
#: Most per-trial learning-curve panels drawn (the best trials and the champion first).
MAX_CURVE_PANELS = 60


def png_data_uri(fig: Figure, dpi: int = 90) -> str:
    """``data:image/png;base64,...`` of ``fig`` (embedded in the page: it opens offline)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _failed_floor(values: Sequence[float]) -> float:
    """Where failed trials are drawn: a band below the lowest objective."""
    if not values:
        return 0.0
    lo, hi = min(values), max(values)
    return lo - 0.12 * max(hi - lo, abs(hi) * 0.1, 1.0)


def history_figure(data: StudyData) -> Figure:
    """Every trial's objective by trial number, the running best, random vs GP, failures."""
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    ax = fig.subplots()
    trials = data.trials
    ok = [t for t in trials if t.record.usable]
    floor = _failed_floor([float(t.record.objective) for t in ok])  # type: ignore[arg-type]
    sources = list(SOURCE_STYLE) + sorted({t.source for t in ok} - set(SOURCE_STYLE))
    for source in sources:
        colour, label = SOURCE_STYLE.get(source, ("#cc79a7", f"{source} proposal"))
        pts = [t for t in ok if t.source == source]
        if pts:
            ax.scatter([t.trial for t in pts], [_objective(t) for t in pts], s=36, c=colour,
                       label=label, zorder=3, edgecolors="black", linewidths=0.4)
    failed = [t for t in trials if not t.record.usable]
    if failed:
        ax.scatter([t.trial for t in failed], [floor] * len(failed), marker="x", s=50,
                   c=FAILED_COLOUR, label="failed / not usable (status below)", zorder=3)
        for t in failed:
            ax.annotate(_status_label(t), (t.trial, floor), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=7, color=FAILED_COLOUR, rotation=90,
                        va="bottom")
    crowned = data.crowned_trials()
    champs = [t for t in trials if t.trial in crowned]
    if champs:
        ax.scatter([t.trial for t in champs], [_objective(t) for t in champs], marker="*",
                   s=220, facecolors="none", edgecolors="#009e73", linewidths=1.5,
                   label="became champion", zorder=4)
    if ok:
        xs, best = [], []
        running = -math.inf
        for t in trials:
            if t.record.usable:
                running = max(running, float(t.record.objective))  # type: ignore[arg-type]
            if running > -math.inf:
                xs.append(t.trial)
                best.append(running)
        ax.step(xs, best, where="post", color="#009e73", lw=1.6, label="running best", zorder=2)
    ax.set_xlabel("trial")
    ax.set_ylabel(data.objective)
    ax.set_title("Optimisation history")
    ax.grid(alpha=0.3)
    if trials:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no trial recorded yet", ha="center", va="center", transform=ax.transAxes)
    return fig


def _objective(t: TrialView) -> float:
    return math.nan if t.record.objective is None else float(t.record.objective)


def _status_label(t: TrialView) -> str:
    rec = t.record
    if rec.run_status == "ok":
        return "reward hacking" if rec.reward_hacking else "no objective"
    return rec.run_status


def champion_progress_figure(data: StudyData) -> Figure:
    """The champion's objective against the study's accumulated trial time."""
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.subplots()
    clock = 0.0
    xs, ys, labels = [], [], []
    crowned_by = {rec.trial: crowned for rec, crowned in data.crownings()}
    for t in data.trials:
        clock += max(t.record.elapsed_sec, 0.0)
        crowned = crowned_by.get(t.trial)
        if crowned is not None and crowned.objective is not None:
            xs.append(clock / 60.0)
            ys.append(float(crowned.objective))
            labels.append(crowned.trial)
    if xs:
        ax.step([*xs, clock / 60.0], [*ys, ys[-1]], where="post", color="#009e73", lw=1.8)
        ax.scatter(xs, ys, marker="*", s=120, c="#009e73", zorder=3)
        for x, y, n in zip(xs, ys, labels):
            ax.annotate(f"trial {n}", (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    else:
        ax.text(0.5, 0.5, "no champion yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("accumulated trial time (min)")
    ax.set_ylabel(f"champion {data.objective}")
    ax.set_title("Champion progression")
    ax.grid(alpha=0.3)
    return fig


def importance_figure(imp: Importance) -> Figure:
    """Horizontal bars of the parameter importances, most important on top."""
    names = list(imp.values)[::-1]
    fig = Figure(figsize=(7, 0.45 * len(names) + 1.2), layout="constrained")
    ax = fig.subplots()
    ax.barh(names, [imp.values[n] for n in names], color="#0072b2")
    for i, n in enumerate(names):
        ax.text(imp.values[n], i, f" {imp.values[n]:.2f}", va="center", fontsize=8)
    ax.set_xlabel("importance (share of the objective's variance)")
    ax.set_xlim(0, max(1e-9, max(imp.values.values())) * 1.2)
    ax.set_title("Parameter importance")
    return fig


def _param_axis(ax: Any, p: Param, values: list[Any]) -> list[float]:
    """x positions of ``values`` on an axis set up for ``p`` (log scale, categorical ticks)."""
    if p.kind == "categorical":
        labels = [str(c) for c in p.choices]
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        index = {repr(c): i for i, c in enumerate(p.choices)}
        return [float(index.get(repr(v), math.nan)) for v in values]
    if p.log:
        ax.set_xscale("log")
    return [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
            for v in values]


def slice_figure(data: StudyData, params: Sequence[Param]) -> Figure:
    """One panel per searched parameter: the objective of every trial against its value.

    Colour = trial number (order of the search); failed trials as crosses below the points.
    """
    cols = min(3, max(len(params), 1))
    rows = max(1, math.ceil(len(params) / cols))
    fig = Figure(figsize=(4.0 * cols, 3.0 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    ok = [t for t in data.trials if t.record.usable]
    failed = [t for t in data.trials if not t.record.usable]
    floor = _failed_floor([float(t.record.objective) for t in ok])  # type: ignore[arg-type]
    n_max = max([t.trial for t in data.trials], default=1)
    sc = None
    for ax, p in zip(axes, params):
        xs = _param_axis(ax, p, [t.record.params.get(p.name) for t in ok])
        sc = ax.scatter(xs, [_objective(t) for t in ok], c=[t.trial for t in ok], cmap="viridis",
                        vmin=1, vmax=max(n_max, 2), s=28, edgecolors="black", linewidths=0.3)
        if failed:
            fx = _param_axis(ax, p, [t.record.params.get(p.name) for t in failed])
            ax.scatter(fx, [floor] * len(fx), marker="x", c=FAILED_COLOUR, s=30)
        ax.set_title(p.name + (" (log)" if p.log else ""), fontsize=10)
        ax.set_ylabel(data.objective, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(params):]:
        ax.set_visible(False)
    if sc is not None:
        fig.colorbar(sc, ax=axes[:len(params)].tolist(), label="trial", shrink=0.8)
    return fig


def _curve_ready(views: Sequence[TrialView]) -> list[TrialView]:
    return [v for v in views if v.curve]


def curves_overview_figure(data: StudyData) -> Figure:
    """Every recorded learning curve in one panel (episode reward by step), champion in bold."""
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.subplots()
    champ = data.champion.trial if data.champion else None
    drawn = 0
    for v in _curve_ready(data.trials):
        pts = [p for p in v.curve or [] if p["mean_reward"] is not None]
        if not pts:
            continue
        is_champ = v.trial == champ
        ax.plot([p["steps"] for p in pts], [p["mean_reward"] for p in pts],
                lw=2.4 if is_champ else 0.9, alpha=1.0 if is_champ else 0.55,
                color="#009e73" if is_champ else None,
                label=f"trial {v.trial} (champion)" if is_champ else None, zorder=3 if is_champ else 2)
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no curve recorded", ha="center", va="center", transform=ax.transAxes)
    elif champ is not None and any(v.trial == champ for v in _curve_ready(data.trials)):
        ax.legend(fontsize=8)
    ax.set_xlabel("training steps")
    ax.set_ylabel("mean episode reward")
    ax.set_title("Learning curves of all trials")
    ax.grid(alpha=0.3)
    return fig


def curve_panel_order(data: StudyData) -> list[TrialView]:
    """Trials for the per-trial panels: all in trial order, or the best MAX_CURVE_PANELS."""
    views = list(data.trials)
    if len(views) <= MAX_CURVE_PANELS:
        return views
    ranked = sorted(views, key=lambda v: -(v.record.objective if v.record.usable else -math.inf))  # type: ignore[operator]
    return sorted(ranked[:MAX_CURVE_PANELS], key=lambda v: v.trial)


def curves_grid_figure(views: Sequence[TrialView]) -> Figure:
    """One small panel per trial: reward (left axis) and best-episode laps (right) by step."""
    cols = 4
    rows = max(1, math.ceil(len(views) / cols))
    fig = Figure(figsize=(3.2 * cols, 2.3 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, v in zip(axes, views):
        rec = v.record
        value = "-" if rec.objective is None else f"{rec.objective:.3g}"
        ax.set_title(f"trial {v.trial}: {rec.run_status} {value}", fontsize=9)
        pts = v.curve or []
        if not pts:
            ax.text(0.5, 0.5, "no curve recorded", ha="center", va="center", transform=ax.transAxes,
                    fontsize=9, color="#666666")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        steps = [p["steps"] for p in pts]
        ax.plot(steps, [np.nan if p["mean_reward"] is None else p["mean_reward"] for p in pts],
                color="#0072b2", lw=1.3)
        ax.set_ylabel("reward", fontsize=7, color="#0072b2")
        ax.tick_params(labelsize=7)
        ax2 = ax.twinx()
        ax2.plot(steps, [np.nan if p["best_episode_laps"] is None else p["best_episode_laps"]
                         for p in pts], color="#d55e00", lw=1.0, ls="--")
        ax2.set_ylabel("laps (best ep.)", fontsize=7, color="#d55e00")
        ax2.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(views):]:
        ax.set_visible(False)
    return fig
