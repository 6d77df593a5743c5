"""UCB acquisition and its maximisation over valid points of a search space.

UCB(x) = mean(x) + kappa * std(x) in model units (standardised, warped rewards).

kappa is either fixed (``--explore``) or the GP-UCB schedule ``kappa_t = sqrt(beta_t)``,
``beta_t = 2 log(d t^2 pi^2 / (6 delta)) / 5`` with ``delta = 0.1`` and ``t`` the number of the
proposal (usable observations + pending + 1). It is the practical scaling of Srinivas et al.
(2010): about 1.4 for the first proposal in 6 dimensions, 1.9 at t = 10, 2.3 at t = 100, so
exploration never stops entirely in a noisy problem.

Maximisation: scrambled Sobol candidates (or every point, when a finite space is small enough),
plus the caller's extra starting points (e.g. the incumbents), snapped to the grid; then a
batched local search around the best few: Gaussian steps in the continuous coordinates of
shrinking size, and moves to other levels for discrete ones, keeping each start's best point.
Candidates equal to an excluded (already evaluated or pending) point are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Set

import numpy as np
from scipy.stats import qmc

from .space import SearchSpace

__all__ = ["ucb", "kappa_schedule", "point_keys", "maximize"]

ScoreFn = Callable[[np.ndarray], np.ndarray]

EXHAUSTIVE_MAX = 4096
"""Finite spaces with at most this many points are searched exhaustively."""
LOCAL_STEPS = (0.1, 0.03, 0.01)
"""Gaussian step sizes (unit-cube units) of the local search rounds."""


def ucb(mean: np.ndarray, std: np.ndarray, kappa: float) -> np.ndarray:
    """Upper confidence bound mean + kappa * std (kappa >= 0)."""
    if not kappa >= 0:
        raise ValueError(f"kappa must be >= 0, got {kappa!r}")
    return np.asarray(mean) + kappa * np.asarray(std)


def kappa_schedule(t: int, d: int, delta: float = 0.1) -> float:
    """GP-UCB exploration weight for proposal number ``t`` (1-based) in ``d`` dimensions."""
    beta = 2.0 * math.log(max(d, 1) * max(t, 1) ** 2 * math.pi**2 / (6.0 * delta)) / 5.0
    return math.sqrt(max(beta, 0.0))


def point_keys(X: np.ndarray) -> list[bytes]:
    """Hashable identity of snapped points (rounded so float noise cannot split a point)."""
    R = np.round(np.asarray(X, dtype=float), 9) + 0.0  # + 0.0 turns -0.0 into 0.0
    return [row.tobytes() for row in np.atleast_2d(R)]


def _initial(space: SearchSpace, rng: np.random.Generator, n: int) -> np.ndarray:
    if math.isfinite(space.size) and space.size <= EXHAUSTIVE_MAX:
        return space.grid()
    m = max(int(math.ceil(math.log2(max(n, 2)))), 1)
    sob = qmc.Sobol(space.dim, scramble=True, seed=rng).random_base2(m)
    return space.snap(sob)


def _perturb(space: SearchSpace, X0: np.ndarray, step: float, n: int,
             rng: np.random.Generator) -> np.ndarray:
    """(k * n, d): ``n`` neighbours of each row of ``X0`` (k, d), grouped by start; each
    coordinate moves with probability max(1/d, 0.3), at least one always does."""
    d = space.dim
    X = np.repeat(X0, n, axis=0)
    m = len(X)
    move = rng.random((m, d)) < max(1.0 / d, 0.3)
    move[np.arange(m), rng.integers(0, d, m)] = True
    cont = space.n_levels == 0
    X[:, cont] += move[:, cont] * rng.normal(0.0, step, (m, int(cont.sum())))
    for j in np.flatnonzero(~cont):
        k = int(space.n_levels[j])
        rows = np.flatnonzero(move[:, j])
        if space.is_categorical[j]:
            X[rows, j] = (rng.integers(0, k, len(rows)) + 0.5) / k
        else:  # ordinal: +-1 level, or a jump proportional to the step size
            jump = np.maximum(1, np.round(np.abs(rng.normal(0, step * k, len(rows)))))
            X[rows, j] += np.where(rng.random(len(rows)) < 0.5, -1, 1) * jump / k
    return space.snap(X)


def maximize(
    score: ScoreFn,
    space: SearchSpace,
    rng: np.random.Generator,
    exclude: Set[bytes] = frozenset(),
    extra_starts: np.ndarray | None = None,
    n_candidates: int = 1024,
    n_local: int = 5,
    n_perturb: int = 32,
    n_top: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_top`` best distinct valid points by decreasing ``score``, excluding
    ``exclude``; (m, d) and (m,) with m <= n_top.

    Returns empty arrays when every candidate is excluded (e.g. an exhausted finite space).
    """
    X = _initial(space, rng, n_candidates)
    if extra_starts is not None and len(extra_starts):
        X = np.vstack([X, space.snap(extra_starts)])
    blocks: list[np.ndarray] = []  # scored candidate rows, in blocks
    scores: list[np.ndarray] = []

    def add(Xn: np.ndarray) -> np.ndarray:
        """Score the rows of ``Xn`` that are not excluded; return their global indices."""
        keep = np.array([k not in exclude for k in point_keys(Xn)], dtype=bool) if exclude \
            else np.ones(len(Xn), dtype=bool)
        offset = sum(len(b) for b in blocks)
        where = np.full(len(Xn), -1)
        where[keep] = offset + np.arange(int(keep.sum()))
        if keep.any():
            blocks.append(Xn[keep])
            scores.append(np.asarray(score(Xn[keep]), dtype=float))
        return where

    if np.all(add(X) < 0):
        return np.zeros((0, space.dim)), np.zeros(0)
    exhaustive = math.isfinite(space.size) and space.size <= EXHAUSTIVE_MAX
    if not exhaustive and n_local > 0:
        S = np.concatenate(scores)
        best = [int(i) for i in np.argsort(S)[::-1][:n_local]]
        best_x, best_s = [blocks[0][i] for i in best], [S[i] for i in best]
        for step in LOCAL_STEPS:  # hill climb: each start moves to its best neighbour
            props = _perturb(space, np.asarray(best_x), step, n_perturb, rng)
            where = add(props).reshape(len(best_x), n_perturb)
            if not np.any(where >= 0):
                continue
            s_new = np.full(where.shape, -np.inf)
            s_new[where >= 0] = scores[-1]
            props = props.reshape(len(best_x), n_perturb, -1)
            for j in range(len(best_x)):
                i = int(np.argmax(s_new[j]))
                if s_new[j, i] > best_s[j]:
                    best_x[j], best_s[j] = props[j, i], s_new[j, i]
    X_all, S = np.vstack(blocks), np.concatenate(scores)
    # The best n_top distinct points, best first (the local search can repeat points).
    order = np.argsort(S)[::-1]
    seen: set[bytes] = set()
    keep: list[int] = []
    for start in range(0, len(order), 256):  # chunks: usually only the first is needed
        chunk = order[start:start + 256]
        for i, k in zip(chunk, point_keys(X_all[chunk])):
            if k not in seen:
                seen.add(k)
                keep.append(int(i))
        if len(keep) >= n_top:
            break
    top = np.asarray(keep[:n_top], dtype=int)
    return X_all[top], S[top]
