"""Two-objective search: the Pareto front and ParEGO's random Chebyshev scalarisation.

Why ParEGO (Knowles 2006): the GP models one scalar. Drawing a new weight vector for every
proposal and scalarising every observation with it (augmented Chebyshev, which, unlike a weighted
sum, can reach non-convex parts of the front) lets the same GP+UCB optimizer spread its proposals
along the whole front instead of collapsing onto one trade-off. Pure numpy; every objective is
minimised.

Notation (n points, m objectives):
    F      (n, m)  objective values, lower is better
    Z      (n, m)  F normalised to [0, 1] per objective over the points seen
    w      (m,)    weights, w >= 0, sum(w) = 1
    s      (n,)    scalarised values: max_j(w_j Z_ij) + rho * sum_j(w_j Z_ij), lower is better
"""

from __future__ import annotations

import numpy as np

__all__ = ["dominates", "pareto_front", "normalise", "chebyshev", "random_weights"]

#: Weight of the linear term of the augmented Chebyshev function (ParEGO's value).
RHO = 0.05


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """True when ``a`` is no worse than ``b`` in every objective and better in one."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return bool(np.all(a <= b) and np.any(a < b))


def pareto_front(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``F`` (n, m), in input order; duplicates all kept."""
    F = np.asarray(F, dtype=float)
    if F.ndim != 2:
        raise ValueError(f"F must be (n, m), got shape {F.shape}")
    keep = [i for i in range(len(F))
            if not any(dominates(F[j], F[i]) for j in range(len(F)) if j != i)]
    return np.array(keep, dtype=int)


def normalise(F: np.ndarray) -> np.ndarray:
    """``F`` scaled to [0, 1] per column (a constant column becomes 0)."""
    F = np.asarray(F, dtype=float)
    lo, hi = F.min(axis=0), F.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (F - lo) / span


def chebyshev(F: np.ndarray, w: np.ndarray, rho: float = RHO) -> np.ndarray:
    """Augmented Chebyshev scalarisation of the normalised objectives (lower is better)."""
    Z = normalise(F)
    wz = Z * np.asarray(w, dtype=float)[None, :]
    return wz.max(axis=1) + rho * wz.sum(axis=1)


def random_weights(rng: np.random.Generator, m: int = 2) -> np.ndarray:
    """A weight vector drawn uniformly from the simplex."""
    w = rng.exponential(size=m)
    return w / w.sum()
