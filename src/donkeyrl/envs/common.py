"""The step core every DonkeyCar environment shares: episode limits, classify, reward, info.

Why one module: the built-in env (:mod:`donkeyrl.envs.embedded`), the batched env
(:mod:`donkeyrl.envs.vector`) and the real-simulator env (:mod:`donkeyrl.envs.unity`) must give
the same numbers for the same driving, so an agent, a reward wrapper or a metric cannot tell which
simulator produced them. Each env only reads its simulator (positions, cte, progress, laps) and
hands the quantities to :class:`EpisodeCore` (watchdog, step limit, classify, reward) and
:func:`step_info` (the ``info`` dict); the image goes through :func:`fit_image` where the simulator
cannot draw the requested camera directly.

Units (see :mod:`donkeyrl.units`): ``cte``, ``progress`` and track lengths are simulator units;
``speed``, ``forward_vel``, ``pos`` and ``vel`` in ``info`` are telemetry units (simulator units /
``TELEMETRY_SCALE``), as gym-donkeycar reports them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from donkeyrl.units import CONTROL_PERIOD_SEC, TELEMETRY_SCALE

__all__ = ["TELEMETRY_SCALE", "EpisodeCore", "EpisodeLimits", "ProgressWatchdog", "auto_max_steps",
           "classify_step", "donkey_reward", "fit_image", "step_info", "validate_action", "yaw_degrees"]

#: Slow reference speed (simulator units/s) of the automatic step limit: 1.5 track lengths at it.
AUTO_LIMIT_SPEED = 4.0
#: Bounds of the automatic step limit (control steps).
AUTO_LIMIT_STEPS = (1000, 6000)


def donkey_reward(cte: float, forward_vel: float, hit: str, done: bool, max_cte: float) -> float:
    """The DonkeyCar simulator's default reward (gym-donkeycar ``calc_reward``), unchanged.

    ``forward_vel`` is in telemetry units, ``cte`` in simulator units. Order of the checks as in
    the reference: an ended episode gives -1, then |cte| > max_cte -1, a collision -2, forward
    motion (1 - |cte|/max_cte) * forward_vel, otherwise forward_vel itself.
    """
    if done:
        return -1.0
    if abs(cte) > max_cte:
        return -1.0
    if hit != "none":
        return -2.0
    if forward_vel > 0.0:
        return (1.0 - abs(cte) / max_cte) * forward_vel
    return forward_vel


class ProgressWatchdog:
    """Ends episodes that stop making progress along the track.

    The reference environment has no time limit and no stuck detection, so a parked, reversing or
    circling car runs forever (field lessons). This watchdog looks at forward-only progress: if it
    grew by less than ``min_progress`` units over the last ``window_steps`` steps, the car is stuck.
    """

    def __init__(self, window_steps: int = 100, min_progress: float = 1.0) -> None:
        if window_steps < 1:
            raise ValueError(f"window_steps must be >= 1, got {window_steps}")
        if not min_progress > 0:
            raise ValueError(f"min_progress must be > 0, got {min_progress}")
        self.window_steps = window_steps
        self.min_progress = min_progress
        self._history: deque[float] = deque(maxlen=window_steps + 1)

    def reset(self, progress: float = 0.0) -> None:
        """Start watching a new episode."""
        self._history.clear()
        self._history.append(progress)

    def update(self, progress: float) -> bool:
        """Record this step's progress; True when the car is stuck."""
        self._history.append(progress)
        if len(self._history) <= self.window_steps:
            return False
        return self._history[-1] - self._history[0] < self.min_progress


@dataclass
class EpisodeLimits:
    """Limits every episode obeys, whichever simulator runs it."""

    #: |cte| (sim units) above which the episode terminates (gym-donkeycar default 8.0).
    max_cte: float = 8.0
    #: Steps after which the episode is truncated; None = chosen from the track length.
    max_steps: int | None = None
    #: Watchdog window (steps) and the progress (units) the car must make in it.
    stuck_steps: int = 100
    stuck_progress: float = 1.0
    #: Truncate after this many completed laps (None = no limit).
    max_laps: int | None = None

    def check(self) -> None:
        """ValueError naming the bad value (called by every env before any work)."""
        if not self.max_cte > 0:
            raise ValueError(f"max_cte must be > 0, got {self.max_cte!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps!r}")
        if self.max_laps is not None and self.max_laps < 1:
            raise ValueError(f"max_laps must be >= 1 or None, got {self.max_laps!r}")


def auto_max_steps(track_length: float, control_dt: float = CONTROL_PERIOD_SEC) -> int:
    """Step limit for a track: 1.5 track lengths at a slow 4 units/s, within [1000, 6000] steps."""
    lo, hi = AUTO_LIMIT_STEPS
    return int(min(hi, max(lo, math.ceil(1.5 * track_length / AUTO_LIMIT_SPEED / control_dt))))


def yaw_degrees(yaw_rad: float) -> float:
    """Unity-style euler yaw in degrees, 0..360."""
    return math.degrees(yaw_rad) % 360.0


def classify_step(cte: float, hit: str, stuck: bool, end_of_road: bool, lap_count: int, steps: int,
                  max_steps: int, limits: EpisodeLimits) -> tuple[str | None, str | None]:
    """(terminated_reason, truncated_reason) of a step; at most one is not None.

    Terminations are failures (``hit``, ``cte``); truncations are limits (``stuck``,
    ``end_of_road``, ``max_laps``, ``step_limit``), checked in that order.
    """
    if hit != "none":
        return "hit", None
    if abs(cte) > limits.max_cte:
        return "cte", None
    if stuck:
        return None, "stuck"
    if end_of_road:
        return None, "end_of_road"
    if limits.max_laps is not None and lap_count >= limits.max_laps:
        return None, "max_laps"
    if steps >= max_steps:
        return None, "step_limit"
    return None, None


class EpisodeCore:
    """One car's episode bookkeeping and the outcome of each of its steps.

    Every env calls :meth:`start` on reset and :meth:`step` once per control step with what its
    simulator reports; the core counts steps, runs the watchdog, classifies the step, computes the
    DonkeyCar reward and writes ``terminated_reason`` / ``truncated_reason`` into ``info``.
    """

    def __init__(self, limits: EpisodeLimits) -> None:
        self.limits = limits
        self.watchdog = ProgressWatchdog(limits.stuck_steps, limits.stuck_progress)
        self.steps = 0
        self.max_steps = 0

    def start(self, track_length: float | None) -> None:
        """A new episode on a track of ``track_length`` units (None: unknown, 2000-step limit)."""
        self.steps = 0
        if self.limits.max_steps is not None:
            self.max_steps = self.limits.max_steps
        else:
            self.max_steps = auto_max_steps(track_length) if track_length is not None else 2000
        self.watchdog.reset(0.0)

    def step(self, info: dict[str, Any], *, cte: float, hit: str, forward_vel: float, progress: float,
             lap_count: int, end_of_road: bool) -> tuple[float, bool, bool]:
        """(reward, terminated, truncated) of the step just simulated; annotates ``info``.

        ``forward_vel`` in telemetry units, ``cte`` and ``progress`` in simulator units.
        """
        self.steps += 1
        stuck = self.watchdog.update(progress)
        term, trunc = classify_step(cte, hit, stuck, end_of_road, lap_count, self.steps, self.max_steps,
                                    self.limits)
        reward = donkey_reward(cte, forward_vel, hit, term is not None, self.limits.max_cte)
        if term:
            info["terminated_reason"] = term
        if trunc:
            info["truncated_reason"] = trunc
        return float(reward), term is not None, trunc is not None


def step_info(*, pos: tuple[float, float, float], cte: float, speed: float, forward_vel: float, hit: str,
              lap_count: int, last_lap_time: float, lap_times: Sequence[float], gyro: tuple[float, float, float],
              accel: tuple[float, float, float], vel: tuple[float, float, float],
              car: tuple[float, float, float], progress: float, track_length: float, off_track: bool,
              track: str, time: float, steering: float, throttle: float, heading_error: float) -> dict[str, Any]:
    """The ``info`` dict of every env: the gym-donkeycar keys plus what the track tells exactly.

    Telemetry units: ``pos``, ``speed``, ``forward_vel``, ``vel``, ``accel``; simulator units:
    ``cte``, ``progress``, ``track_length``; degrees: ``car`` (roll, pitch, yaw); seconds: ``time``
    (since the reset), lap times; radians: ``heading_error`` (car heading minus path heading).
    """
    return {
        "pos": pos, "cte": cte, "speed": speed, "forward_vel": forward_vel, "hit": hit,
        "lap_count": lap_count, "last_lap_time": last_lap_time, "gyro": gyro, "accel": accel, "vel": vel,
        "car": car, "progress": progress, "track_length": track_length, "off_track": off_track,
        "lap_times": list(lap_times), "track": track, "time": time, "steering": steering,
        "throttle": throttle, "heading_error": heading_error,
    }


def validate_action(action: Any, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The (steering, throttle) action as floats, clipped to [low, high].

    Finite values outside the box are clipped (the DonkeyCar simulator clamps too); a wrong shape,
    NaN or inf raises ValueError naming the value, since those are bugs in the caller.
    """
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (2,):
        raise ValueError(f"action must have shape (2,) = (steering, throttle), got shape {a.shape}: {action!r}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action must be finite, got {a.tolist()}")
    return np.clip(a, low, high)


def fit_image(img: np.ndarray, width: int, height: int, grey: bool, crop_top: float) -> np.ndarray:
    """Crop the top ``crop_top`` of the rows (sky), resize to height x width, optionally grey.

    The one image preprocessing for simulators that cannot draw the requested camera themselves
    (the built-in renderer draws it directly, see :class:`donkeyrl.sim.camera.CameraConfig`).
    Returns a writeable uint8 (height, width, 1 if grey else 3) array.
    """
    from PIL import Image  # lazy: only the simulators that send full frames need it

    if not 0.0 <= crop_top < 1.0:
        raise ValueError(f"crop_top must be in [0, 1), got {crop_top}")
    cut = int(round(crop_top * img.shape[0]))
    img = img[cut:]
    pil = Image.fromarray(np.ascontiguousarray(img[..., 0] if img.shape[-1] == 1 else img))
    if grey and pil.mode != "L":
        pil = pil.convert("L")
    if pil.size != (width, height):
        pil = pil.resize((width, height), Image.Resampling.BILINEAR)
    out = np.asarray(pil, dtype=np.uint8)
    if out.ndim == 2:
        out = out[..., None]
    if not grey and out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=2)
    return out if out.flags.writeable else out.copy()  # PIL arrays are read-only; torch warns
