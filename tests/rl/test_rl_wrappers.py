"""Action grid (TC-001), rewards that cannot be farmed, guards, observation preprocessing; their batch forms."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from donkeyrl.rl.vecwrappers import VecEpisodeMonitor, VecMinLapTimeGuard, VecProgressReward
from donkeyrl.rl.wrappers import (DiscretizedAction, ImagePreprocess, MinLapTimeGuard,
                                  ProgressReward, SpeedReward, SteeringRateLimit, ThrottleClamp,
                                  preprocess_image)

from rl_fakes import FakeDonkeyEnv


class Scripted(gym.Env):
    """Replays a list of info dicts, one per step (to drive reward wrappers exactly)."""

    observation_space = spaces.Box(0, 255, (8, 8, 1), np.uint8)
    action_space = spaces.Box(np.array([-1, 0], np.float32), np.array([1, 1], np.float32))

    def __init__(self, infos: list[dict]) -> None:
        self.infos = infos
        self.i = 0
        self.actions: list[np.ndarray] = []

    def reset(self, *, seed=None, options=None):
        self.i = 0
        return np.zeros((8, 8, 1), np.uint8), {"progress": 0.0, "lap_count": 0, "track_length": 200.0}

    def step(self, action):
        self.actions.append(np.asarray(action))
        info = dict(self.infos[self.i])
        self.i += 1
        terminated = bool(info.pop("_terminated", False))
        return np.zeros((8, 8, 1), np.uint8), 123.0, terminated, self.i >= len(self.infos), info


def test_decode_action_tc001():
    env = DiscretizedAction(FakeDonkeyEnv(), n_steer=5, n_throttle=3)
    assert env.action_space.n == 15
    steer, throttle = env.action(7)
    assert steer == pytest.approx(0.0) and throttle == pytest.approx(0.5)
    assert tuple(env.action(0)) == pytest.approx((-1.0, 0.0))
    assert tuple(env.action(14)) == pytest.approx((1.0, 1.0))


def test_discrete_grid_follows_throttle_range_and_single_bin():
    env = DiscretizedAction(FakeDonkeyEnv(throttle_min=0.2, throttle_max=0.6), 3, 2)
    assert list(env.throttle_values) == pytest.approx([0.2, 0.6])
    single = DiscretizedAction(FakeDonkeyEnv(), 3, 1)
    assert single.action(2)[1] == pytest.approx(0.5)


@pytest.mark.parametrize("n_steer,n_throttle", [(1, 3), (0, 3), (5, 0)])
def test_bad_grid_sizes_are_rejected(n_steer, n_throttle):
    with pytest.raises(ValueError, match="n_steer|n_throttle"):
        DiscretizedAction(FakeDonkeyEnv(), n_steer, n_throttle)


def test_discrete_action_reaches_env():
    base = FakeDonkeyEnv()
    env = DiscretizedAction(base, 5, 3)
    env.reset(seed=0)
    env.step(13)  # steer index 4 (1.0), throttle index 1 (0.5)
    assert base.last_action == pytest.approx((1.0, 0.5))


def test_throttle_clamp_enforces_minimum():
    base = FakeDonkeyEnv()
    env = ThrottleClamp(base, 0.3, 0.8)
    env.reset(seed=0)
    env.step(np.array([2.0, 0.0], np.float32))
    assert base.last_action == pytest.approx((1.0, 0.3))
    env.step(np.array([0.0, 1.0], np.float32))
    assert base.last_action[1] == pytest.approx(0.8)


def _info(progress, cte=0.0, speed=2.0, **kw):
    return {"progress": progress, "cte": cte, "speed": speed, "lap_count": 0, "last_lap_time": 0.0,
            "track_length": 200.0, **kw}


def test_progress_reward_is_net_progress_scaled_by_centring():
    env = ProgressReward(Scripted([_info(2.0), _info(4.0, cte=4.0), _info(4.0)]), max_cte=8.0)
    env.reset()
    rewards = [env.step(np.zeros(2))[1] for _ in range(3)]
    assert rewards == pytest.approx([0.25, 0.125, 0.0])


def test_progress_reward_gives_nothing_for_circling_near_start():
    # Circling: the car keeps moving (speed 2) with low cte, but the env's forward-only progress
    # only rises while it re-covers ground it already covered the first time: it stays ~4 units.
    infos = []
    for k in range(400):
        phase = 2 * math.pi * k / 40
        infos.append(_info(progress=4.0 * max(0.0, math.sin(min(phase, math.pi / 2))),
                           cte=1.0 * math.cos(phase), speed=2.0))
    env = ProgressReward(Scripted(infos), max_cte=8.0)
    env.reset()
    total = sum(env.step(np.zeros(2))[1] for _ in range(400))
    assert 0.0 < total <= 0.5  # at most 4 units / 8 = 0.5, earned once, in 400 steps
    speed = SpeedReward(Scripted(infos), max_cte=8.0)
    speed.reset()
    hacked = sum(speed.step(np.zeros(2))[1] for _ in range(400))
    assert hacked > 100 * total  # the speed shaping is farmable; progress is not


def test_progress_reward_gives_nothing_for_boundary_oscillation():
    # Zig-zag across the boundary at |cte| 7.5..8 with tiny forward progress.
    infos = [_info(progress=0.05 * k, cte=7.5 + 0.5 * (k % 2), speed=3.0) for k in range(200)]
    env = ProgressReward(Scripted(infos), max_cte=8.0)
    env.reset()
    total = sum(env.step(np.zeros(2))[1] for _ in range(200))
    assert abs(total) < 0.05


def test_progress_reward_ignores_teleport_and_penalises_crash():
    infos = [_info(2.0), _info(500.0), dict(_info(502.0), _terminated=True)]
    env = ProgressReward(Scripted(infos), max_cte=8.0, crash_penalty=5.0)
    env.reset()
    rewards = [env.step(np.zeros(2))[1] for _ in range(3)]
    assert rewards == pytest.approx([0.25, 0.0, -5.0])


def test_speed_reward_formula():
    env = SpeedReward(Scripted([_info(1.0, cte=2.0, speed=3.0)]), max_cte=8.0)
    env.reset()
    assert env.step(np.zeros(2))[1] == pytest.approx(3.0 * 0.75)


def test_short_lap_terminates():
    infos = [_info(1.0), _info(2.0, lap_count=1, last_lap_time=1.5)]
    env = MinLapTimeGuard(Scripted(infos), min_lap_time=None, penalty=2.0)
    env.reset()
    assert env.step(np.zeros(2))[2] is False
    _, reward, terminated, _, info = env.step(np.zeros(2))
    assert terminated and reward == -2.0 and info["terminated_reason"] == "short_lap"


def test_plausible_lap_passes():
    infos = [_info(1.0, lap_count=1, last_lap_time=12.0)]
    env = MinLapTimeGuard(Scripted(infos), min_lap_time=None)
    env.reset()
    _, reward, terminated, _, _ = env.step(np.zeros(2))
    assert not terminated and reward == 123.0


def test_stuck_episode_is_truncated_by_env_watchdog():
    env = ProgressReward(FakeDonkeyEnv(), max_cte=8.0)
    env.reset(seed=0)
    for step in range(1, 1000):  # noqa: B007 - read after the loop
        _, _, terminated, truncated, info = env.step(np.array([0.0, 0.0], np.float32))
        if terminated or truncated:
            break
    assert truncated and info["truncated_reason"] == "stuck" and step < 100


def test_preprocess_crops_resizes_and_greys():
    img = np.zeros((120, 160, 3), np.uint8)
    img[:48] = 255  # sky: the top 40 %
    img[48:, :, 1] = 100
    out = preprocess_image(img, 64, 32, grey=True, crop_top=0.4)
    assert out.shape == (32, 64, 1) and out.dtype == np.uint8
    assert out.max() < 100  # sky gone, green -> grey ~ 0.587 * 100
    env = ImagePreprocess(FakeDonkeyEnv(), 64, 32, grey=False, crop_top=0.25)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 64, 3) and env.observation_space.contains(obs)


def test_steering_rate_limit_smooths_steering():
    base = FakeDonkeyEnv()
    env = DiscretizedAction(SteeringRateLimit(base, 0.15), 5, 3)
    env.reset(seed=0)
    applied = []
    for index in (14, 14, 0, 7):  # full right, full right, full left, centre
        env.step(index)
        applied.append(base.last_action[0])
    assert applied == pytest.approx([0.3, 0.6, 0.3, 0.0], abs=1e-6)
    env.reset(seed=0)
    env.step(0)
    assert base.last_action[0] == pytest.approx(-0.3)  # the limit restarts from 0 each episode
    with pytest.raises(ValueError, match="steer_rate_limit"):
        SteeringRateLimit(base, 0.0)


# ------------------------------------------------------------------------------ batch forms


class ScriptedVec(VecEnv):
    """Cars replaying one list of info dicts each (like Scripted), with BatchedDonkeyEnv's reset_car."""

    render_mode = None  # read by VecEnv.__init__

    def __init__(self, scripts: list[list[dict]]) -> None:
        super().__init__(len(scripts), Scripted.observation_space, Scripted.action_space)
        self.scripts, self.k = scripts, [0] * len(scripts)
        self.resets: list[int] = []
        self.actions = None

    def reset_car(self, i: int):
        self.k[i] = 0
        self.resets.append(i)
        self.reset_infos[i] = {"progress": 0.0, "lap_count": 0, "track_length": 200.0}
        return np.full((8, 8, 1), 100 + i, np.uint8), self.reset_infos[i]

    def reset(self):
        return np.stack([self.reset_car(i)[0] for i in range(self.num_envs)])

    def step_async(self, actions):
        self.actions = np.asarray(actions)

    def step_wait(self):
        obs = np.stack([np.full((8, 8, 1), 10 * (self.k[i] + 1), np.uint8) for i in range(self.num_envs)])
        infos, dones = [], np.zeros(self.num_envs, bool)
        for i in range(self.num_envs):
            info = dict(self.scripts[i][self.k[i]])
            self.k[i] += 1
            terminated = bool(info.pop("_terminated", False))
            info["TimeLimit.truncated"] = False
            dones[i] = terminated
            infos.append(info)
        return obs, np.full(self.num_envs, 123.0), dones, infos

    def close(self): ...
    def get_attr(self, attr_name, indices=None): return [getattr(self, attr_name)] * self.num_envs
    def set_attr(self, attr_name, value, indices=None): ...
    def env_method(self, method_name, *args, indices=None, **kwargs): ...
    def env_is_wrapped(self, wrapper_class, indices=None): return [False] * self.num_envs


def test_batch_progress_reward_equals_the_gym_wrapper():
    infos = [_info(2.0), _info(4.0, cte=4.0), _info(500.0), dict(_info(501.0), _terminated=True)]
    gym_env = ProgressReward(Scripted(infos), max_cte=8.0, crash_penalty=5.0)
    gym_env.reset()
    expected = [gym_env.step(np.zeros(2))[1] for _ in range(4)]
    venv = VecProgressReward(ScriptedVec([infos, infos]), max_cte=8.0, crash_penalty=5.0)
    venv.reset()
    got = [venv.step(np.zeros((2, 2)))[1] for _ in range(4)]
    assert [r[0] for r in got] == [r[1] for r in got] == expected == pytest.approx([0.25, 0.125, 0.0, -5.0])


def test_batch_short_lap_guard_resets_only_that_car_through_the_stack():
    short = [_info(1.0), _info(2.0, lap_count=1, last_lap_time=1.5), _info(3.0)]
    plain = [_info(1.0), _info(2.0), _info(3.0)]
    base = ScriptedVec([plain, short])
    progress = VecProgressReward(base, max_cte=8.0)
    venv = VecMinLapTimeGuard(progress, min_lap_time=None, penalty=2.0)
    venv.reset()
    base.resets.clear()
    venv.step(np.zeros((2, 2)))
    obs, rewards, dones, infos = venv.step(np.zeros((2, 2)))
    assert dones.tolist() == [False, True] and rewards[1] == -2.0 and rewards[0] == pytest.approx(0.125)
    assert infos[1]["terminated_reason"] == "short_lap" and infos[1]["TimeLimit.truncated"] is False
    assert infos[1]["terminal_observation"][0, 0, 0] == 20 and obs[1, 0, 0, 0] == 101  # the reset frame
    assert base.resets == [1] and venv.reset_infos[1]["progress"] == 0.0
    assert progress._last.tolist() == [2.0, 0.0]  # the reward below restarted car 1's episode too


def test_batch_monitor_sums_like_monitor_and_hands_up_float32():
    rewards = [0.1, 0.2, 0.30000000000000004]
    infos = [_info(1.0), _info(2.0), dict(_info(3.0), _terminated=True)]

    class Rewarding(ScriptedVec):
        def step_wait(self):
            obs, _, dones, infos = super().step_wait()
            return obs, np.full(self.num_envs, rewards[self.k[0] - 1]), dones, infos

    venv = VecEpisodeMonitor(Rewarding([infos]))
    venv.reset()
    for _ in range(3):
        _, r, dones, out = venv.step(np.zeros((1, 2)))
        assert r.dtype == np.float32
    assert dones[0] and out[0]["episode"]["r"] == round(sum(rewards), 6) and out[0]["episode"]["l"] == 3
