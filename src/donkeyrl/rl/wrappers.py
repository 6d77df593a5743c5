"""Wrappers that each change one thing: actions, rewards, guards, observations; per env and per batch.

Why separate small wrappers: the same stack must be rebuilt exactly for evaluation (see
:func:`donkeyrl.rl.envbuild.build_env`), and each piece is tested on its own. All wrappers read only
the documented info keys of ``donkeyrl.envs.make_env`` (``cte``, ``speed``, ``progress``,
``track_length``, ``lap_count``, ``last_lap_time``, ``hit``...), so they work on the built-in and the
real simulator alike.

Two forms of each: a Gymnasium wrapper around one env, here (evaluation, the per-env training path,
any simulator), and a ``VecEnv`` wrapper around a batch of cars in :mod:`donkeyrl.rl.vecwrappers`
(the batched training path over :class:`~donkeyrl.envs.vector.BatchedDonkeyEnv`). Both call the
same array functions below
(:func:`grid_actions`, :func:`clamp_actions`, :func:`limit_steering`, :func:`speed_reward`,
:func:`progress_reward`, :func:`short_lap`), a gym wrapper with one car, so the two paths give the
same numbers bit for bit (tests/rl/test_batched_training.py). This module imports neither torch
nor Stable-Baselines3 (the reward modes are declared once, in :mod:`donkeyrl.rl.config`).

Units: ``cte`` and ``progress`` are simulator units; ``speed`` is telemetry units/s (see
:mod:`donkeyrl.units`).
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from donkeyrl.rl.config import REWARD_MODES
from donkeyrl.units import CONTROL_PERIOD_SEC, MAX_PLAUSIBLE_SPEED, TELEMETRY_SCALE

log = logging.getLogger(__name__)

#: Largest progress (units) one step may add before it counts as a glitch: twice what the fastest
#: plausible car drives in a control period.
MAX_STEP_PROGRESS = MAX_PLAUSIBLE_SPEED * CONTROL_PERIOD_SEC * 2
#: Minimum lap time (s) when neither min_lap_time nor the track length is known.
FALLBACK_MIN_LAP_TIME = 3.0


# ============================================================================= array functions
# One row per car. A gym wrapper passes one row; a VecEnv wrapper the whole batch.


def grid_steps(box: spaces.Box, n_steer: int, n_throttle: int) -> tuple[np.ndarray, np.ndarray]:
    """(steering values, throttle values) of the discrete grid over a (steering, throttle) Box."""
    if int(n_steer) != n_steer or n_steer < 2:
        raise ValueError(f"n_steer must be an integer >= 2 (left, right), got {n_steer!r}")
    if int(n_throttle) != n_throttle or n_throttle < 1:
        raise ValueError(f"n_throttle must be an integer >= 1, got {n_throttle!r}")
    if not isinstance(box, spaces.Box) or box.shape != (2,):
        raise ValueError(f"the discrete grid needs a Box((2,)) action space, got {box}")
    steer = np.linspace(box.low[0], box.high[0], int(n_steer))
    if n_throttle == 1:
        throttle = np.array([(box.low[1] + box.high[1]) / 2.0])
    else:
        throttle = np.linspace(box.low[1], box.high[1], int(n_throttle))
    return steer, throttle


def grid_actions(index: np.ndarray, steer_values: np.ndarray, throttle_values: np.ndarray) -> np.ndarray:
    """Grid indices (n,) -> float32 (n, 2) (steering, throttle); steering-major layout."""
    index = np.asarray(index).reshape(-1).astype(np.int64)
    n_cells = len(steer_values) * len(throttle_values)
    bad = (index < 0) | (index >= n_cells)
    if bad.any():
        raise ValueError(f"action index {int(index[bad][0])} outside [0, {n_cells})")
    i_steer, i_throttle = np.divmod(index, len(throttle_values))
    return np.stack([steer_values[i_steer], throttle_values[i_throttle]], axis=1).astype(np.float32)


def clamp_actions(actions: np.ndarray, low: np.ndarray, high: np.ndarray, throttle_min: float,
                  throttle_max: float) -> np.ndarray:
    """float32 (n, 2) actions with steering in [low, high] and throttle in the clamp range."""
    a = np.array(actions, dtype=np.float32).reshape(-1, 2)
    a[:, 0] = np.clip(a[:, 0], low[0], high[0])
    a[:, 1] = np.clip(a[:, 1], max(throttle_min, low[1]), min(throttle_max, high[1]))
    return a


def limit_steering(actions: np.ndarray, last: np.ndarray, max_step: float) -> np.ndarray:
    """float32 (n, 2) actions whose steering moved at most ``max_step`` from ``last`` (n,).

    Updates ``last`` in place to the steering applied.
    """
    a = np.array(actions, dtype=np.float32).reshape(-1, 2)
    a[:, 0] = np.clip(a[:, 0], last - max_step, last + max_step)
    last[:] = a[:, 0]
    return a


def centring(cte: np.ndarray, max_cte: float) -> np.ndarray:
    """1 on the path, falling linearly to 0 at |cte| = max_cte (never negative)."""
    return np.maximum(0.0, 1.0 - np.abs(cte) / max_cte)


def speed_reward(speed: np.ndarray, cte: np.ndarray, terminated: np.ndarray, max_cte: float,
                 crash_penalty: float) -> np.ndarray:
    """``speed * centring``, ``-crash_penalty`` on termination (see :class:`SpeedReward`)."""
    return np.where(terminated, -crash_penalty, speed * centring(cte, max_cte))


def progress_reward(progress: np.ndarray, cte: np.ndarray, terminated: np.ndarray, last: np.ndarray,
                    max_cte: float, crash_penalty: float, max_step_progress: float) -> np.ndarray:
    """Net new progress (telemetry units) x centring, ``-crash_penalty`` on termination (see
    :class:`ProgressReward`). Updates ``last`` (n,), the most progress seen, in place."""
    delta = np.maximum(0.0, progress - last)
    last[:] = np.maximum(last, progress)
    jump = delta > max_step_progress
    if jump.any():
        log.debug("ignoring implausible progress jumps of %s units", delta[jump].tolist())
        delta = np.where(jump, 0.0, delta)
    return np.where(terminated, -crash_penalty, delta / TELEMETRY_SCALE * centring(cte, max_cte))


def min_lap_time(min_lap: float | None, track_length: float | None) -> float:
    """The shortest plausible lap (s): ``min_lap`` if given, else the track length at
    MAX_PLAUSIBLE_SPEED (FALLBACK_MIN_LAP_TIME when the env reports no length)."""
    if min_lap is not None:
        return float(min_lap)
    return float(track_length) / MAX_PLAUSIBLE_SPEED if track_length else FALLBACK_MIN_LAP_TIME


def short_lap(info: dict[str, Any], laps_before: int, min_lap: float | None) -> bool:
    """True when this step completed a lap faster than :func:`min_lap_time`."""
    laps = int(info.get("lap_count", 0))
    if laps <= laps_before:
        return False
    lap_time = float(info.get("last_lap_time", 0.0))
    if lap_time < min_lap_time(min_lap, info.get("track_length")):
        log.info("lap of %.2f s is implausibly short: terminating", lap_time)
        return True
    return False


def check_reward(reward: Any, info: dict[str, Any]) -> float:
    """The reward as a float; FloatingPointError when it is NaN or inf."""
    value = float(reward)
    if not np.isfinite(value):
        raise FloatingPointError(f"non-finite reward {reward!r} (info: cte={info.get('cte')})")
    return value


# ============================================================================= one env (Gymnasium)


class DiscretizedAction(gym.ActionWrapper):
    """Maps ``Discrete(n_steer * n_throttle)`` onto a (steering, throttle) grid.

    Index layout is steering-major: ``index = i_steer * n_throttle + i_throttle``; steering values
    are ``linspace(-steer_limit, steer_limit, n_steer)`` and throttle values
    ``linspace(throttle_min, throttle_max, n_throttle)`` taken from the wrapped action space (with
    ``n_throttle == 1`` the single throttle is the middle of the range, so the car still moves).
    TC-001: n_steer=5, n_throttle=3 on [-1,1]x[0,1]: index 7 -> (0.0, 0.5).
    """

    def __init__(self, env: gym.Env, n_steer: int, n_throttle: int) -> None:
        super().__init__(env)
        box = env.action_space
        if not isinstance(box, spaces.Box):
            raise ValueError(f"DiscretizedAction needs a Box((2,)) action space, got {box}")
        self.steer_values, self.throttle_values = grid_steps(box, n_steer, n_throttle)
        self.n_steer, self.n_throttle = int(n_steer), int(n_throttle)
        self.action_space = spaces.Discrete(self.n_steer * self.n_throttle)

    def action(self, action: Any) -> np.ndarray:
        """Index -> float32 (steering, throttle)."""
        index = np.asarray(action).reshape(-1)[:1]
        return grid_actions(index, self.steer_values, self.throttle_values)[0]


class ThrottleClamp(gym.ActionWrapper):
    """Clips throttle into [throttle_min, throttle_max] (and steering into the action bounds).

    Why: on hills a multiplicative reward collapses when the car slows, and a policy that learns to
    stop never recovers; a minimum throttle keeps it moving (field lessons). make_env already bounds
    the action space; this makes the guard hold for any policy output, e.g. unclipped samples.
    """

    def __init__(self, env: gym.Env, throttle_min: float, throttle_max: float) -> None:
        super().__init__(env)
        if not throttle_min <= throttle_max:
            raise ValueError(f"throttle_min {throttle_min} must be <= throttle_max {throttle_max}")
        self.throttle_min, self.throttle_max = float(throttle_min), float(throttle_max)
        box = env.action_space
        assert isinstance(box, spaces.Box)
        self.low, self.high = box.low, box.high

    def action(self, action: Any) -> np.ndarray:
        return clamp_actions(action, self.low, self.high, self.throttle_min, self.throttle_max)[0]


class SteeringRateLimit(gym.ActionWrapper):
    """Limits the change of steering per step to ``max_delta`` (fraction of the full range 2).

    Why: the fastest published DonkeyCar learner clipped the steering change per step to 0.15 of
    the range for smooth driving; without it pixel policies steer bang-bang. Applied to the action
    the env receives, so discrete and continuous agents alike are smoothed.
    """

    def __init__(self, env: gym.Env, max_delta: float) -> None:
        super().__init__(env)
        if not 0.0 < max_delta <= 1.0:
            raise ValueError(f"steer_rate_limit must be in (0, 1] (fraction of the range), got {max_delta}")
        box = env.action_space
        assert isinstance(box, spaces.Box)
        self.max_step = float(max_delta) * float(box.high[0] - box.low[0])
        self._last = np.zeros(1)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._last[:] = 0.0
        return self.env.reset(**kwargs)

    def action(self, action: Any) -> np.ndarray:
        return limit_steering(action, self._last, self.max_step)[0]


class SpeedReward(gym.Wrapper):
    """The original spec's shaping: ``speed * (1 - |cte| / max_cte)`` (speed in telemetry units/s).

    A crash (``terminated``) gives ``-crash_penalty`` instead. Known to be farmable by boundary
    oscillation and circling; kept because the spec asks for it (``--reward-shaping``).
    """

    def __init__(self, env: gym.Env, max_cte: float, crash_penalty: float = 1.0) -> None:
        super().__init__(env)
        if max_cte <= 0:
            raise ValueError(f"max_cte must be > 0, got {max_cte}")
        self.max_cte, self.crash_penalty = float(max_cte), float(crash_penalty)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        reward = speed_reward(np.array([float(info["speed"])]), np.array([float(info["cte"])]),
                              np.array([terminated]), self.max_cte, self.crash_penalty)
        return obs, float(reward[0]), terminated, truncated, info


class ProgressReward(gym.Wrapper):
    """Net forward progress along the centre line per step, scaled by centring; crash penalty.

    reward_t = (progress_t - progress_{t-1}) / 8 * (1 - |cte_t| / max_cte)   [telemetry units]
    reward on termination (off track / hit) = -crash_penalty

    ``info["progress"]`` is the env's forward-only arc length since reset: it never decreases, so
    driving backwards and forwards again, circling near the start, or oscillating sideways at the
    boundary earn nothing beyond the ground genuinely gained; re-crossing the start line does not
    reset it, so short "laps" earn nothing either. A per-step delta larger than a car can physically
    travel (``MAX_STEP_PROGRESS``, e.g. a teleport glitch) is ignored rather than rewarded.
    """

    def __init__(self, env: gym.Env, max_cte: float, crash_penalty: float = 1.0,
                 max_step_progress: float = MAX_STEP_PROGRESS) -> None:
        super().__init__(env)
        if max_cte <= 0:
            raise ValueError(f"max_cte must be > 0, got {max_cte}")
        self.max_cte, self.crash_penalty = float(max_cte), float(crash_penalty)
        self.max_step_progress = float(max_step_progress)
        self._last = np.zeros(1)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._last[:] = float(info.get("progress", 0.0))
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        reward = progress_reward(np.array([float(info["progress"])]), np.array([float(info["cte"])]),
                                 np.array([terminated]), self._last, self.max_cte, self.crash_penalty,
                                 self.max_step_progress)
        return obs, float(reward[0]), terminated, truncated, info


def wrap_reward(env: gym.Env, mode: str, max_cte: float, crash_penalty: float) -> gym.Env:
    """Applies the reward named ``mode`` (``donkey`` = the env's own reward, unchanged)."""
    if mode == "donkey":
        return env
    if mode == "speed":
        return SpeedReward(env, max_cte, crash_penalty)
    if mode == "progress":
        return ProgressReward(env, max_cte, crash_penalty)
    raise ValueError(f"unknown reward {mode!r}; valid: {', '.join(REWARD_MODES)}")


class MinLapTimeGuard(gym.Wrapper):
    """Terminates the episode when a lap is completed implausibly fast (circling the start line).

    ``min_lap_time`` seconds; ``None`` = ``track_length / MAX_PLAUSIBLE_SPEED`` from the info dict
    (falls back to ``fallback_min_lap_time`` if the env does not report a track length).
    Sets ``info["terminated_reason"] = "short_lap"`` and gives ``-penalty``.
    """

    def __init__(self, env: gym.Env, min_lap_time: float | None = None, penalty: float = 1.0) -> None:
        super().__init__(env)
        if min_lap_time is not None and min_lap_time < 0:
            raise ValueError(f"min_lap_time must be >= 0 or None, got {min_lap_time}")
        self.min_lap_time, self.penalty = min_lap_time, float(penalty)
        self._laps = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._laps = int(info.get("lap_count", 0))
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if short_lap(info, self._laps, self.min_lap_time):
            info = dict(info, terminated_reason="short_lap")
            terminated, reward = True, -self.penalty
        self._laps = int(info.get("lap_count", 0))
        return obs, reward, terminated, truncated, info


class ScalarRewardCheck(gym.Wrapper):
    """Raises on a non-finite reward so a broken reward fails loudly instead of training on NaN."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, check_reward(reward, info), terminated, truncated, info


def preprocess_image(image: np.ndarray, width: int, height: int, grey: bool,
                     crop_top: float) -> np.ndarray:
    """Crop the top ``crop_top`` fraction of rows (sky), resize to height x width, optionally grey
    (:func:`donkeyrl.envs.common.fit_image`). Mirrors what the built-in renderer draws directly
    from ``CameraConfig(width, height, grey, crop_top)``."""
    from donkeyrl.envs.common import fit_image  # lazy: keeps this module free of the simulator

    return fit_image(image, width, height, grey, crop_top)


class ImagePreprocess(gym.ObservationWrapper):
    """Crop/resize/grey in numpy+pillow, for envs whose simulator cannot draw the small image."""

    def __init__(self, env: gym.Env, width: int, height: int, grey: bool, crop_top: float) -> None:
        super().__init__(env)
        if width < 8 or height < 8:
            raise ValueError(f"image must be at least 8x8, got {width}x{height}")
        if not 0.0 <= crop_top < 1.0:
            raise ValueError(f"crop_top must be in [0, 1), got {crop_top}")
        self.width, self.height, self.grey, self.crop_top = int(width), int(height), grey, crop_top
        channels = 1 if grey else 3
        self.observation_space = spaces.Box(0, 255, (self.height, self.width, channels), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return preprocess_image(observation, self.width, self.height, self.grey, self.crop_top)
