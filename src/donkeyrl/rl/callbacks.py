"""SB3 callbacks: periodic progress lines, divergence detection, and a periodic lap check.

Why callbacks: behaviour is added to SB3's own ``learn`` loop, never a forked training loop.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

log = logging.getLogger(__name__)


class DivergenceError(FloatingPointError):
    """The policy's parameters became NaN/inf: the trial diverged."""


class ProgressCallback(BaseCallback):
    """Every ``interval_sec`` reports steps, steps/s, mean episode reward and laps.

    ``report(line: str)`` receives the line (the CLI prints it; the default logs it). It also checks
    the policy parameters for NaN/inf at each report and raises :class:`DivergenceError`.
    """

    def __init__(self, interval_sec: float = 10.0, report: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.interval_sec = float(interval_sec)
        self.report = report or log.info
        self.episode_rewards: deque[float] = deque(maxlen=20)
        self.episode_laps: deque[int] = deque(maxlen=20)
        self.total_laps = 0
        self.episodes = 0
        self._t0 = self._last = 0.0

    def _on_training_start(self) -> None:
        self._t0 = self._last = time.perf_counter()

    def _on_step(self) -> bool:
        for info, done in zip(self.locals.get("infos", []), self.locals.get("dones", []), strict=False):
            if done:
                ep = info.get("episode")
                if ep is not None:
                    self.episode_rewards.append(float(ep["r"]))
                laps = int(info.get("lap_count", 0))
                self.episode_laps.append(laps)
                self.total_laps += laps
                self.episodes += 1
        now = time.perf_counter()
        if now - self._last >= self.interval_sec:
            self._last = now
            check_finite(self.model.policy)
            self.report(self.line(now))
        return True

    @property
    def steps_per_sec(self) -> float:
        elapsed = time.perf_counter() - self._t0
        return self.num_timesteps / elapsed if elapsed > 0 else 0.0

    def line(self, now: float | None = None) -> str:
        """One human-readable progress line."""
        mean_r = np.mean(self.episode_rewards) if self.episode_rewards else float("nan")
        max_laps = max(self.episode_laps) if self.episode_laps else 0
        return (f"steps {self.num_timesteps:>7d}  {self.steps_per_sec:6.0f} steps/s  "
                f"episodes {self.episodes:4d}  mean reward (last 20) {mean_r:8.2f}  "
                f"laps: total {self.total_laps} best-episode {max_laps}")


def check_finite(policy: torch.nn.Module) -> None:
    """Raises DivergenceError if any parameter of ``policy`` is NaN or inf."""
    for name, p in policy.named_parameters():
        if not torch.isfinite(p).all():
            raise DivergenceError(f"parameter {name} became non-finite: training diverged")


class LapCheckCallback(BaseCallback):
    """Every ``every_steps`` env steps evaluates the policy and stops training once it laps.

    ``evaluate()`` returns a dict with ``laps`` (and whatever else, e.g. lap_times); when
    ``laps >= 1`` the wall-clock and step count are recorded in ``self.lapped_at`` and, if
    ``stop_on_lap``, training stops. Evaluation time is excluded from ``train_sec``.
    """

    def __init__(self, every_steps: int, evaluate: Callable[[], dict[str, Any]],
                 stop_on_lap: bool = True) -> None:
        super().__init__()
        self.every_steps = int(every_steps)
        self.evaluate = evaluate
        self.stop_on_lap = stop_on_lap
        self.lapped_at: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self._next = self.every_steps
        self._t0 = 0.0
        self.eval_sec = 0.0

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next:
            return True
        self._next += self.every_steps
        t_eval = time.perf_counter()
        result = self.evaluate()
        self.eval_sec += time.perf_counter() - t_eval
        wall = time.perf_counter() - self._t0
        record = dict(result, steps=self.num_timesteps, wall_sec=wall,
                      train_sec=wall - self.eval_sec)
        self.history.append(record)
        log.info("lap check at %d steps: %s", self.num_timesteps, record)
        if result.get("laps", 0) >= 1 and self.lapped_at is None:
            self.lapped_at = record
            return not self.stop_on_lap
        return True

