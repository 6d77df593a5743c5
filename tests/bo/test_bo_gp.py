"""GP math against closed forms, gradients, warping and the acquisition maximiser."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from donkeyrl.bo import SearchSpace, gp
from donkeyrl.bo.acquisition import kappa_schedule, maximize, point_keys, ucb
from donkeyrl.bo.warping import fit_output_transform, yeo_johnson, yeo_johnson_inverse

NO_CAT1 = np.zeros(1, dtype=bool)


def theta(ls: float, s2: float, noise: float, d: int = 1) -> np.ndarray:
    return np.array([math.log(ls)] * d + [math.log(s2), math.log(noise)])


def test_matern52_closed_form() -> None:
    k, dk = gp.matern52(np.array([0.0, 1.0, 4.0]))
    r = np.array([0.0, 1.0, 2.0])
    expect = (1 + math.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-math.sqrt(5) * r)
    assert np.allclose(k, expect)
    eps = 1e-7
    assert np.allclose(dk[1:], (gp.matern52(np.array([1.0, 4.0]) + eps)[0] - k[1:]) / eps, rtol=1e-5)


def test_single_observation_posterior_closed_form() -> None:
    x0, y0, ls, s2, noise = np.array([[0.3]]), np.array([1.7]), 0.4, 2.0, 0.1
    state = gp.condition(x0, y0, theta(ls, s2, noise), NO_CAT1)
    xs = np.array([[0.3], [0.5], [0.9]])
    r = np.abs(xs[:, 0] - 0.3) / ls
    k = s2 * (1 + math.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-math.sqrt(5) * r)
    mean, std = gp.predict(state, xs)
    assert np.allclose(mean, k / (s2 + noise) * y0[0])
    assert np.allclose(std**2, s2 - k**2 / (s2 + noise))


def test_noise_free_interpolation_and_shrinking_variance() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((12, 2))
    y = np.sin(6 * X[:, 0]) + X[:, 1]
    state = gp.condition(X, y, theta(0.3, 1.0, 1e-10, d=2), np.zeros(2, bool))
    mean, std = gp.predict(state, X)
    assert np.allclose(mean, y, atol=1e-4)
    assert np.all(std < 1e-3)
    prior_std = 1.0
    Xs = rng.random((200, 2))
    _, std_s = gp.predict(state, Xs)
    assert np.all(std_s <= prior_std + 1e-9)
    # Conditioning on more data never increases the variance anywhere.
    state_more = gp.condition(np.vstack([X, Xs[:5]]), np.concatenate([y, np.zeros(5)]),
                              state.theta, state.cat)
    assert np.all(gp.predict(state_more, Xs)[1] <= std_s + 1e-9)


def test_categorical_coordinates_compare_only_for_equality() -> None:
    cat = np.array([True])
    th = theta(0.7, 1.0, 1e-3)
    a, b, c = np.array([[1 / 6]]), np.array([[3 / 6]]), np.array([[5 / 6]])
    assert math.isclose(gp.kernel(a, b, th, cat)[0, 0], gp.kernel(a, c, th, cat)[0, 0])
    assert gp.kernel(a, a, th, cat)[0, 0] == pytest.approx(1.0)


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    X = rng.random((25, 3))
    cat = np.array([False, True, False])
    X[:, 1] = (np.floor(X[:, 1] * 3) + 0.5) / 3
    y = rng.standard_normal(25)
    extra = rng.random(25) * 0.05
    D = gp.pairwise_sq_dist(X, X, cat)
    th = np.array([-0.5, 0.2, 0.1, 0.3, -3.0])
    grad = gp.neg_log_posterior(th, D, y, extra)[1]
    num = approx_fprime(th, lambda t: gp.neg_log_posterior(t, D, y, extra)[0], 1e-6)
    assert np.allclose(grad, num, rtol=1e-4, atol=1e-4)


def test_fit_learns_noise_level_and_warm_start_agrees() -> None:
    rng = np.random.default_rng(2)
    X = rng.random((80, 1))
    f = np.sin(4 * X[:, 0])
    y_noisy = f + 0.3 * rng.standard_normal(80)
    z = (y_noisy - y_noisy.mean()) / y_noisy.std()
    th = gp.fit_theta(X, z, NO_CAT1)
    true_noise = (0.3 / y_noisy.std()) ** 2
    assert true_noise / 3 < math.exp(th[-1]) < true_noise * 3
    th_warm = gp.fit_theta(X, z, NO_CAT1, theta0=th)
    assert np.allclose(th_warm, th, atol=0.05)
    y_clean = (f - f.mean()) / f.std()
    assert math.exp(gp.fit_theta(X, y_clean, NO_CAT1)[-1]) < 1e-3


def test_cholesky_jitter_handles_duplicates() -> None:
    K = np.ones((3, 3))  # rank one: exact duplicate points without noise
    L = gp.cholesky_jitter(K)
    assert np.allclose(L @ L.T, K, atol=1e-6)


def test_yeo_johnson_inverse_and_transform_round_trip() -> None:
    s = np.linspace(-3, 5, 41)
    for lam in (0.0, 0.2, 1.0, 1.7, 2.0):
        assert np.allclose(yeo_johnson_inverse(yeo_johnson(s, lam), lam), s, atol=1e-9)
    y = np.random.default_rng(3).exponential(size=50) * 10 - 3
    tf = fit_output_transform(y, warp=True)
    assert tf.lam < 1.0  # right-skewed rewards are compressed at the top
    assert np.allclose(tf.inverse(tf.forward(y)), y)
    z = tf.forward(y)
    assert abs(z.mean()) < 1e-9 and abs(z.std() - 1) < 1e-9


def test_ucb_and_kappa_schedule() -> None:
    m, s = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.1, 3.0])
    for k1, k2 in [(0.0, 0.5), (0.5, 2.0), (2.0, 5.0)]:
        assert np.all(ucb(m, s, k1) <= ucb(m, s, k2))
    with pytest.raises(ValueError, match="kappa"):
        ucb(m, s, -1.0)
    ks = [kappa_schedule(t, 6) for t in (1, 10, 100)]
    assert ks == sorted(ks) and 1.0 < ks[1] < 3.0


def test_chosen_std_is_monotone_in_kappa() -> None:
    """On a fixed candidate set the UCB maximiser's std never decreases as kappa grows."""
    space = SearchSpace.from_dict({"a": {"type": "int", "low": 0, "high": 30},
                                   "b": {"type": "int", "low": 0, "high": 30}})
    rng = np.random.default_rng(4)
    X = space.snap(rng.random((10, 2)))
    y = -((X - 0.3) ** 2).sum(1)
    state = gp.condition(X, (y - y.mean()) / y.std(), theta(0.3, 1.0, 1e-4, d=2), np.zeros(2, bool))
    stds = []
    for kappa in (0.0, 0.5, 1.0, 2.0, 4.0, 8.0):
        best, _ = maximize(lambda Z, k=kappa: ucb(*gp.predict(state, Z), k), space, rng)
        stds.append(gp.predict(state, best[:1])[1][0])
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(stds))
    assert stds[-1] > stds[0]


def test_maximize_excludes_points_and_reports_exhaustion() -> None:
    space = SearchSpace.from_dict({"a": {"type": "int", "low": 1, "high": 3},
                                   "c": {"type": "categorical", "choices": ["x", "y"]}})
    grid = space.grid()
    assert len(grid) == 6
    rng = np.random.default_rng(5)
    X, S = maximize(lambda Z: Z.sum(1), space, rng, exclude=set(point_keys(grid[:4])))
    assert len(X) == 2 and set(point_keys(X)) == set(point_keys(grid[4:]))
    X, S = maximize(lambda Z: Z.sum(1), space, rng, exclude=set(point_keys(grid)))
    assert len(X) == 0


def test_maximize_local_refinement_finds_continuous_optimum() -> None:
    space = SearchSpace.from_dict({f"x{i}": {"type": "float", "low": 0.0, "high": 1.0}
                                   for i in range(4)})
    target = np.array([0.123, 0.877, 0.5, 0.31])
    X, S = maximize(lambda Z: -((Z - target) ** 2).sum(1), space, np.random.default_rng(6),
                    n_candidates=64)
    assert np.abs(X[0] - target).max() < 0.05
