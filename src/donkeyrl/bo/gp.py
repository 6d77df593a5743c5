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
log ls_j ~ Normal(log 0.5, 1) on the unit cube: functions that vary over about half of a
parameter's range, so that far from the data the mean reverts to the average instead of
extrapolating a linear trend into the corners (the dimension-scaled BoTorch prior, median 10 in
6-d, did exactly that with UCB on Hartmann-6 and the noisy mixed problem; see benchmarks/README),
log s2 ~ Normal(0, 1) (targets are standardised), log noise ~ Normal(log 0.01, 2.5)
(median noise 1% of the target variance, a factor 12 either way within one sd, so both
deterministic benchmarks and noisy RL rewards are reachable).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, cholesky, lapack, solve_triangular
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
LOG_LS_BOUNDS = (math.log(0.05), math.log(1e3))
LOG_S2_BOUNDS = (math.log(1e-3), math.log(1e2))
LOG_NOISE_BOUNDS = (math.log(1e-6), math.log(10.0))
LS_PRIOR = (math.log(0.5), 1.0)  # Normal(mean, sd) on each log length scale (unit cube)
NOISE_PRIOR = (math.log(1e-2), 2.5)  # Normal(mean, sd) on the log noise variance


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


def _inverse_from_cholesky(L: np.ndarray) -> np.ndarray:
    """(n, n) K^{-1} from the lower Cholesky factor of K (used only for gradient traces)."""
    low, info = lapack.dpotri(L, lower=1)  # lower triangle of K^{-1}; L's upper part is zero
    if info != 0:
        return cho_solve((L, True), np.eye(len(L)), check_finite=False)
    full = low + low.T
    full[np.diag_indices_from(full)] *= 0.5
    return full


def ls_prior(d: int) -> tuple[float, float]:
    """Mean and sd of the Normal prior on each log length scale in ``d`` dimensions."""
    return LS_PRIOR


def _log_prior(theta: np.ndarray, d: int) -> tuple[float, np.ndarray]:
    """log p(theta) up to a constant, and its gradient."""
    mu, sd = ls_prior(d)
    grad = np.zeros_like(theta)
    z = (theta[:d] - mu) / sd
    lp = -0.5 * float(z @ z)
    grad[:d] = -z / sd
    lp += -0.5 * theta[d] ** 2
    grad[d] = -theta[d]
    m, sn = NOISE_PRIOR
    zn = (theta[d + 1] - m) / sn
    lp += -0.5 * zn * zn
    grad[d + 1] = -zn / sn
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
    # The trace term of the gradient needs the entries of K^{-1}: LAPACK potri computes them
    # from the Cholesky factor (lower triangle only), cheaper than solving against I.
    Kinv = _inverse_from_cholesky(L)
    W = np.outer(alpha, alpha) - Kinv  # d nll / dK = -W / 2
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
    mu = ls_prior(d)[0]
    return np.concatenate([np.full(d, min(mu, math.log(2.0))), [0.0, math.log(1e-2)]])


def _bounds(d: int) -> list[tuple[float, float]]:
    return [LOG_LS_BOUNDS] * d + [LOG_S2_BOUNDS, LOG_NOISE_BOUNDS]


def fit_theta(
    X: np.ndarray,
    y: np.ndarray,
    cat: np.ndarray,
    extra: np.ndarray | None = None,
    theta0: np.ndarray | None = None,
    maxiter: int = 100,
    full_restart_max_n: int = 100,
) -> np.ndarray:
    """MAP hyperparameters by L-BFGS-B from ``theta0`` (warm start) and ``default_theta``.

    The warm start runs at most ``maxiter`` iterations. The cold start is always optimised too
    when ``n <= full_restart_max_n`` (cheap), and beyond that only if it already beats the warm
    result, so a bad previous fit cannot trap the model. The lower MAP objective wins.
    """
    n, d = X.shape
    extra = np.zeros(n) if extra is None else extra
    D = pairwise_sq_dist(X, X, cat)
    bounds = _bounds(d)
    lo, hi = np.array(bounds).T
    starts = [default_theta(d)]
    if theta0 is not None:
        starts.insert(0, np.clip(theta0, lo, hi))
    best_x, best_f = starts[0], math.inf
    for i, x0 in enumerate(starts):
        # large n: amortise; cold start only if better
        if i > 0 and n > full_restart_max_n and neg_log_posterior(x0, D, y, extra)[0] >= best_f:
            continue
        res = minimize(
            neg_log_posterior, x0, args=(D, y, extra), jac=True, method="L-BFGS-B",
            bounds=bounds, options={"maxiter": maxiter if i == 0 else 100},
        )
        if np.all(np.isfinite(res.x)) and res.fun < best_f:
            best_x, best_f = res.x, float(res.fun)
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
