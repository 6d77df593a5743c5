"""The batch form of every wrapper of :mod:`donkeyrl.rl.wrappers` and :mod:`donkeyrl.rl.metrics`.

Why: the batched training path (:func:`donkeyrl.rl.envbuild.build_batched`) steps all cars of a
trial in one :class:`~donkeyrl.envs.vector.BatchedDonkeyEnv`, an SB3 ``VecEnv``; Gymnasium wrappers
cannot sit inside it. Each wrapper here is its Gymnasium twin for a batch: it calls the same array
functions (or, for the metrics, the same :class:`~donkeyrl.rl.metrics.EpisodeRecorder`) with every
car at once, keeps its per-car state in arrays and resets a car's state when that car's episode
ends, so a trial trained on the batch sees the numbers the per-env stack would give
(tests/rl/test_batched_training.py).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from donkeyrl.rl.metrics import EpisodeRecorder
from donkeyrl.rl.wrappers import (MAX_STEP_PROGRESS, REWARD_MODES, check_reward, clamp_actions, grid_actions,
                                  grid_steps, limit_steering, progress_reward, short_lap, speed_reward)


class CarVecWrapper(VecEnvWrapper):
    """A VecEnv wrapper whose per-car state follows each car's episodes.

    The wrapped VecEnv auto-resets a car when its episode ends and leaves the new episode's first
    info in ``reset_infos``; :meth:`car_reset` is called with it for every such car (and for every
    car on :meth:`reset`), which is what ``reset`` is to a Gymnasium wrapper. A wrapper that ends a
    car's episode itself calls :meth:`reset_car`, which goes down the stack to the env.
    Subclasses override :meth:`actions` (on the way down) and :meth:`process` (on the way up).
    """

    def __init__(self, venv: VecEnv, action_space: spaces.Space | None = None) -> None:
        super().__init__(venv, action_space=action_space)
        self.reset_infos = venv.reset_infos

    def reset(self) -> Any:
        obs = self.venv.reset()
        self.reset_infos = self.venv.reset_infos
        for i in range(self.num_envs):
            self.car_reset(i, self.reset_infos[i])
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_async(self.actions(actions))

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.reset_infos = self.venv.reset_infos
        obs, rewards, dones, infos = self.process(obs, rewards, dones, infos)
        for i in np.flatnonzero(dones).tolist():
            self.car_reset(i, self.reset_infos[i])
        return obs, rewards, dones, infos

    def reset_car(self, i: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Start car ``i``'s next episode now (see :meth:`BatchedDonkeyEnv.reset_car`)."""
        below: Any = self.venv  # a CarVecWrapper or the BatchedDonkeyEnv: both have reset_car
        obs, info = below.reset_car(i)
        self.car_reset(i, info)
        return obs, info

    def actions(self, actions: np.ndarray) -> np.ndarray:
        """The actions passed down (unchanged by default)."""
        return actions

    def process(self, obs: Any, rewards: np.ndarray, dones: np.ndarray,
                infos: list[dict[str, Any]]) -> VecEnvStepReturn:
        """The step passed up (unchanged by default)."""
        return obs, rewards, dones, infos

    def car_reset(self, i: int, info: dict[str, Any]) -> None:
        """Car ``i`` starts a new episode whose first info is ``info``."""


class VecDiscretizedAction(CarVecWrapper):
    """:class:`DiscretizedAction` for a batch: grid indices (n,) -> (n, 2) actions."""

    def __init__(self, venv: VecEnv, n_steer: int, n_throttle: int) -> None:
        box = venv.action_space
        if not isinstance(box, spaces.Box):
            raise ValueError(f"VecDiscretizedAction needs a Box((2,)) action space, got {box}")
        steer, throttle = grid_steps(box, n_steer, n_throttle)
        super().__init__(venv, action_space=spaces.Discrete(len(steer) * len(throttle)))
        self.steer_values, self.throttle_values = steer, throttle

    def actions(self, actions: np.ndarray) -> np.ndarray:
        index = np.asarray(actions).reshape(self.num_envs, -1)[:, 0]
        return grid_actions(index, self.steer_values, self.throttle_values)


class VecThrottleClamp(CarVecWrapper):
    """:class:`ThrottleClamp` for a batch."""

    def __init__(self, venv: VecEnv, throttle_min: float, throttle_max: float) -> None:
        super().__init__(venv)
        if not throttle_min <= throttle_max:
            raise ValueError(f"throttle_min {throttle_min} must be <= throttle_max {throttle_max}")
        self.throttle_min, self.throttle_max = float(throttle_min), float(throttle_max)
        box = venv.action_space
        assert isinstance(box, spaces.Box)
        self.low, self.high = box.low, box.high

    def actions(self, actions: np.ndarray) -> np.ndarray:
        return clamp_actions(actions, self.low, self.high, self.throttle_min, self.throttle_max)


class VecSteeringRateLimit(CarVecWrapper):
    """:class:`SteeringRateLimit` for a batch (each car restarts from 0 with its episode)."""

    def __init__(self, venv: VecEnv, max_delta: float) -> None:
        super().__init__(venv)
        if not 0.0 < max_delta <= 1.0:
            raise ValueError(f"steer_rate_limit must be in (0, 1] (fraction of the range), got {max_delta}")
        box = venv.action_space
        assert isinstance(box, spaces.Box)
        self.max_step = float(max_delta) * float(box.high[0] - box.low[0])
        self._last = np.zeros(self.num_envs)

    def actions(self, actions: np.ndarray) -> np.ndarray:
        return limit_steering(actions, self._last, self.max_step)

    def car_reset(self, i: int, info: dict[str, Any]) -> None:
        self._last[i] = 0.0


def _terminated(dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
    """Which cars' episodes ended by termination (not by a time limit)."""
    return np.array([bool(d) and not info.get("TimeLimit.truncated", False) for d, info in zip(dones, infos)])


class VecSpeedReward(CarVecWrapper):
    """:class:`SpeedReward` for a batch."""

    def __init__(self, venv: VecEnv, max_cte: float, crash_penalty: float = 1.0) -> None:
        super().__init__(venv)
        if max_cte <= 0:
            raise ValueError(f"max_cte must be > 0, got {max_cte}")
        self.max_cte, self.crash_penalty = float(max_cte), float(crash_penalty)

    def process(self, obs: Any, rewards: np.ndarray, dones: np.ndarray,
                infos: list[dict[str, Any]]) -> VecEnvStepReturn:
        speed = np.array([float(i["speed"]) for i in infos])
        cte = np.array([float(i["cte"]) for i in infos])
        return obs, speed_reward(speed, cte, _terminated(dones, infos), self.max_cte, self.crash_penalty), \
            dones, infos


class VecProgressReward(CarVecWrapper):
    """:class:`ProgressReward` for a batch."""

    def __init__(self, venv: VecEnv, max_cte: float, crash_penalty: float = 1.0,
                 max_step_progress: float = MAX_STEP_PROGRESS) -> None:
        super().__init__(venv)
        if max_cte <= 0:
            raise ValueError(f"max_cte must be > 0, got {max_cte}")
        self.max_cte, self.crash_penalty = float(max_cte), float(crash_penalty)
        self.max_step_progress = float(max_step_progress)
        self._last = np.zeros(self.num_envs)

    def process(self, obs: Any, rewards: np.ndarray, dones: np.ndarray,
                infos: list[dict[str, Any]]) -> VecEnvStepReturn:
        progress = np.array([float(i["progress"]) for i in infos])
        cte = np.array([float(i["cte"]) for i in infos])
        reward = progress_reward(progress, cte, _terminated(dones, infos), self._last, self.max_cte,
                                 self.crash_penalty, self.max_step_progress)
        return obs, reward, dones, infos

    def car_reset(self, i: int, info: dict[str, Any]) -> None:
        self._last[i] = float(info.get("progress", 0.0))


def vec_wrap_reward(venv: VecEnv, mode: str, max_cte: float, crash_penalty: float) -> VecEnv:
    """:func:`wrap_reward` for a batch."""
    if mode == "donkey":
        return venv
    if mode == "speed":
        return VecSpeedReward(venv, max_cte, crash_penalty)
    if mode == "progress":
        return VecProgressReward(venv, max_cte, crash_penalty)
    raise ValueError(f"unknown reward {mode!r}; valid: {', '.join(REWARD_MODES)}")


class VecMinLapTimeGuard(CarVecWrapper):
    """:class:`MinLapTimeGuard` for a batch: a car's short lap ends its episode here, so the car
    is reset through the stack (:meth:`CarVecWrapper.reset_car`) and its last frame becomes the
    ``terminal_observation``."""

    def __init__(self, venv: VecEnv, min_lap_time: float | None = None, penalty: float = 1.0) -> None:
        super().__init__(venv)
        if min_lap_time is not None and min_lap_time < 0:
            raise ValueError(f"min_lap_time must be >= 0 or None, got {min_lap_time}")
        self.min_lap_time, self.penalty = min_lap_time, float(penalty)
        self._laps = np.zeros(self.num_envs, dtype=np.int64)

    def process(self, obs: Any, rewards: np.ndarray, dones: np.ndarray,
                infos: list[dict[str, Any]]) -> VecEnvStepReturn:
        for i, info in enumerate(infos):
            if not short_lap(info, int(self._laps[i]), self.min_lap_time):
                continue
            rewards = np.array(rewards, dtype=np.float64)
            rewards[i] = -self.penalty
            infos[i] = info = dict(info, terminated_reason="short_lap")
            info["TimeLimit.truncated"] = False
            if not dones[i]:
                dones = np.array(dones)
                dones[i] = True
                info["terminal_observation"] = np.array(obs[i])
                obs = np.array(obs)
                below: Any = self.venv
                obs[i], _ = below.reset_car(i)
        return obs, rewards, dones, infos

    def car_reset(self, i: int, info: dict[str, Any]) -> None:
        self._laps[i] = int(info.get("lap_count", 0))

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = super().step_wait()
        for i, info in enumerate(infos):
            if not dones[i]:
                self._laps[i] = int(info.get("lap_count", 0))
        return obs, rewards, dones, infos


class VecRewardCheck(CarVecWrapper):
    """:class:`ScalarRewardCheck` for a batch."""

    def process(self, obs: Any, rewards: np.ndarray, dones: np.ndarray,
                infos: list[dict[str, Any]]) -> VecEnvStepReturn:
        for reward, info in zip(rewards, infos):
            check_reward(reward, info)
        return obs, rewards, dones, infos


class VecDrivingMetrics(CarVecWrapper):
    """:class:`DrivingMetrics` for a batch: ``recorders[i].episodes`` are car ``i``'s episodes."""

    def __init__(self, venv: VecEnv, max_cte: float, min_lap_time: float | None = None) -> None:
        super().__init__(venv)
        self.recorders = [EpisodeRecorder(max_cte, min_lap_time) for _ in range(self.num_envs)]

    def process(self, obs: Any, rewards: np.ndarray, dones: np.ndarray,
                infos: list[dict[str, Any]]) -> VecEnvStepReturn:
        for i, info in enumerate(infos):
            truncated = bool(dones[i]) and bool(info.get("TimeLimit.truncated", False))
            self.recorders[i].add(float(rewards[i]), bool(dones[i]) and not truncated, truncated, info)
        return obs, rewards, dones, infos

    def car_reset(self, i: int, info: dict[str, Any]) -> None:
        self.recorders[i].start(info)


class VecEpisodeMonitor(CarVecWrapper):
    """SB3's ``Monitor`` for a batch, to the bit: ``info["episode"] = {"r", "l", "t"}`` at each
    episode end, the return summed in float64 and rounded to 6 digits like ``Monitor`` (SB3's
    ``VecMonitor`` sums in float32), and rewards handed up as float32 like ``DummyVecEnv``'s."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.t_start = time.time()
        self._rewards: list[list[float]] = [[] for _ in range(self.num_envs)]

    def process(self, obs: Any, rewards: np.ndarray, dones: np.ndarray,
                infos: list[dict[str, Any]]) -> VecEnvStepReturn:
        for i, info in enumerate(infos):
            self._rewards[i].append(float(rewards[i]))
            if dones[i]:
                ep = self._rewards[i]
                info["episode"] = {"r": round(sum(ep), 6), "l": len(ep), "t": round(time.time() - self.t_start, 6)}
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def car_reset(self, i: int, info: dict[str, Any]) -> None:
        self._rewards[i] = []
