"""Gaussian-process regression as pure functions over numpy arrays.

Notation (shapes in brackets):

    n           number of training points;  m  number of query points;  d  input dimension
    X  (n, d)   training inputs in the unit cube (discrete coordinates snapped, see space.py)
    y  (n,)     training targets, standardised (and optionally warped, see warping.py)
    cat (d,)    True for categorical coordinates: they contribute [x_j != x'_j] instead of
                (x_j - x'_j)^2 to the squared distance (a Hamming term; with one-hot embedding
                it is a Euclidean distance, so the kernel stays positive definite)
    ls (d,)     length scales; s2 signal variance; noise learned noise variance
    theta (d+2,) = [log ls, log s2, log noise]: the free hyperparameters
    extra (n,)  known per-point noise variance (standardised units), e.g. the squared
                standard error of a trial's evaluation episodes; added to noise
    r2 (m, n)   sum_j D_j / ls_j^2 with D_j the per-coordinate squared (or Hamming) distance
    k(r2)       Matern-5/2: s2 (1 + sqrt(5 r2) + 5 r2 / 3) exp(-sqrt(5 r2))
    K  (n, n)   k(X, X) + diag(noise + extra);  L (n, n) lower Cholesky factor of K
    alpha (n,)  K^{-1} y by two triangular solves (never an explicit inverse for prediction)

Hyperparameters are the MAP estimate: minimise -log p(y | theta) - log p(theta) with L-BFGS-B
and the analytic gradient, warm-started from the previous fit. Priors (on the log parameters):
log ls_j ~ Normal(sqrt(2) + log(d) / 2, sqrt(3)) (dimension-scaled, Hvarfner et al. 2024, as in
BoTorch), log s2 ~ Normal(0, 1) (targets are standardised), noise ~ Gamma(1.1, 0.05).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize

__all__ = [
    "GPState",
    "pairwise_sq_dist",
    "matern52",
    "kernel",
    "cholesky_jitter",
    "neg_log_posterior",
    "default_theta",
    "fit_theta",
    "condition",
    "predict",
]

log = logging.getLogger(__name__)

SQRT5 = math.sqrt(5.0)
LOG_LS_BOUNDS = (math.log(1e-3), math.log(1e3))
LOG_S2_BOUNDS = (math.log(1e-3), math.log(1e2))
LOG_NOISE_BOUNDS = (math.log(1e-6), math.log(10.0))
NOISE_PRIOR = (1.1, 0.05)  # Gamma(concentration, rate) on the noise variance


@dataclass(frozen=True)
class GPState:
    """A conditioned GP: everything ``predict`` needs."""

    X: np.ndarray
    """(n, d) training inputs."""
    theta: np.ndarray
    """(d+2,) log hyperparameters [log ls, log s2, log noise]."""
    cat: np.ndarray
    """(d,) categorical mask."""
    L: np.ndarray
    """(n, n) lower Cholesky factor of K."""
    alpha: np.ndarray
    """(n,) K^{-1} y."""
    y: np.ndarray
    """(n,) targets the state was conditioned on."""
    extra: np.ndarray
    """(n,) known per-point noise variance."""

    @property
    def noise(self) -> float:
        """Learned noise variance (standardised units)."""
        return float(math.exp(self.theta[-1]))


def pairwise_sq_dist(X1: np.ndarray, X2: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """(d, m, n) per-coordinate squared distance (Hamming 0/1 for categorical coordinates)."""
    diff = X1.T[:, :, None] - X2.T[:, None, :]
    D = diff * diff
    if np.any(cat):
        D[cat] = (diff[cat] != 0.0).astype(float)
    return D


def _r2(X1: np.ndarray, X2: np.ndarray, ls: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """(m, n) scaled squared distance, via the Gram trick on continuous coordinates."""
    cont = ~cat
    A, B = X1[:, cont] / ls[cont], X2[:, cont] / ls[cont]
    r2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    np.maximum(r2, 0.0, out=r2)
    for j in np.flatnonzero(cat):
        r2 += (X1[:, j][:, None] != X2[:, j][None, :]) / ls[j] ** 2
    return r2


def matern52(r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance Matern-5/2 value and its derivative with respect to r2."""
    r = np.sqrt(r2)
    e = np.exp(-SQRT5 * r)
    return (1.0 + SQRT5 * r + (5.0 / 3.0) * r2) * e, -(5.0 / 6.0) * (1.0 + SQRT5 * r) * e


def kernel(X1: np.ndarray, X2: np.ndarray, theta: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """(m, n) noise-free covariance k(X1, X2)."""
    d = X1.shape[1]
    ls, s2 = np.exp(theta[:d]), math.exp(theta[d])
    return s2 * matern52(_r2(X1, X2, ls, cat))[0]


def cholesky_jitter(K: np.ndarray, max_tries: int = 6) -> np.ndarray:
    """Lower Cholesky factor of K, adding growing diagonal jitter if K is not numerically PD."""
    try:
        return cholesky(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        pass
    jitter = 1e-9 * max(float(np.mean(np.diag(K))), 1e-12)
    for _ in range(max_tries):
        try:
            L = cholesky(K + jitter * np.eye(len(K)), lower=True, check_finite=False)
            log.debug("Cholesky needed jitter %.1e", jitter)
            return L
        except np.linalg.LinAlgError:
            jitter *= 100.0
    raise np.linalg.LinAlgError(f"covariance not positive definite even with jitter {jitter:.1e}")


def _log_prior(theta: np.ndarray, d: int) -> tuple[float, np.ndarray]:
    """log p(theta) up to a constant, and its gradient."""
    mu, sd = math.sqrt(2.0) + 0.5 * math.log(max(d, 1)), math.sqrt(3.0)
    grad = np.zeros_like(theta)
    z = (theta[:d] - mu) / sd
    lp = -0.5 * float(z @ z)
    grad[:d] = -z / sd
    lp += -0.5 * theta[d] ** 2
    grad[d] = -theta[d]
    a, b = NOISE_PRIOR  # Gamma density of noise, times the Jacobian noise of the log map
    noise = math.exp(theta[d + 1])
    lp += a * theta[d + 1] - b * noise
    grad[d + 1] = a - b * noise
    return lp, grad


def neg_log_posterior(
    theta: np.ndarray, D: np.ndarray, y: np.ndarray, extra: np.ndarray
) -> tuple[float, np.ndarray]:
    """-log p(y | theta) - log p(theta) (up to a constant) and its gradient.

    ``D`` (d, n, n) is ``pairwise_sq_dist(X, X, cat)``, computed once per fit.
    """
    d, n = D.shape[0], len(y)
    ls2, s2, noise = np.exp(2.0 * theta[:d]), math.exp(theta[d]), math.exp(theta[d + 1])
    r2 = np.tensordot(1.0 / ls2, D, axes=1)
    k, dk = matern52(r2)
    Kf = s2 * k
    K = Kf + np.diag(noise + extra)
    try:
        L = cholesky_jitter(K)
    except np.linalg.LinAlgError:
        return 1e10, np.zeros_like(theta)
    alpha = cho_solve((L, True), y, check_finite=False)
    nll = 0.5 * float(y @ alpha) + float(np.log(np.diag(L)).sum()) + 0.5 * n * math.log(2 * math.pi)
    Linv = solve_triangular(L, np.eye(n), lower=True, check_finite=False)
    W = np.outer(alpha, alpha) - Linv.T @ Linv  # d nll / dK = -W / 2
    grad = np.empty_like(theta)
    Wdk = W * dk
    # dK/dlog ls_j = s2 * dk * (-2 D_j / ls_j^2)
    grad[:d] = -0.5 * s2 * (-2.0 / ls2) * (D.reshape(d, -1) @ Wdk.reshape(-1))
    grad[d] = -0.5 * float((W * Kf).sum())
    grad[d + 1] = -0.5 * noise * float(np.trace(W))
    lp, glp = _log_prior(theta, d)
    return nll - lp, grad - glp


def default_theta(d: int) -> np.ndarray:
    """Cold-start hyperparameters: prior median length scales, unit signal, small noise."""
    mu = math.sqrt(2.0) + 0.5 * math.log(max(d, 1))
    return np.concatenate([np.full(d, min(mu, math.log(2.0))), [0.0, math.log(1e-2)]])


def _bounds(d: int) -> list[tuple[float, float]]:
    return [LOG_LS_BOUNDS] * d + [LOG_S2_BOUNDS, LOG_NOISE_BOUNDS]


def fit_theta(
    X: np.ndarray,
    y: np.ndarray,
    cat: np.ndarray,
    extra: np.ndarray | None = None,
    theta0: np.ndarray | None = None,
    maxiter: int = 60,
) -> np.ndarray:
    """MAP hyperparameters by L-BFGS-B from ``theta0`` (warm start) or ``default_theta``.

    With a warm start, the cold start is also tried when the warm one ends worse than the
    cold start's value, so a bad previous fit cannot trap the model.
    """
    n, d = X.shape
    extra = np.zeros(n) if extra is None else extra
    D = pairwise_sq_dist(X, X, cat)
    bounds = _bounds(d)
    starts = [default_theta(d)] if theta0 is None else [np.clip(theta0, *np.array(bounds).T)]
    best_x, best_f = starts[0], math.inf
    for x0 in starts:
        res = minimize(
            neg_log_posterior, x0, args=(D, y, extra), jac=True, method="L-BFGS-B",
            bounds=bounds, options={"maxiter": maxiter},
        )
        if np.all(np.isfinite(res.x)) and res.fun < best_f:
            best_x, best_f = res.x, float(res.fun)
    if theta0 is not None:
        cold = default_theta(d)
        f_cold = neg_log_posterior(cold, D, y, extra)[0]
        if f_cold < best_f:
            res = minimize(neg_log_posterior, cold, args=(D, y, extra), jac=True,
                           method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter})
            if res.fun < best_f:
                best_x = res.x
    return np.asarray(best_x, dtype=float)


def condition(
    X: np.ndarray, y: np.ndarray, theta: np.ndarray, cat: np.ndarray,
    extra: np.ndarray | None = None,
) -> GPState:
    """Condition the GP with hyperparameters ``theta`` on (X, y)."""
    extra = np.zeros(len(y)) if extra is None else np.asarray(extra, dtype=float)
    K = kernel(X, X, theta, cat) + np.diag(math.exp(theta[-1]) + extra)
    L = cholesky_jitter(K)
    alpha = cho_solve((L, True), y, check_finite=False)
    return GPState(X=X, theta=theta, cat=cat, L=L, alpha=alpha, y=y, extra=extra)


def predict(state: GPState, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m,) posterior mean and standard deviation of the latent function at ``Xs`` (m, d)."""
    Ks = kernel(Xs, state.X, state.theta, state.cat)
    mean = Ks @ state.alpha
    V = solve_triangular(state.L, Ks.T, lower=True, check_finite=False)
    var = math.exp(state.theta[len(state.cat)]) - np.einsum("ij,ij->j", V, V)
    return mean, np.sqrt(np.maximum(var, 1e-12))
