"""Many cars of the built-in simulator as one Stable-Baselines3 ``VecEnv``: the training path.

Why: a ``DummyVecEnv`` of N single envs pays Python overhead and one render call per car per step.
Here the physics of all cars is one compiled call and all camera frames are one batched (parallel)
render, whatever track each car is on. It is an SB3 ``VecEnv`` (auto-reset, ``terminal_observation``
and ``TimeLimit.truncated`` in info, ``reset_infos``, per-env seeds and options at the next reset),
so SB3 algorithms train on it directly.

Car ``i`` lives exactly the episodes of an :class:`~donkeyrl.envs.embedded.EmbeddedDonkeyEnv`
seeded ``seed + i`` (the seeding of ``DummyVecEnv``/``VecEnv.seed``): the same generator draws its
track (names or regimes, :class:`~donkeyrl.envs.embedded.TrackChoice`), start pose and appearance
in the same order (:func:`~donkeyrl.envs.embedded.draw_start`), and the same step core classifies
and rewards its steps. Observations, rewards and infos are identical (tests/envs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numba
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from donkeyrl.envs.common import EpisodeCore, EpisodeLimits
from donkeyrl.envs.embedded import (TrackChoice, check_action_box, draw_start, observation_box,
                                    readout_infos)
from donkeyrl.sim.camera import CameraConfig
from donkeyrl.sim.simulator import SimConfig, Simulator
from donkeyrl.sim.track import Track


class BatchedDonkeyEnv(VecEnv):
    """``n_envs`` cars of one built-in simulator, each on its own track; the ``EmbeddedDonkeyEnv``
    contract per car (see the module docstring).

    Arguments: as :class:`~donkeyrl.envs.embedded.EmbeddedDonkeyEnv` (``track`` may be names,
    regimes or Tracks; each car draws its own per episode), plus ``n_envs``, ``seed`` (car ``i``
    is seeded ``seed + i`` and the cars are reset once, like ``make_env(seed=...)``) and
    ``render_threads``: threads of the batched render (None = numba's default, every core; 1 =
    car by car on the calling thread, what the training path uses, see
    :data:`donkeyrl.rl.envbuild.RENDER_THREADS`). Frames do not depend on it.
    Rewards are float64 (the DonkeyCar reward of the step core); SB3 casts them when it stores them.
    """

    def __init__(self, n_envs: int, track: str | Track | Sequence[str | Track] = "generated_track", *,
                 camera: CameraConfig | None = None, limits: EpisodeLimits | None = None,
                 steer_limit: float = 1.0, throttle_min: float = 0.0, throttle_max: float = 1.0,
                 domain_randomization: bool = False, start_noise: bool = True,
                 sim_config: SimConfig | None = None, seed: int | None = None,
                 render_threads: int | None = None) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        if render_threads is not None and render_threads < 1:
            raise ValueError(f"render_threads must be >= 1 or None (all cores), got {render_threads}")
        self.render_threads = render_threads
        box = check_action_box(steer_limit, throttle_min, throttle_max)
        self.limits = limits or EpisodeLimits()
        self.limits.check()
        self.track_choice = TrackChoice(track)
        self.camera = camera or CameraConfig()
        self.domain_randomization = domain_randomization
        self.start_noise = start_noise
        self.render_mode = None  # read by VecEnv.__init__ (via get_attr); no rendering here
        super().__init__(n_envs, observation_box(self.camera), box)
        self.box = box
        self.sim = Simulator(self.track_choice.first, n_envs, sim_config, camera=self.camera)
        self.tracks: list[Track] = [self.track_choice.first] * n_envs
        self.cores = [EpisodeCore(self.limits) for _ in range(n_envs)]
        self.rngs = [gym.utils.seeding.np_random(None if seed is None else seed + i)[0] for i in range(n_envs)]
        self._obs = np.zeros((n_envs, *self.camera.shape), np.uint8)
        self._actions = np.zeros((n_envs, 2))
        if seed is not None:
            self.seed(seed)
            self.reset()

    # ------------------------------------------------------------------ one car
    def reset_car(self, i: int, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start car ``i``'s next episode now: (its first observation, its reset info).

        Also records the info in ``reset_infos[i]``; wrappers that end an episode themselves (the
        short-lap guard) call this.
        """
        start = draw_start(self.rngs[i], self.track_choice, options, start_noise=self.start_noise,
                           domain_randomization=self.domain_randomization)
        if start.track is not self.tracks[i]:
            self.sim.set_track(start.track, car=i)
            self.tracks[i] = start.track
        self.sim.reset(i, lateral=start.lateral, yaw_offset=start.yaw_offset)
        self.sim.set_appearance(i, start.appearance)
        self.cores[i].start(start.track.length)
        self.sim.render(i, out=self._obs[i])
        info = readout_infos(self.sim.readout(), self.tracks, self.sim.lap_times)[i]
        self.reset_infos[i] = info
        return self._obs[i].copy(), info

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        """Reset every car, with the seeds of :meth:`seed` and the options of :meth:`set_options`
        given since the last reset (then forgotten, as SB3 does)."""
        for i in range(self.num_envs):
            if self._seeds[i] is not None:
                self.rngs[i] = gym.utils.seeding.np_random(self._seeds[i])[0]
            self.reset_car(i, self._options[i] or None)
        self._reset_seeds()
        self._reset_options()
        return self._obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != (self.num_envs, 2):
            raise ValueError(f"actions must have shape ({self.num_envs}, 2) = (steering, throttle) per car, "
                             f"got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"actions must be finite, got {a.tolist()}")
        self._actions = np.clip(a, self.box.low, self.box.high)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        self.sim.step(self._actions[:, 0], self._actions[:, 1])
        rewards = np.zeros(self.num_envs)
        dones = np.zeros(self.num_envs, bool)
        cars = self.sim.readout()
        infos = readout_infos(cars, self.tracks, self.sim.lap_times)
        end_of_road = cars.at_end_of_road.tolist()
        for i, info in enumerate(infos):
            rewards[i], terminated, truncated = self.cores[i].step(
                info, cte=info["cte"], hit=info["hit"], forward_vel=info["forward_vel"],
                progress=info["progress"], lap_count=info["lap_count"], end_of_road=end_of_road[i])
            info["TimeLimit.truncated"] = truncated and not terminated
            dones[i] = terminated or truncated
        obs = self._render_all()
        for car in np.flatnonzero(dones).tolist():  # SB3 auto-reset: keep the last frame, start anew
            infos[car]["terminal_observation"] = obs[car].copy()
            self.reset_car(car)
        return self._obs.copy(), rewards, dones, infos

    def _render_all(self) -> np.ndarray:
        """Every car's frame: one batched parallel call, or car by car on one thread.

        With ``render_threads == 1`` each car is drawn by the serial kernel (the single env's):
        as fast per frame as the batched kernel on one thread, and it never starts numba's
        parallel thread pool, whose idle OpenMP worker was measured spinning at 100% of a core
        next to torch, making the PPO learner in the same process 5-8x slower.
        """
        if self.render_threads == 1:
            for car in range(self.num_envs):
                self.sim.render(car, out=self._obs[car])
            return self._obs
        if self.render_threads is None:
            return self.sim.render_all(out=self._obs)
        before = numba.get_num_threads()
        numba.set_num_threads(min(self.render_threads, before))
        try:
            return self.sim.render_all(out=self._obs)
        finally:
            numba.set_num_threads(before)

    def close(self) -> None:
        """Nothing to release: the simulator lives in this process."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


#: The name of the single-track vector env this replaced.
DonkeyVecEnv = BatchedDonkeyEnv

__all__ = ["BatchedDonkeyEnv", "DonkeyVecEnv"]
