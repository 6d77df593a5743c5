"""The GP's view of the search: posterior mean and uncertainty along two parameters.

The model is refitted here from the records with :mod:`donkeyrl.bo`'s own functions, by the
optimizer's rules (see :mod:`donkeyrl.bo.optimizer`): successful trials at their objective,
failed trials imputed at the worst successful value, interrupted and reward-hacking trials left
out, the same output warping and MAP hyperparameters. The two parameters vary over a grid; every
other parameter is held at the champion's value (the best usable trial's when there is no
champion), so the picture is a slice through the champion.

Notation: X (n, d) trials in the unit cube, z (n,) warped targets, U (g,) grid coordinates.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from donkeyrl.bo import SearchSpace, SearchSpaceError, gp
from donkeyrl.bo.warping import fit_output_transform
from donkeyrl.research.records import FAILED
from donkeyrl.report.study import StudyData

__all__ = ["Posterior", "fit_posterior", "posterior_figure", "GRID"]

log = logging.getLogger(__name__)

#: Grid points per continuous axis.
GRID = 60


@dataclass
class Posterior:
    """The GP conditioned on a study's records."""

    space: SearchSpace
    state: gp.GPState
    transform: Any
    X_ok: np.ndarray
    """(n_ok, d) successful trials."""
    X_failed: np.ndarray
    """(n_failed, d) failed trials (imputed at the worst value)."""
    anchor: np.ndarray
    """(d,) the point the slice goes through (the champion)."""

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(m,) posterior mean and standard deviation in objective units at ``X`` (m, d)."""
        m, s = gp.predict(self.state, X)
        return self.transform.inverse(m), self.transform.std_inverse(m, s)


def fit_posterior(data: StudyData) -> Posterior | None:
    """The GP over the study's records, or None with fewer than two usable trials."""
    space = data.space
    if space is None or space.dim == 0:
        return None
    ok_x, ok_y, ok_noise, bad_x = [], [], [], []
    for rec in data.records:
        if rec.run_status == "interrupted" or rec.reward_hacking:
            continue
        try:
            x = space.snap(space.encode(rec.params))[0]
        except SearchSpaceError:
            continue
        if rec.usable and rec.objective_name == data.objective:
            ok_x.append(x)
            ok_y.append(float(rec.objective))  # type: ignore[arg-type]
            ok_noise.append(rec.noise if rec.noise is not None and math.isfinite(rec.noise) else 0.0)
        elif rec.run_status in FAILED or rec.run_status == "ok":
            bad_x.append(x)
    if len(ok_y) < 2:
        return None
    y_ok = np.array(ok_y)
    tf = fit_output_transform(y_ok)
    X = np.array(ok_x + bad_x)
    y_raw = np.concatenate([y_ok, np.full(len(bad_x), y_ok.min())])
    extra = tf.noise_forward(y_raw, np.concatenate([ok_noise, np.zeros(len(bad_x))]))
    z = tf.forward(y_raw)
    theta = gp.fit_theta(X, z, space.is_categorical, extra)
    state = gp.condition(X, z, theta, space.is_categorical, extra)
    anchor = np.array(ok_x[int(np.argmax(y_ok))])
    if data.champion is not None:
        try:
            anchor = space.snap(space.encode(data.champion.params))[0]
        except SearchSpaceError:
            pass
    return Posterior(space, state, tf, np.array(ok_x), np.array(bad_x).reshape(-1, space.dim), anchor)


def _axis(space: SearchSpace, j: int) -> np.ndarray:
    """Grid coordinates of coordinate ``j``: its levels when discrete, else GRID points."""
    p, levels = space.free[j], int(space.n_levels[j])
    if p.kind == "int" and p.log and levels <= GRID:
        return np.array(sorted({p.encode(v) for v in range(int(p.low), int(p.high) + 1)}))  # type: ignore[arg-type]
    if 0 < levels <= GRID:
        return (np.arange(levels) + 0.5) / levels
    return np.linspace(0.0, 1.0, GRID)


def _ticks(ax_set: Any, space: SearchSpace, j: int) -> None:
    """Tick labels in parameter values for unit coordinate axis ``j``."""
    p = space.free[j]
    if p.kind == "categorical":
        pos = (np.arange(len(p.choices)) + 0.5) / len(p.choices)
        ax_set(pos, [str(c) for c in p.choices])
        return
    levels = int(space.n_levels[j])
    if 0 < levels <= 10:  # a few integers: one tick per value, at its bucket centre
        pos = _axis(space, j)
    else:
        pos = np.linspace(0.0, 1.0, 5)
    ax_set(pos, [f"{p.decode(u):.3g}" for u in pos])


def posterior_figure(post: Posterior, names: list[str]) -> Figure:
    """Mean and standard deviation over ``names`` (one or two searched parameters)."""
    space = post.space
    free = [p.name for p in space.free]
    js = [free.index(n) for n in names]
    if len(js) == 1:
        return _figure_1d(post, js[0])
    ja, jb = js[:2]
    ua, ub = _axis(space, ja), _axis(space, jb)
    A, B = np.meshgrid(ua, ub, indexing="xy")  # (len(ub), len(ua))
    Xg = np.repeat(post.anchor[None, :], A.size, axis=0)
    Xg[:, ja], Xg[:, jb] = A.ravel(), B.ravel()
    mean, std = post.predict(Xg)
    fig = Figure(figsize=(11, 4.3), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, values, title, cmap in ((axes[0], mean, "posterior mean", "viridis"),
                                    (axes[1], std, "posterior std (uncertainty)", "magma")):
        mesh = ax.pcolormesh(ua, ub, values.reshape(A.shape), shading="nearest", cmap=cmap)
        fig.colorbar(mesh, ax=ax, shrink=0.9)
        if len(post.X_ok):
            ax.scatter(post.X_ok[:, ja], post.X_ok[:, jb], c="white", edgecolors="black", s=26,
                       label="trials")
        if len(post.X_failed):
            ax.scatter(post.X_failed[:, ja], post.X_failed[:, jb], marker="x", c="#d55e00", s=36,
                       label="failed trials")
        ax.scatter([post.anchor[ja]], [post.anchor[jb]], marker="*", s=200, c="#00c853",
                   edgecolors="black", label="champion (slice point)")
        _ticks(ax.set_xticks, space, ja)
        _ticks(ax.set_yticks, space, jb)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(space.free[ja].name)
        ax.set_ylabel(space.free[jb].name)
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=7, loc="upper right", framealpha=0.8)
    fig.suptitle("GP posterior of the objective (other parameters at the champion's values)",
                 fontsize=11)
    return fig


def _figure_1d(post: Posterior, j: int) -> Figure:
    space = post.space
    u = _axis(space, j)
    Xg = np.repeat(post.anchor[None, :], len(u), axis=0)
    Xg[:, j] = u
    mean, std = post.predict(Xg)
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(u, mean, color="#0072b2", label="posterior mean")
    ax.fill_between(u, mean - 2 * std, mean + 2 * std, alpha=0.25, color="#0072b2", label="mean ± 2 std")
    ok_mean, _ = post.predict(post.X_ok) if len(post.X_ok) else (np.zeros(0), None)
    ax.scatter(post.X_ok[:, j], ok_mean, c="black", s=16, label="trials (at their posterior mean)")
    _ticks(ax.set_xticks, space, j)
    ax.set_xlabel(space.free[j].name)
    ax.legend(fontsize=8)
    ax.set_title("GP posterior of the objective (other parameters at the champion's values)")
    return fig
