"""Per-episode driving metrics, a reward-hacking flag and the reward-independent driving_score.

Why a wrapper: it sees every step's info dict of every episode (training and evaluation alike)
without touching SB3's loop; ``evaluate_policy`` then only drives the episodes.

driving_score (per episode, 0..100; the trial's score is the mean over episodes):

    completion = min(progress / track_length, 1)            net forward progress, one lap = 1
    centring   = max(0, 1 - mean|cte| / max_cte)             how close to the path it drove
    pace       = min(mean_speed / REFERENCE_SPEED, 1)        mean speed vs 4 telemetry units/s
    driving_score = 100 * completion * centring * (0.5 + 0.5 * pace)

It uses only the simulator's geometry (progress, cte, speed), never the training reward, so trials
trained with different rewards compare fairly. Progress is forward-only, so circling scores ~0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from donkeyrl.rl.wrappers import min_lap_time
from donkeyrl.units import CONTROL_PERIOD_SEC, TELEMETRY_SCALE

#: Telemetry units/s at which the pace term saturates (the embedded car's top speed is 5).
REFERENCE_SPEED = 4.0
#: Odometer / progress ratio above which a car that drove a fair distance is "going in circles".
CIRCLING_RATIO = 3.0


@dataclass
class EpisodeMetrics:
    """What one episode's driving looked like (lengths in simulator units, times in s)."""

    track: str = ""
    reward: float = 0.0
    steps: int = 0
    progress: float = 0.0
    distance: float = 0.0
    track_length: float = 0.0
    completion: float = 0.0
    laps: int = 0
    lap_times: list[float] = field(default_factory=list)
    mean_abs_cte: float = 0.0
    max_abs_cte: float = 0.0
    mean_speed: float = 0.0
    steering_oscillation: float = 0.0
    off_track_count: int = 0
    hit_count: int = 0
    end_reason: str = ""
    short_laps: int = 0
    driving_score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def driving_score(completion: float, mean_abs_cte: float, mean_speed: float, max_cte: float) -> float:
    """The documented 0..100 score (see module docstring)."""
    centring = max(0.0, 1.0 - mean_abs_cte / max_cte)
    pace = min(max(mean_speed, 0.0) / REFERENCE_SPEED, 1.0)
    return 100.0 * min(max(completion, 0.0), 1.0) * centring * (0.5 + 0.5 * pace)


class EpisodeRecorder:
    """Accumulates one car's steps into :class:`EpisodeMetrics`; finished episodes in ``episodes``.

    Shared by the per-env wrapper (:class:`DrivingMetrics`) and the batch wrapper
    (:class:`donkeyrl.rl.vecwrappers.VecDrivingMetrics`, one recorder per car), so both record the
    same numbers.
    ``min_lap_time``: laps faster than this (s) count as ``short_laps`` (a hacking signature).
    """

    def __init__(self, max_cte: float, min_lap_time: float | None = None) -> None:
        self.max_cte = float(max_cte)
        self.min_lap_time = min_lap_time
        self.episodes: list[EpisodeMetrics] = []
        self.start({})

    def start(self, info: dict[str, Any]) -> None:
        """A new episode whose reset info is ``info``."""
        self._m = EpisodeMetrics(track=str(info.get("track", "")))
        self._start_progress = float(info.get("progress", 0.0))
        self._last_time = float(info.get("time", 0.0))
        self._last_steer: float | None = None
        self._abs_cte_sum = self._speed_sum = self._steer_change_sum = 0.0
        self._was_off = False
        self._laps0 = int(info.get("lap_count", 0))

    def add(self, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        """One step's outcome; closes the episode when it ended."""
        m = self._m
        m.steps += 1
        m.reward += float(reward)
        if not m.track:
            m.track = str(info.get("track", ""))
        cte = abs(float(info.get("cte", 0.0)))
        self._abs_cte_sum += cte
        m.max_abs_cte = max(m.max_abs_cte, cte)
        speed = float(info.get("speed", 0.0))
        self._speed_sum += speed
        t = float(info.get("time", self._last_time + CONTROL_PERIOD_SEC))
        m.distance += speed * TELEMETRY_SCALE * max(t - self._last_time, 0.0)
        self._last_time = t
        steer = float(info.get("steering", np.nan))
        if math.isfinite(steer):
            if self._last_steer is not None:
                self._steer_change_sum += abs(steer - self._last_steer)
            self._last_steer = steer
        off = bool(info.get("off_track", False))
        if off and not self._was_off:
            m.off_track_count += 1
        self._was_off = off
        if str(info.get("hit", "none")) not in ("none", ""):
            m.hit_count += 1
        m.progress = float(info.get("progress", 0.0)) - self._start_progress
        m.track_length = float(info.get("track_length", 0.0))
        laps = int(info.get("lap_count", 0)) - self._laps0
        if laps > m.laps:
            lap_time = float(info.get("last_lap_time", 0.0))
            m.lap_times.append(lap_time)
            if lap_time < min_lap_time(self.min_lap_time, m.track_length):
                m.short_laps += 1
        m.laps = max(m.laps, laps)
        if terminated or truncated:
            m.end_reason = str(info.get("terminated_reason") or info.get("truncated_reason")
                               or ("terminated" if terminated else "truncated"))
            self._finish()

    def _finish(self) -> None:
        m = self._m
        n = max(m.steps, 1)
        m.mean_abs_cte = self._abs_cte_sum / n
        m.mean_speed = self._speed_sum / n
        m.steering_oscillation = self._steer_change_sum / max(n - 1, 1)
        m.completion = min(m.progress / m.track_length, 1.0) if m.track_length > 0 else 0.0
        m.driving_score = driving_score(m.completion, m.mean_abs_cte, m.mean_speed, self.max_cte)
        self.episodes.append(m)
        self._m = EpisodeMetrics(track=m.track)


class DrivingMetrics(gym.Wrapper):
    """Records :class:`EpisodeMetrics` for every finished episode in ``self.episodes``.

    ``min_lap_time``: laps faster than this (s) count as ``short_laps`` (a hacking signature).
    """

    def __init__(self, env: gym.Env, max_cte: float, min_lap_time: float | None = None) -> None:
        super().__init__(env)
        self.recorder = EpisodeRecorder(max_cte, min_lap_time)

    @property
    def episodes(self) -> list[EpisodeMetrics]:
        return self.recorder.episodes

    @property
    def max_cte(self) -> float:
        return self.recorder.max_cte

    @property
    def min_lap_time(self) -> float | None:
        return self.recorder.min_lap_time

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.recorder.start(info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.recorder.add(float(reward), terminated, truncated, info)
        return obs, reward, terminated, truncated, info


def hacking_reasons(episodes: list[EpisodeMetrics]) -> list[str]:
    """Signatures of reward hacking seen in the field; empty when none applies.

    - short laps (start-line circling),
    - driving in circles: odometer > CIRCLING_RATIO x net progress after a quarter track length,
    - the circling signature of the old system: high positive reward with coefficient of variation
      under 1% while completing less than half the track.
    """
    reasons = []
    if any(e.short_laps for e in episodes):
        reasons.append("implausibly short laps")
    for e in episodes:
        if e.track_length and e.distance > 0.25 * e.track_length and \
                e.distance > CIRCLING_RATIO * max(e.progress, 1e-9):
            reasons.append("drives far without progress (circling)")
            break
    rewards = np.array([e.reward for e in episodes])
    if len(rewards) >= 3 and rewards.mean() > 0:
        cv = rewards.std() / rewards.mean()
        if cv < 0.01 and np.mean([e.completion for e in episodes]) < 0.5 and \
                rewards.mean() / max(np.mean([e.steps for e in episodes]), 1) > 0.5:
            reasons.append("high reward, near-zero variance, little progress")
    return reasons


def summarise(episodes: list[EpisodeMetrics]) -> dict[str, Any]:
    """Aggregate driving metrics over episodes, as recorded in the result file."""
    if not episodes:
        return {"driving_score": 0.0, "episodes": [], "reward_hacking_flag": False,
                "reward_hacking_reasons": []}
    lap_times = [t for e in episodes for t in e.lap_times]
    reasons = hacking_reasons(episodes)
    return {
        "driving_score": float(np.mean([e.driving_score for e in episodes])),
        "completion": float(np.mean([e.completion for e in episodes])),
        "laps": float(np.mean([e.laps for e in episodes])),
        "total_laps": int(sum(e.laps for e in episodes)),
        "lap_times": lap_times,
        "best_lap_time": min(lap_times) if lap_times else None,
        "mean_abs_cte": float(np.mean([e.mean_abs_cte for e in episodes])),
        "max_abs_cte": float(max(e.max_abs_cte for e in episodes)),
        "mean_speed": float(np.mean([e.mean_speed for e in episodes])),
        "steering_oscillation": float(np.mean([e.steering_oscillation for e in episodes])),
        "off_track_count": int(sum(e.off_track_count for e in episodes)),
        "hit_count": int(sum(e.hit_count for e in episodes)),
        "distance": float(np.mean([e.distance for e in episodes])),
        "progress": float(np.mean([e.progress for e in episodes])),
        "episode_steps": [e.steps for e in episodes],
        "end_reasons": [e.end_reason for e in episodes],
        "reward_hacking_flag": bool(reasons),
        "reward_hacking_reasons": reasons,
    }
