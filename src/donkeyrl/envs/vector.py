"""A vector environment that steps many cars in one batched computation.

Why: a ``DummyVecEnv`` of N single environments pays Python overhead and one render call per car
per step. Here the physics of all cars is one compiled call and all camera frames are one batched
(parallel) render, so throughput scales with cars rather than with Python calls. It is a
Stable-Baselines3 ``VecEnv`` (auto-reset, ``terminal_observation`` in info) so SB3 algorithms can
train on it directly. All cars share one track; use single environments for multi-track training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from donkeyrl.envs.common import (TELEMETRY_SCALE, EpisodeLimits, ProgressWatchdog, auto_max_steps,
                                  classify_step, donkey_reward)
from donkeyrl.envs.embedded import resolve_tracks, start_offsets, telemetry_info
from donkeyrl.sim.camera import CameraConfig
from donkeyrl.sim.simulator import Simulator


class DonkeyVecEnv(VecEnv):
    """``n_envs`` cars on one track of the built-in simulator, same contract as ``DonkeyEnv``."""

    def __init__(self, n_envs: int, track: str = "generated_track", *, camera: CameraConfig | None = None,
                 limits: EpisodeLimits | None = None, steer_limit: float = 1.0, throttle_min: float = 0.0,
                 throttle_max: float = 1.0, start_noise: bool = True, seed: int | None = None) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.camera = camera or CameraConfig()
        self.limits = limits or EpisodeLimits()
        self.sim = Simulator(resolve_tracks(track)[0], n_envs, camera=self.camera)
        self.rng = np.random.default_rng(seed)
        self.start_noise = start_noise
        c = 1 if self.camera.grey else 3
        obs_space = spaces.Box(0, 255, (self.camera.height, self.camera.width, c), np.uint8)
        act_space = spaces.Box(np.array([-steer_limit, throttle_min], np.float32),
                               np.array([steer_limit, throttle_max], np.float32), dtype=np.float32)
        self.render_mode = None  # read by VecEnv.__init__ (via get_attr); no rendering here
        super().__init__(n_envs, obs_space, act_space)
        self.max_steps = self.limits.max_steps or auto_max_steps(self.sim.track.length)
        self.watchdogs = [ProgressWatchdog(self.limits.stuck_steps, self.limits.stuck_progress)
                          for _ in range(n_envs)]
        self.steps = np.zeros(n_envs, dtype=np.int64)
        self._obs = np.zeros((n_envs, *obs_space.shape), np.uint8)
        self._actions = np.zeros((n_envs, 2))

    def _reset_car(self, i: int) -> None:
        lat, dyaw = start_offsets(self.rng) if self.start_noise else (0.0, 0.0)
        self.sim.reset(i, lateral=lat, yaw_offset=dyaw)
        self.steps[i] = 0
        self.watchdogs[i].reset(0.0)

    def reset(self) -> np.ndarray:
        for i in range(self.num_envs):
            self._reset_car(i)
        return self.sim.render_all(out=self._obs).copy()

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"actions must be finite, got {a.tolist()}")
        self._actions = np.clip(a, self.action_space.low, self.action_space.high)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        self.sim.step(self._actions[:, 0], self._actions[:, 1])
        self.steps += 1
        rewards = np.zeros(self.num_envs, np.float32)
        dones = np.zeros(self.num_envs, bool)
        infos: list[dict[str, Any]] = []
        ended: list[int] = []
        for i in range(self.num_envs):
            tel = self.sim.telemetry(i)
            stuck = self.watchdogs[i].update(tel.progress)
            term, trunc = classify_step(tel.cte, tel.hit, stuck, self.sim.at_end_of_road(i), tel.lap_count,
                                        int(self.steps[i]), self.max_steps, self.limits)
            rewards[i] = donkey_reward(tel.cte, tel.forward_vel / TELEMETRY_SCALE, tel.hit, term is not None,
                                       self.limits.max_cte)
            info = telemetry_info(tel, self.sim.track)
            if term or trunc:
                dones[i] = True
                info["terminated_reason" if term else "truncated_reason"] = term or trunc
                info["TimeLimit.truncated"] = trunc is not None
                ended.append(i)
            infos.append(info)
        obs = self.sim.render_all(out=self._obs)
        for i in ended:  # SB3 auto-reset: keep the last frame, start the next episode
            infos[i]["terminal_observation"] = obs[i].copy()
            self._reset_car(i)
            self.sim.render(i, out=self._obs[i])
        return self._obs.copy(), rewards, dones, infos

    # ------------------------------------------------------------------ VecEnv plumbing
    def close(self) -> None:
        """Nothing to release: the simulator lives in this process."""

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def seed(self, seed: int | None = None) -> Sequence[int | None]:  # type: ignore[override]
        self.rng = np.random.default_rng(seed)
        return [seed] * self.num_envs
