"""Optimizer behaviour: random phase, proposals, batches, failures, degenerate inputs, reports."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from donkeyrl.bo import Candidate, Convergence, Optimizer, Recommendation, SearchSpace

TC002 = {
    "n_steer": {"type": "int", "low": 3, "high": 9},
    "n_throttle": {"type": "int", "low": 2, "high": 5},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "agent": {"type": "categorical", "choices": ["ppo", "dqn"]},
    "gamma": {"type": "fixed", "value": 0.99},
}


def tc002_reward(p: dict) -> float:
    """Optimum at n_steer 7-8 and learning_rate 0.002 (inside [6, 9] x [0.001, 0.004])."""
    return (3.0 * math.exp(-(((math.log10(p["learning_rate"]) + 2.7) / 0.35) ** 2))
            - 0.15 * (p["n_steer"] - 7.5) ** 2 - 0.1 * (p["n_throttle"] - 3) ** 2
            + (0.3 if p["agent"] == "ppo" else 0.0))


def in_region(p: dict) -> bool:
    return 6 <= p["n_steer"] <= 9 and 0.001 <= p["learning_rate"] <= 0.004


def test_first_proposals_are_random_then_model_based() -> None:
    space = SearchSpace.from_dict(TC002)
    firsts = []
    for seed in range(4):
        opt = Optimizer(space, n_initial=3, seed=seed)
        seen = []
        for _ in range(3):
            p = opt.ask()
            assert opt.last_candidates == []  # random phase: no model, no candidates
            seen.append(p)
            opt.tell(p, tc002_reward(p))
        firsts.append(seen[0])
        assert len({repr(p) for p in seen}) == 3
        opt.ask()
        assert len(opt.last_candidates) == 5  # model-based from n_initial observations on
        assert all(isinstance(c, Candidate) for c in opt.last_candidates)
        ucbs = [c.ucb for c in opt.last_candidates]
        assert ucbs == sorted(ucbs, reverse=True)
    assert len({repr(p) for p in firsts}) == 4  # the random phase depends on the seed
    again = Optimizer(space, n_initial=3, seed=0).ask()
    assert again == firsts[0]  # and is reproducible


def test_failed_trials_do_not_count_towards_random_phase() -> None:
    opt = Optimizer(SearchSpace.from_dict(TC002), n_initial=2, seed=0)
    for p in opt.ask_batch(3):
        opt.tell(p, None, status="timeout")
    opt.ask()
    assert opt.last_candidates == [] and opt.n_usable == 0 and opt.n_observations == 3
    assert opt.recommend() is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tc002_proposal_lands_in_high_reward_region(seed: int) -> None:
    space = SearchSpace.from_dict(TC002)
    rng = np.random.default_rng(100 + seed)
    opt = Optimizer(space, seed=seed)
    # Synthetic history: broad random trials plus trials concentrated near the good region.
    history = space.sample(rng, 15)
    for _ in range(10):
        p = space.sample(rng, 1)[0]
        p.update(n_steer=int(rng.integers(6, 10)),
                 learning_rate=float(10 ** rng.uniform(-3.0, -2.4)))
        history.append(p)
    for p in history:
        opt.tell(p, tc002_reward(p) + 0.05 * rng.standard_normal())
    proposal = opt.ask()
    assert in_region(proposal), proposal
    rec = opt.recommend()
    assert isinstance(rec, Recommendation) and in_region(rec.params)
    assert rec.mean > 2.0 and rec.std > 0


def test_optimizer_finds_the_narrow_optimum_in_most_runs() -> None:
    """The learning-rate peak covers about 12% of its log range; random search finds a reward
    above 2.5 in 20 trials in well under half of the runs, the optimizer in most of them (a run
    that locks onto the learning-rate boundary early is a known GP-UCB failure mode)."""
    space = SearchSpace.from_dict(TC002)
    found = 0
    for seed in range(5):
        opt = Optimizer(space, seed=seed)
        best = -math.inf
        for _ in range(20):
            p = opt.ask()
            best = max(best, tc002_reward(p))
            opt.tell(p, tc002_reward(p))
        if best > 2.5:
            found += 1
            assert in_region(opt.recommend().params)
    assert found >= 4


def test_batch_proposals_differ_and_avoid_pending() -> None:
    space = SearchSpace.from_dict(TC002)
    opt = Optimizer(space, seed=0)
    rng = np.random.default_rng(0)
    for p in space.sample(rng, 8):
        opt.tell(p, tc002_reward(p))
    batch = opt.ask_batch(4)
    assert len({repr(p) for p in batch}) == 4
    nxt = opt.ask(pending=batch)
    assert all(nxt != p for p in batch)
    # Pending points only shrink uncertainty (GP-BUCB): the model itself is unchanged.
    assert opt.n_observations == 8


def test_never_reproposes_until_space_is_exhausted(caplog: pytest.LogCaptureFixture) -> None:
    space = SearchSpace.from_dict({"a": {"type": "int", "low": 1, "high": 4},
                                   "b": {"type": "categorical", "choices": ["x", "y"]}})
    opt = Optimizer(space, seed=0)
    seen = set()
    for _ in range(8):
        p = opt.ask()
        assert repr(p) not in seen
        seen.add(repr(p))
        opt.tell(p, p["a"] + (p["b"] == "y"))
    with caplog.at_level(logging.WARNING):
        p = opt.ask()
    assert repr(p) in seen and "exhausted" in caplog.text


def test_failing_region_is_avoided() -> None:
    space = SearchSpace.from_dict({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    opt = Optimizer(space, kappa=1.0, seed=0)
    for x in np.linspace(0.0, 0.6, 7):  # reward grows towards the failing region
        opt.tell({"x": float(x)}, float(x))
    for x in np.linspace(0.72, 1.0, 8):
        opt.tell({"x": float(x)}, None, status="crashed")
    for _ in range(3):
        p = opt.ask()
        assert p["x"] < 0.72, p
        opt.tell(p, p["x"])
    assert opt.recommend().params["x"] < 0.72


def test_recommendation_uses_the_model_not_the_lucky_maximum() -> None:
    space = SearchSpace.from_dict({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    rng = np.random.default_rng(1)
    opt = Optimizer(space, seed=0)
    for x in np.linspace(0, 1, 21):  # true reward 1 - |x - 0.3|, noise sd 0.1
        opt.tell({"x": float(x)}, 1 - abs(x - 0.3) + 0.1 * rng.standard_normal())
    opt.tell({"x": 0.9}, 1.5)  # one lucky trial in a bad region
    rec = opt.recommend()
    assert abs(rec.params["x"] - 0.3) <= 0.15 and rec.value < 1.5


def test_degenerate_inputs_warn_and_do_not_crash(caplog: pytest.LogCaptureFixture) -> None:
    space = SearchSpace.from_dict(TC002)
    opt = Optimizer(space, seed=0)
    p0 = space.sample(0, 1)[0]
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            opt.tell(p0, 1.0)  # duplicate points, all-equal rewards
        for p in space.sample(1, 3):
            opt.tell(p, 1.0)
        p = opt.ask()
    assert "all 6 observed values are equal" in caplog.text
    assert p != p0 and len(opt.last_candidates) == 5
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        opt.tell(space.sample(2, 1)[0], float("nan"))
        opt.tell(space.sample(3, 1)[0], float("inf"))
        opt.tell(space.sample(4, 1)[0], -float("inf"), noise=float("nan"))
        opt.tell(space.sample(5, 1)[0], 2.0, noise=-1.0)
    assert caplog.text.count("non-finite value") == 3 and "invalid noise" in caplog.text
    assert opt.n_usable == 7 and opt.n_observations == 10
    assert isinstance(opt.ask(), dict) and opt.recommend() is not None
    with pytest.raises(ValueError, match="value must be a number"):
        opt.tell(p0, "high")
    with pytest.raises(ValueError, match="kappa"):
        Optimizer(space, kappa=-1.0)
    with pytest.raises(ValueError, match="n_initial"):
        Optimizer(space, n_initial=0)


def test_known_noise_lowers_a_trials_weight() -> None:
    space = SearchSpace.from_dict({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    means = []
    for noise in (0.0, 5.0):
        opt = Optimizer(space, seed=0, warp_outputs=False)
        for x in np.linspace(0, 1, 11):
            opt.tell({"x": float(x)}, 0.0)
        opt.tell({"x": 0.55}, 3.0, noise=noise)  # an outlier, precise or very noisy
        opt.ask()
        cand_mean = max(c.mean for c in opt.last_candidates)
        means.append(cand_mean)
    assert means[1] < means[0]


def test_convergence_reports_gap_and_noise() -> None:
    space = SearchSpace.from_dict({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    opt = Optimizer(space, seed=0)
    c = opt.converged()
    assert isinstance(c, Convergence) and not c.converged and "need" in c.reason
    rng = np.random.default_rng(0)
    for x in rng.random(40):  # a flat objective under noise sd 0.5: nothing left to find
        opt.tell({"x": float(x)}, 0.5 * rng.standard_normal())
    flat = opt.converged()
    assert flat.converged and flat.gap < flat.noise
    steep = Optimizer(space, seed=0)
    for x in (0.1, 0.2, 0.5, 0.8, 0.9):  # a noise-free, steep objective sampled sparsely
        steep.tell({"x": x}, 10 * math.sin(8 * x))
    c = steep.converged()
    assert not c.converged and c.gap > c.noise and "gap" in c.reason


def test_space_from_dict_form_and_all_fixed_space() -> None:
    opt = Optimizer({"g": {"type": "fixed", "value": 0.99}}, seed=0)
    assert opt.ask() == {"g": 0.99}
    opt.tell({"g": 0.99}, 1.0)
    opt.tell({"g": 0.99}, 3.0)
    assert opt.ask() == {"g": 0.99}
    assert opt.recommend().value == 2.0


def test_debug_candidates_are_distinct_points_best_first():
    from donkeyrl.bo.optimizer import distinct_top

    X = np.array([[0.5, 0.5], [0.51, 0.5], [0.5, 0.52], [0.9, 0.1], [0.1, 0.9], [0.52, 0.49]])
    assert distinct_top(X, 3).tolist() == [0, 3, 4]
    # too few distinct rows: the next best fill the list, still best first
    assert distinct_top(X[:3], 3).tolist() == [0, 1, 2]
