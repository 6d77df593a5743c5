"""Pieces shared by every DonkeyCar environment (embedded simulator and real simulator client).

Keeping the reward, the watchdog and the info dictionary here is what makes the two simulators
interchangeable behind ``make_env``: an agent, a reward wrapper or a metric sees the same numbers
whichever simulator produced them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

#: 1 telemetry unit = 8 simulator units (the real simulator divides positions and speeds by 8).
TELEMETRY_SCALE = 8.0


def donkey_reward(cte: float, forward_vel: float, hit: str, done: bool, max_cte: float) -> float:
    """The DonkeyCar simulator's default reward (gym-donkeycar ``calc_reward``), unchanged.

    ``forward_vel`` is in telemetry units (sim units / 8), ``cte`` in simulator units. Order of the
    checks as in the reference: an ended episode gives -1, then |cte| > max_cte -1, a collision -2,
    forward motion (1 - |cte|/max_cte) * forward_vel, otherwise forward_vel itself.
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


def auto_max_steps(track_length: float, control_dt: float = 0.05) -> int:
    """Step limit for a track: 1.5 track lengths at a slow 4 units/s, within [1000, 6000] steps."""
    return int(min(6000, max(1000, math.ceil(1.5 * track_length / 4.0 / control_dt))))


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
