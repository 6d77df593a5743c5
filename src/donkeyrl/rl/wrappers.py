"""Gymnasium wrappers that each change one thing: actions, rewards, guards, observations.

Why separate small wrappers: the same stack must be rebuilt exactly for evaluation (see
:func:`donkeyrl.rl.envbuild.build_env`), and each piece is tested on its own. All wrappers read only
the documented info keys of ``donkeyrl.envs.make_env`` (``cte``, ``speed``, ``progress``,
``track_length``, ``lap_count``, ``last_lap_time``, ``hit``...), so they work on the embedded and the
real simulator alike.

Units: ``cte`` and ``progress`` are simulator units; ``speed`` is telemetry units/s (1 telemetry
unit = 8 simulator units).
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

log = logging.getLogger(__name__)

#: Simulator units per telemetry unit.
SIM_UNITS_PER_TELEMETRY_UNIT = 8.0
#: Fastest plausible car speed (simulator units/s): the embedded car tops out at 40 units/s and the
#: real simulator's "real max speed" is about 30 telemetry units/s only on long straights; a lap
#: faster than track_length / this speed is physically implausible.
MAX_PLAUSIBLE_SPEED = 60.0
REWARD_MODES = ("donkey", "speed", "progress")


# ----------------------------------------------------------------------------- actions


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
        if int(n_steer) != n_steer or n_steer < 2:
            raise ValueError(f"n_steer must be an integer >= 2 (left, right), got {n_steer!r}")
        if int(n_throttle) != n_throttle or n_throttle < 1:
            raise ValueError(f"n_throttle must be an integer >= 1, got {n_throttle!r}")
        box = env.action_space
        if not isinstance(box, spaces.Box) or box.shape != (2,):
            raise ValueError(f"DiscretizedAction needs a Box((2,)) action space, got {box}")
        self.n_steer, self.n_throttle = int(n_steer), int(n_throttle)
        self.steer_values = np.linspace(box.low[0], box.high[0], self.n_steer)
        if self.n_throttle == 1:
            self.throttle_values = np.array([(box.low[1] + box.high[1]) / 2.0])
        else:
            self.throttle_values = np.linspace(box.low[1], box.high[1], self.n_throttle)
        self.action_space = spaces.Discrete(self.n_steer * self.n_throttle)

    def action(self, action: Any) -> np.ndarray:
        """Index -> float32 (steering, throttle)."""
        index = int(np.asarray(action).reshape(-1)[0])
        if not 0 <= index < self.action_space.n:
            raise ValueError(f"action index {index} outside [0, {self.action_space.n})")
        i_steer, i_throttle = divmod(index, self.n_throttle)
        return np.array([self.steer_values[i_steer], self.throttle_values[i_throttle]],
                        dtype=np.float32)


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

    def action(self, action: Any) -> np.ndarray:
        a = np.asarray(action, dtype=np.float32).reshape(-1).copy()
        low, high = self.env.action_space.low, self.env.action_space.high
        a[0] = np.clip(a[0], low[0], high[0])
        a[1] = np.clip(a[1], max(self.throttle_min, low[1]), min(self.throttle_max, high[1]))
        return a


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
        self.max_step = float(max_delta) * float(box.high[0] - box.low[0])
        self._last = 0.0

    def reset(self, **kwargs: Any):
        self._last = 0.0
        return self.env.reset(**kwargs)

    def action(self, action: Any) -> np.ndarray:
        a = np.asarray(action, dtype=np.float32).reshape(-1).copy()
        a[0] = np.clip(a[0], self._last - self.max_step, self._last + self.max_step)
        self._last = float(a[0])
        return a


# ----------------------------------------------------------------------------- rewards


def _centring(cte: float, max_cte: float) -> float:
    """1 on the path, falling linearly to 0 at |cte| = max_cte (never negative)."""
    return max(0.0, 1.0 - abs(float(cte)) / max_cte)


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

    def step(self, action: Any):
        obs, _, terminated, truncated, info = self.env.step(action)
        if terminated:
            reward = -self.crash_penalty
        else:
            reward = float(info["speed"]) * _centring(info["cte"], self.max_cte)
        return obs, reward, terminated, truncated, info


class ProgressReward(gym.Wrapper):
    """Net forward progress along the centre line per step, scaled by centring; crash penalty.

    reward_t = (progress_t - progress_{t-1}) / 8 * (1 - |cte_t| / max_cte)   [telemetry units]
    reward on termination (off track / hit) = -crash_penalty

    ``info["progress"]`` is the env's forward-only arc length since reset: it never decreases, so
    driving backwards and forwards again, circling near the start, or oscillating sideways at the
    boundary earn nothing beyond the ground genuinely gained; re-crossing the start line does not
    reset it, so short "laps" earn nothing either. A per-step delta larger than a car can physically
    travel (``MAX_PLAUSIBLE_SPEED``, e.g. a teleport glitch) is ignored rather than rewarded.
    """

    def __init__(self, env: gym.Env, max_cte: float, crash_penalty: float = 1.0,
                 max_step_progress: float = MAX_PLAUSIBLE_SPEED * 0.05 * 2) -> None:
        super().__init__(env)
        if max_cte <= 0:
            raise ValueError(f"max_cte must be > 0, got {max_cte}")
        self.max_cte, self.crash_penalty = float(max_cte), float(crash_penalty)
        self.max_step_progress = float(max_step_progress)
        self._last_progress = 0.0

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._last_progress = float(info.get("progress", 0.0))
        return obs, info

    def step(self, action: Any):
        obs, _, terminated, truncated, info = self.env.step(action)
        progress = float(info["progress"])
        delta = max(0.0, progress - self._last_progress)
        self._last_progress = max(self._last_progress, progress)
        if delta > self.max_step_progress:
            log.debug("ignoring implausible progress jump of %.1f units", delta)
            delta = 0.0
        if terminated:
            reward = -self.crash_penalty
        else:
            reward = delta / SIM_UNITS_PER_TELEMETRY_UNIT * _centring(info["cte"], self.max_cte)
        return obs, reward, terminated, truncated, info


def wrap_reward(env: gym.Env, mode: str, max_cte: float, crash_penalty: float) -> gym.Env:
    """Applies the reward named ``mode`` (``donkey`` = the env's own reward, unchanged)."""
    if mode == "donkey":
        return env
    if mode == "speed":
        return SpeedReward(env, max_cte, crash_penalty)
    if mode == "progress":
        return ProgressReward(env, max_cte, crash_penalty)
    raise ValueError(f"unknown reward {mode!r}; valid: {', '.join(REWARD_MODES)}")


# ----------------------------------------------------------------------------- guards


class MinLapTimeGuard(gym.Wrapper):
    """Terminates the episode when a lap is completed implausibly fast (circling the start line).

    ``min_lap_time`` seconds; ``None`` = ``track_length / MAX_PLAUSIBLE_SPEED`` from the info dict
    (falls back to ``fallback_min_lap_time`` if the env does not report a track length).
    Sets ``info["terminated_reason"] = "short_lap"`` and gives ``-penalty``.
    """

    def __init__(self, env: gym.Env, min_lap_time: float | None = None, penalty: float = 1.0,
                 fallback_min_lap_time: float = 3.0) -> None:
        super().__init__(env)
        if min_lap_time is not None and min_lap_time < 0:
            raise ValueError(f"min_lap_time must be >= 0 or None, got {min_lap_time}")
        self.min_lap_time, self.penalty = min_lap_time, float(penalty)
        self.fallback = float(fallback_min_lap_time)
        self._laps = 0

    def threshold(self, info: dict[str, Any]) -> float:
        """The minimum plausible lap time (s) for the current track."""
        if self.min_lap_time is not None:
            return float(self.min_lap_time)
        length = info.get("track_length")
        return float(length) / MAX_PLAUSIBLE_SPEED if length else self.fallback

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._laps = int(info.get("lap_count", 0))
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        laps = int(info.get("lap_count", 0))
        if laps > self._laps:
            lap_time = float(info.get("last_lap_time", 0.0))
            if lap_time < self.threshold(info):
                log.info("lap of %.2f s is implausibly short: terminating", lap_time)
                info = dict(info, terminated_reason="short_lap")
                terminated, reward = True, -self.penalty
        self._laps = laps
        return obs, reward, terminated, truncated, info


# ----------------------------------------------------------------------------- observations


def preprocess_image(image: np.ndarray, width: int, height: int, grey: bool,
                     crop_top: float) -> np.ndarray:
    """Crop the top ``crop_top`` fraction of rows (sky), resize to height x width, optionally grey.

    Returns uint8 (height, width, 1 if grey else 3). Mirrors what the embedded renderer produces
    directly from ``CameraConfig(width, height, grey, crop_top)``.
    """
    if not 0.0 <= crop_top < 1.0:
        raise ValueError(f"crop_top must be in [0, 1), got {crop_top}")
    rows = image.shape[0]
    cropped = image[int(round(rows * crop_top)):]
    if cropped.shape[-1] == 1:
        cropped = cropped[..., 0]
    pil = Image.fromarray(np.ascontiguousarray(cropped))
    if grey and pil.mode != "L":
        pil = pil.convert("L")
    if pil.size != (width, height):
        pil = pil.resize((width, height), Image.BILINEAR)
    out = np.asarray(pil, dtype=np.uint8)
    if out.ndim == 2:
        out = out[..., None]
    return out


class ImagePreprocess(gym.ObservationWrapper):
    """Crop/resize/grey in numpy+pillow, for simulators that cannot render the small image."""

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


class ScalarRewardCheck(gym.Wrapper):
    """Raises on a non-finite reward so a broken reward fails loudly instead of training on NaN."""

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if not np.isfinite(float(reward)):
            raise FloatingPointError(f"non-finite reward {reward!r} (info: cte={info.get('cte')})")
        return obs, float(reward), terminated, truncated, info
