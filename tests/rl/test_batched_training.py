"""The batched training path gives the per-env path's numbers bit for bit, and SB3 trains on it.

Both stacks of :mod:`donkeyrl.rl.envbuild` are built from one TrialConfig, seeded alike and driven
with the same actions: observations (frame-stacked), rewards, dones, infos (minus wall-clock) and
the recorded driving metrics must be equal, across auto-resets, short-lap guard resets, several
tracks, the procedural regime, domain randomisation, discrete actions and the steering-rate limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.envbuild import build_vec_env, metrics_wrappers, resolve_vec_env
from donkeyrl.rl.vecwrappers import VecEpisodeMonitor
from donkeyrl.sim.expert import ExpertDriver

#: Keys whose values are wall-clock, not simulation.
WALL_CLOCK = {"t"}


def both(cfg: TrialConfig, n: int) -> tuple[Any, Any]:
    """(per-env stack, batched stack), seeded as SB3 seeds them before the first reset."""
    per_env = build_vec_env(cfg, n_envs=n, vec_env="dummy")
    batched = build_vec_env(cfg, n_envs=n, vec_env="batched")
    for venv in (per_env, batched):
        venv.seed(cfg.seed)
    return per_env, batched


def assert_same_info(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert set(a) == set(b), set(a) ^ set(b)
    for key in a:
        if key == "terminal_observation":
            np.testing.assert_array_equal(a[key], b[key])
        elif key == "episode":
            assert {k: v for k, v in a[key].items() if k not in WALL_CLOCK} == \
                   {k: v for k, v in b[key].items() if k not in WALL_CLOCK}
        else:
            assert a[key] == b[key], key


def run_both(cfg: TrialConfig, n: int, steps: int, policy: Any) -> tuple[list[Any], int]:
    """Step both stacks with ``policy(k, infos, per_env) -> actions``; returns (per-car metrics, ends)."""
    per_env, batched = both(cfg, n)
    obs_a, obs_b = per_env.reset(), batched.reset()
    np.testing.assert_array_equal(obs_a, obs_b)
    infos: list[dict[str, Any]] = [{} for _ in range(n)]
    ends = 0
    for k in range(steps):
        actions = policy(k, infos, per_env)
        obs_a, rew_a, done_a, infos = per_env.step(actions)
        obs_b, rew_b, done_b, infos_b = batched.step(actions)
        np.testing.assert_array_equal(obs_a, obs_b)
        assert rew_a.dtype == rew_b.dtype == np.float32
        np.testing.assert_array_equal(rew_a, rew_b)
        np.testing.assert_array_equal(done_a, done_b)
        for a, b in zip(infos, infos_b):
            assert_same_info(a, b)
        ends += int(done_a.sum())
    rec_a, rec_b = metrics_wrappers(per_env), metrics_wrappers(batched)
    for a, b in zip(rec_a, rec_b):
        assert a.episodes == b.episodes
    per_env.close()
    batched.close()
    return [r.episodes for r in rec_a], ends


def random_policy(space: spaces.Space, n: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)

    def act(k: int, infos: list[dict[str, Any]], venv: Any) -> np.ndarray:
        if isinstance(space, spaces.Discrete):
            return rng.integers(space.n, size=n)
        return rng.uniform(space.low, space.high, size=(n, 2)).astype(np.float32)

    return act


def expert_policy(n: int) -> Any:
    """The scripted expert on each per-env car (its telemetry equals the batched car's)."""
    def act(k: int, infos: list[dict[str, Any]], venv: Any) -> np.ndarray:
        out = []
        for env in venv.envs:
            base = env.unwrapped
            out.append(ExpertDriver(base.sim.track).action_for_env(base.sim.telemetry(0)))
        return np.array(out, np.float32)

    return act


@pytest.mark.parametrize("params", [
    pytest.param(dict(), marks=pytest.mark.slow),  # the default pipeline: ppo, progress, 2 grey frames
    dict(agent="dqn", tracks=("generated_track", "mini_monaco", "oval"), domain_randomization=True,
         steer_rate_limit=0.15, reward="speed", frame_stack=3, max_steps=80),
    pytest.param(dict(tracks=("procedural",), reward="donkey", grey=False, frame_stack=1, max_steps=60),
                 marks=pytest.mark.slow),
])
def test_random_driving_gives_the_same_numbers_on_both_paths(params: dict[str, Any]) -> None:
    cfg = TrialConfig(seed=3, **params)
    n = 3
    space = build_vec_env(cfg, n_envs=1, vec_env="batched").action_space
    episodes, ends = run_both(cfg, n, 150, random_policy(space, n, seed=1))
    assert ends >= n, "random driving should end several episodes"
    assert sum(len(e) for e in episodes) == ends


@pytest.mark.slow
@pytest.mark.parametrize("max_laps", [None, 1])
def test_the_short_lap_guard_ends_episodes_alike(max_laps: int | None) -> None:
    # Every lap is "too short" at 1000 s: the guard ends the episode (the env does too with max_laps 1).
    cfg = TrialConfig(tracks=("oval",), min_lap_time=1000.0, max_laps=max_laps, crash_penalty=2.5,
                      throttle_min=-1.0, frame_stack=1)
    episodes, ends = run_both(cfg, 2, 400, expert_policy(2))
    assert ends >= 2
    assert all(e[0].end_reason == "short_lap" and e[0].laps == 1 and e[0].short_laps == 1 for e in episodes)


@pytest.mark.slow
def test_ppo_learns_the_same_policy_on_both_paths() -> None:
    from donkeyrl.rl.agents import build_agent

    cfg = TrialConfig(seed=5, n_envs=2, n_steps=32, batch_size=32, n_epochs=2, max_steps=40)
    params = []
    for kind in ("dummy", "batched"):
        venv = build_vec_env(cfg, vec_env=kind)
        model = build_agent(cfg, venv)
        model.learn(128)
        params.append([p.detach().clone() for p in model.policy.parameters()])
        venv.close()
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(*params))


def test_batched_is_the_default_for_the_built_in_simulator() -> None:
    assert resolve_vec_env("auto", "embedded") == "batched"
    assert resolve_vec_env("auto", "donkey") == "dummy"
    assert resolve_vec_env("auto", "embedded", builtin_factory=False) == "dummy"
    assert resolve_vec_env("dummy", "embedded") == "dummy"
    with pytest.raises(ValueError, match="batched.*sim=donkey"):
        resolve_vec_env("batched", "donkey")
    with pytest.raises(ValueError, match="vec_env 'threads'.*auto, batched, dummy, subproc"):
        resolve_vec_env("threads", "embedded")
    venv = build_vec_env(TrialConfig(n_envs=2), vec_env="auto")
    base = venv
    while hasattr(base, "venv"):
        base = base.venv
    assert type(base).__name__ == "BatchedDonkeyEnv" and base.num_envs == 2
    assert isinstance(venv.venv, VecEpisodeMonitor)


def test_a_custom_env_factory_keeps_the_per_env_path(fake_factory) -> None:
    factory, built = fake_factory
    venv = build_vec_env(TrialConfig(n_envs=2), vec_env="auto", env_factory=factory)
    assert len(built) == 2
    venv.close()
