"""GP-UCB optimizer: a thin stateful adapter over space.py, gp.py and acquisition.py.

Rules (the controller relies on them):

- Random phase: until ``n_initial`` usable (status "ok", finite value) observations exist,
  proposals are uniform random valid points. Prior results told before the first ``ask``
  (a warm-start file) count like any other observation.
- Failed trials: a trial told with ``status != "ok"`` or a value that is None, NaN or inf
  (warned about) is *failed*. It is never proposed again, and once a model exists it enters
  the GP as an observation at the worst successful value seen so far, so the neighbourhood of
  a crash or timeout looks bad and the optimizer stops proposing into a failing region.
  Failed trials never become the recommendation.
- Pending trials (running elsewhere) are hallucinated at the current posterior mean (GP-BUCB)
  with the current hyperparameters: the mean is unchanged, the uncertainty around them shrinks,
  so simultaneous proposals differ. Pending points are never proposed again either.
- Re-proposals: an already evaluated or pending point is proposed again only when a finite
  space is exhausted (with a warning).
- Hyperparameters: MAP fit warm-started from the previous one. A cold fit runs L-BFGS-B to
  convergence (at most 100 iterations); a warm refit after new data is capped at
  ``refit_iters`` iterations, so the optimisation is amortised over successive asks and a
  proposal stays fast at hundreds of observations.
- Convergence: with at least max(n_initial + 1, 5) usable observations, ``converged()`` is true
  when the gap between the best upper bound over the space (max of mean + 2 std over the
  candidates) and the best lower bound among evaluated points (max of mean - 2 std) is below
  the observation noise (learned noise plus the median known trial noise), all in reward units.
- Recommendation: the evaluated successful point with the highest posterior mean, which
  averages out lucky noisy trials, rather than the raw best value.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from . import gp
from .acquisition import kappa_schedule, maximize, point_keys, ucb
from .space import SearchSpace
from .warping import OutputTransform, fit_output_transform

__all__ = ["Optimizer", "Candidate", "Convergence", "Recommendation"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

try:  # single-threaded BLAS while the optimizer works (see _single_threaded_blas)
    from threadpoolctl import ThreadpoolController

    _THREADPOOLS: Any = ThreadpoolController()
except ImportError:  # pragma: no cover - optional at runtime, listed in the dependencies
    _THREADPOOLS = None


def _single_threaded_blas(fn: F) -> F:
    """Run ``fn`` with BLAS limited to one thread.

    The matrices here are at most a few hundred rows: multi-threaded OpenBLAS gains nothing
    and, on a 2-core machine shared with training processes, its spinning threads made a
    300-observation proposal take 0.6 s median and 5.7 s at the 90th percentile instead of
    about 50 ms (benchmarks/optimizer_latency.py with OPENBLAS_NUM_THREADS=2).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = (_THREADPOOLS.limit(limits=1, user_api="blas") if _THREADPOOLS is not None
               else contextlib.nullcontext())
        with ctx:
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


CONVERGENCE_KAPPA = 2.0
"""Width (in posterior standard deviations) of the bounds used by ``converged()``."""


@dataclass(frozen=True)
class Candidate:
    """A scored proposal candidate (reward units), for the controller's debug log."""

    params: dict[str, Any]
    mean: float
    """Posterior mean of the reward."""
    std: float
    """Posterior standard deviation of the reward."""
    ucb: float
    """Upper confidence bound (mean + kappa * std in model units, mapped to reward units)."""


@dataclass(frozen=True)
class Convergence:
    """Outcome of the convergence test (see the module docstring)."""

    converged: bool
    reason: str
    """Human-readable explanation with the numbers compared."""
    gap: float
    """Best upper bound minus best evaluated lower bound (reward units; NaN without model)."""
    noise: float
    """Observation noise standard deviation (reward units; NaN without model)."""


@dataclass(frozen=True)
class Recommendation:
    """The point the study would report as best."""

    params: dict[str, Any]
    mean: float
    """Posterior mean reward at the point (the observed mean before a model exists)."""
    std: float
    """Posterior standard deviation (NaN before a model exists)."""
    value: float
    """Mean of the raw values observed at the point."""


@dataclass
class _Trial:
    x: np.ndarray
    value: float | None
    noise: float | None
    ok: bool


@dataclass
class _Model:
    state: gp.GPState
    transform: OutputTransform
    ok: np.ndarray = field(repr=False)
    """(n,) True for rows that are successful observations (False: imputed failures)."""


def distinct_top(X: np.ndarray, k: int, min_dist: float = 0.1) -> np.ndarray:
    """Indices of up to ``k`` rows of ``X`` (sorted best first) at least ``min_dist`` apart.

    Why: local refinement leaves many near-copies of the best candidate at the top; the debug
    hook should show the distinct alternatives the acquisition weighed. Row 0 is always first;
    if too few rows are far enough apart, the next best rows fill the list (order stays best first).
    """
    chosen: list[int] = []
    for i in range(len(X)):
        if len(chosen) == k:
            break
        if all(np.linalg.norm(X[i] - X[j]) >= min_dist for j in chosen):
            chosen.append(i)
    for i in range(len(X)):
        if len(chosen) == k:
            break
        if i not in chosen:
            chosen.append(i)
    return np.array(sorted(chosen), dtype=int)  # X is sorted best first: keep that order


class Optimizer:
    """GP-UCB Bayesian optimizer over a ``SearchSpace``.

    Args:
        space: the search space (a ``SearchSpace`` or its ``from_dict`` form).
        kappa: fixed UCB exploration weight (>= 0), or None for the GP-UCB schedule of
            ``acquisition.kappa_schedule``.
        n_initial: usable observations needed before proposals come from the model (>= 1).
        seed: seed of the random phase and of the candidate generator.
        warp_outputs: Yeo-Johnson warp of the rewards before the GP (see warping.py).
        n_candidates: quasi-random candidates per proposal, before local refinement (scaled
            down beyond 150 observations, see ``_n_candidates``).
        refit_iters: L-BFGS-B iteration cap of warm hyperparameter refits.
        restart_every: also optimise the hyperparameters from the prior (cold) on every
            ``restart_every``-th fit while there are at most 100 observations.
    """

    def __init__(
        self,
        space: SearchSpace | Mapping[str, Any],
        kappa: float | None = 2.0,
        n_initial: int = 2,
        seed: int = 0,
        *,
        warp_outputs: bool = True,
        n_candidates: int = 1024,
        refit_iters: int = 10,
        restart_every: int = 5,
    ) -> None:
        self.space = space if isinstance(space, SearchSpace) else SearchSpace.from_dict(space)
        if kappa is not None and not (math.isfinite(kappa) and kappa >= 0):
            raise ValueError(f"kappa must be a finite number >= 0 or None, got {kappa!r}")
        if not isinstance(n_initial, int) or n_initial < 1:
            raise ValueError(f"n_initial must be an integer >= 1, got {n_initial!r}")
        self.kappa = kappa
        self.n_initial = n_initial
        self.warp_outputs = warp_outputs
        self.n_candidates = n_candidates
        self.refit_iters = refit_iters
        self.restart_every = restart_every
        self.rng = np.random.default_rng(seed)
        self.last_candidates: list[Candidate] = []
        """Top 5 candidates of the last model-based proposal (empty in the random phase)."""
        self._trials: list[_Trial] = []
        self._theta: np.ndarray | None = None
        self._model: _Model | None = None
        self._dirty = True
        self._n_fits = 0

    # --- observations -----------------------------------------------------------------------
    @property
    def n_observations(self) -> int:
        """Number of trials told (failed ones included)."""
        return len(self._trials)

    @property
    def n_usable(self) -> int:
        """Number of successful trials with a finite value."""
        return sum(t.ok for t in self._trials)

    def tell(self, params: Mapping[str, Any], value: float | None, *,
             noise: float | None = None, status: str = "ok") -> None:
        """Record a finished trial; raises SearchSpaceError if ``params`` is not in the space.

        ``noise`` is the known standard deviation of ``value`` (e.g. the standard error of the
        evaluation episodes); invalid noise values are ignored with a warning.
        """
        x = self.space.snap(self.space.encode(params))[0]
        ok = status == "ok" and value is not None
        if ok:
            try:
                value = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ValueError(f"value must be a number or None, got {value!r}") from None
            if not math.isfinite(value):
                log.warning("trial %s has non-finite value %r: treated as a failed trial",
                            params, value)
                ok = False
        if noise is not None and not (isinstance(noise, (int, float)) and math.isfinite(noise)
                                      and noise >= 0):
            log.warning("ignoring invalid noise %r for trial %s (need a finite number >= 0)",
                        noise, params)
            noise = None
        self._trials.append(_Trial(x, value if ok else None, noise, ok))
        self._dirty = True

    # --- model --------------------------------------------------------------------------------
    def _fit(self) -> _Model | None:
        """The GP over all trials (failures imputed), or None in the random phase."""
        if not self._dirty:
            return self._model
        self._dirty = False
        ok = [t for t in self._trials if t.ok]
        if len(ok) < self.n_initial or self.space.dim == 0:
            self._model = None
            return None
        y_ok = np.array([t.value for t in ok])
        tf = fit_output_transform(y_ok, warp=self.warp_outputs)
        worst = float(y_ok.min())
        trials = ok + [t for t in self._trials if not t.ok]
        X = np.array([t.x for t in trials])
        y_raw = np.array([t.value if t.ok else worst for t in trials])
        z = tf.forward(y_raw)
        known = np.array([t.noise if (t.ok and t.noise is not None) else 0.0 for t in trials])
        extra = tf.noise_forward(y_raw, known)
        cold = self._theta is None or len(self._theta) != self.space.dim + 2
        restart = self._n_fits % self.restart_every == 0
        self._theta = gp.fit_theta(X, z, self.space.is_categorical, extra,
                                   theta0=None if cold else self._theta,
                                   maxiter=100 if cold else self.refit_iters,
                                   full_restart_max_n=100 if restart else 0)
        self._n_fits += 1
        state = gp.condition(X, z, self._theta, self.space.is_categorical, extra)
        self._model = _Model(state, tf, np.arange(len(trials)) < len(ok))
        log.debug("GP fit on %d points: theta=%s", len(trials), np.round(self._theta, 3))
        return self._model

    def _exclude(self, X_pending: np.ndarray) -> set[bytes]:
        X = np.array([t.x for t in self._trials], dtype=float).reshape(-1, self.space.dim)
        return set(point_keys(X)) | set(point_keys(X_pending)) if len(X) + len(X_pending) else set()

    def _n_candidates(self, n_obs: int) -> int:
        """Quasi-random candidates for a model on ``n_obs`` points: ``n_candidates`` up to 150
        observations, then fewer (at least 256) so the O(n^2) cost per candidate keeps a
        proposal fast; the local refinement around the best candidates is unchanged."""
        return max(256, min(self.n_candidates, self.n_candidates * 150 // max(n_obs, 1)))

    def _kappa(self, n_pending: int) -> float:
        if self.kappa is not None:
            return self.kappa
        return kappa_schedule(self.n_usable + n_pending + 1, self.space.dim)

    # --- proposals ----------------------------------------------------------------------------
    def ask(self, pending: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """One proposal; ``pending`` are the params of trials still running."""
        return self.ask_batch(1, pending)[0]

    @_single_threaded_blas
    def ask_batch(self, n: int, pending: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
        """``n`` distinct proposals for parallel workers (GP-BUCB over ``pending`` + earlier ones)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n!r}")
        d = self.space.dim
        Xp = self.space.snap(np.array([self.space.encode(p) for p in pending],
                                      dtype=float).reshape(len(pending), d))
        if d == 0:  # every parameter fixed: there is only one point
            return [self.space.decode(np.zeros(0)) for _ in range(n)]
        exclude = self._exclude(Xp)
        model = self._fit()
        out: list[dict[str, Any]] = []
        for _ in range(n):
            x = self._random(exclude) if model is None else self._propose(model, Xp, exclude)
            exclude |= set(point_keys(x[None, :]))
            Xp = np.vstack([Xp, x[None, :]])
            out.append(self.space.decode(x))
        if model is None:
            self.last_candidates = []
        return out

    def _random(self, exclude: set[bytes]) -> np.ndarray:
        for _ in range(1000):
            x = self.space.snap(self.rng.random((1, self.space.dim)))[0]
            if point_keys(x[None, :])[0] not in exclude:
                return x
        log.warning("random proposal: no unevaluated point found (space exhausted?); "
                    "re-proposing an evaluated point")
        return x

    def _propose(self, model: _Model, Xp: np.ndarray, exclude: set[bytes]) -> np.ndarray:
        state = model.state
        if len(Xp):  # GP-BUCB: hallucinate pending trials at the posterior mean
            mu_p, _ = gp.predict(state, Xp)
            state = gp.condition(np.vstack([state.X, Xp]), np.concatenate([state.y, mu_p]),
                                 state.theta, state.cat, np.concatenate([state.extra,
                                                                         np.zeros(len(Xp))]))
        kappa = self._kappa(len(Xp))

        def score(X: np.ndarray) -> np.ndarray:
            m, s = gp.predict(state, X)
            return ucb(m, s, kappa)

        incumbents = state.X[np.argsort(state.y)[::-1][:3]]
        n_cand = self._n_candidates(len(state.y))
        X, S = maximize(score, self.space, self.rng, exclude, incumbents, n_cand)
        if len(X) == 0:
            log.warning("search space exhausted (%d points): re-proposing an evaluated point",
                        int(self.space.size))
            X, S = maximize(score, self.space, self.rng, set(), incumbents, n_cand)
        pick = distinct_top(X, 5)
        top = X[pick]
        m, s = gp.predict(state, top)
        tf = model.transform
        self.last_candidates = [
            Candidate(self.space.decode(x), float(tf.inverse(mi)), float(tf.std_inverse(mi, si)),
                      float(tf.inverse(ui)))
            for x, mi, si, ui in zip(top, m, s, S[pick])
        ]
        return X[0]

    # --- reporting ----------------------------------------------------------------------------
    @_single_threaded_blas
    def recommend(self) -> Recommendation | None:
        """Best evaluated successful point by posterior mean (None if no successful trial)."""
        ok = [t for t in self._trials if t.ok]
        if not ok:
            return None
        keys = point_keys(np.array([t.x for t in ok]))
        groups: dict[bytes, list[_Trial]] = {}
        for k, t in zip(keys, ok):
            groups.setdefault(k, []).append(t)
        pts = [g[0].x for g in groups.values()]
        vals = np.array([np.mean([t.value for t in g]) for g in groups.values()])
        model = self._fit()
        if model is None:
            i = int(np.argmax(vals))
            return Recommendation(self.space.decode(pts[i]), float(vals[i]), math.nan,
                                  float(vals[i]))
        m, s = gp.predict(model.state, np.array(pts))
        i = int(np.argmax(m))
        tf = model.transform
        return Recommendation(self.space.decode(pts[i]), float(tf.inverse(m[i])),
                              float(tf.std_inverse(m[i], s[i])), float(vals[i]))

    @_single_threaded_blas
    def converged(self) -> Convergence:
        """Convergence test (see the module docstring); never raises for lack of data."""
        need = max(self.n_initial + 1, 5)
        model = self._fit()
        if self.n_usable < need or model is None:
            return Convergence(False, f"{self.n_usable} usable observations, need {need}",
                               math.nan, math.nan)
        state, tf = model.state, model.transform

        def score(X: np.ndarray) -> np.ndarray:
            m, s = gp.predict(state, X)
            return m + CONVERGENCE_KAPPA * s

        X_ok = state.X[model.ok]
        rng = np.random.default_rng(len(self._trials))  # own stream: proposals stay reproducible
        _, S = maximize(score, self.space, rng, set(), X_ok, self._n_candidates(len(state.y)))
        m, s = gp.predict(state, X_ok)
        lcb = m - CONVERGENCE_KAPPA * s
        i = int(np.argmax(lcb))
        gap = float(tf.inverse(max(S[0], lcb[i])) - tf.inverse(lcb[i]))
        known = np.array([t.noise for t in self._trials if t.ok and t.noise is not None])
        noise_var = state.noise + (float(np.median(tf.noise_forward(
            np.array([t.value for t in self._trials if t.ok and t.noise is not None]), known)))
            if len(known) else 0.0)
        noise = float(tf.std_inverse(m[i], math.sqrt(noise_var)))
        if gap < noise:
            return Convergence(True, f"UCB-LCB gap {gap:.4g} < noise {noise:.4g}", gap, noise)
        return Convergence(False, f"UCB-LCB gap {gap:.4g} >= noise {noise:.4g}", gap, noise)
