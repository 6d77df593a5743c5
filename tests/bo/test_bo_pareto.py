"""Pareto front and Chebyshev scalarisation against hand-checked cases."""

from __future__ import annotations

import numpy as np

from donkeyrl.bo import pareto


def test_front_of_a_hand_made_set():
    F = np.array([[1.0, 5.0], [2.0, 2.0], [3.0, 3.0], [5.0, 1.0], [2.0, 2.0], [4.0, 0.9]])
    # (3,3) is dominated by (2,2); (5,1) by (4,0.9); both (2,2) copies stay
    assert pareto.pareto_front(F).tolist() == [0, 1, 4, 5]
    assert pareto.dominates([1, 1], [1, 2]) and not pareto.dominates([1, 2], [1, 2])


def test_chebyshev_minimum_moves_along_the_front_with_the_weights():
    t = np.linspace(0, np.pi / 2, 50)
    F = np.stack([np.cos(t), np.sin(t)], axis=1)  # a non-convex (concave-to-origin) front
    picks = {int(np.argmin(pareto.chebyshev(F, np.array([w, 1 - w])))) for w in np.linspace(0.05, 0.95, 7)}
    assert len(picks) >= 5  # a weighted sum would only ever pick the two ends of this front
    ws = np.array([np.argmin(F @ np.array([w, 1 - w])) for w in np.linspace(0.05, 0.95, 7)])
    assert set(ws.tolist()) <= {0, 49}


def test_random_weights_lie_on_the_simplex():
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = pareto.random_weights(rng, 2)
        assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
