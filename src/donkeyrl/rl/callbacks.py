"""SB3 callbacks: progress lines + learning curve + driving metrics, divergence detection, lap checks,
validation checkpoints for early stopping (the progress file, rl/checkpoints.py).

Why callbacks: behaviour is added to SB3's own ``learn`` loop, never a forked training loop.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

log = logging.getLogger(__name__)

#: Training episodes over which the progress line, the curve and the logs average.
WINDOW = 20


class DivergenceError(FloatingPointError):
    """The policy's parameters became NaN/inf: the trial diverged."""


class ProgressCallback(BaseCallback):
    """Every ``interval_sec`` reports steps, steps/s, mean episode reward and laps.

    At each report it also
    - calls ``report(line: str)`` (the CLI prints it; the default logs it),
    - appends one point to the learning curve ``curve_path`` (if given; see :mod:`donkeyrl.rl.train`),
    - records ``driving/*`` metrics of the training episodes in the model's SB3 logger and dumps it
      (TensorBoard, when the trainer configured it; a no-op logger otherwise),
    - checks the policy parameters for NaN/inf and raises :class:`DivergenceError`.

    The final point of the curve is written when training ends.

    Driving metrics come from the documented info keys of every step (``cte``, ``speed``,
    ``lap_count``, ``last_lap_time``), so they work with any env stack and any VecEnv:
    ``driving/mean_abs_cte`` and ``driving/mean_speed`` average over the steps since the previous
    report, ``driving/laps_total`` and ``driving/episodes`` count from the start, lap times are
    those completed since the previous report.
    """

    def __init__(self, interval_sec: float = 10.0, report: Callable[[str], None] | None = None,
                 curve_path: str | Path | None = None) -> None:
        super().__init__()
        self.interval_sec = float(interval_sec)
        self.report = report or log.info
        self.curve_path = Path(curve_path) if curve_path is not None else None
        self.episode_rewards: deque[float] = deque(maxlen=WINDOW)
        self.episode_laps: deque[int] = deque(maxlen=WINDOW)
        self.total_laps = 0
        self.episodes = 0
        self._t0 = self._last = 0.0
        self._abs_cte_sum = self._speed_sum = 0.0
        self._window_steps = 0
        self._lap_times: list[float] = []
        self._laps_seen: list[int] = []

    def _on_training_start(self) -> None:
        self._t0 = self._last = time.perf_counter()
        if self.curve_path is not None:
            self.curve_path.write_text("")  # the curve of the model saved beside it, one per run

    def _on_step(self) -> bool:
        infos = self.locals.get("infos", [])
        dones = self.locals.get("dones", [])
        if len(self._laps_seen) != len(infos):
            self._laps_seen = [0] * len(infos)
        for i, (info, done) in enumerate(zip(infos, dones)):
            self._abs_cte_sum += abs(float(info.get("cte", 0.0)))
            self._speed_sum += float(info.get("speed", 0.0))
            laps = int(info.get("lap_count", 0))
            if laps > self._laps_seen[i]:
                self._lap_times.append(float(info.get("last_lap_time", 0.0)))
            self._laps_seen[i] = laps
            if done:
                ep = info.get("episode")
                if ep is not None:
                    self.episode_rewards.append(float(ep["r"]))
                self.episode_laps.append(laps)
                self.total_laps += laps
                self.episodes += 1
                self._laps_seen[i] = 0
        self._window_steps += len(infos)
        now = time.perf_counter()
        if now - self._last >= self.interval_sec:
            self._last = now
            check_finite(self.model.policy)
            self.report(self.line(now))
            self._write_point(now)
            self._log_driving()
        return True

    def _on_training_end(self) -> None:
        self._write_point(time.perf_counter())

    @property
    def steps_per_sec(self) -> float:
        elapsed = time.perf_counter() - self._t0
        return self.num_timesteps / elapsed if elapsed > 0 else 0.0

    @property
    def mean_reward(self) -> float | None:
        """Mean reward of the last ``WINDOW`` training episodes (None before the first)."""
        return float(np.mean(self.episode_rewards)) if self.episode_rewards else None

    @property
    def best_episode_laps(self) -> int:
        """Most laps driven in one of the last ``WINDOW`` training episodes."""
        return max(self.episode_laps) if self.episode_laps else 0

    def point(self, now: float | None = None) -> dict[str, Any]:
        """One learning-curve point (the keys documented in :mod:`donkeyrl.rl.train`)."""
        now = time.perf_counter() if now is None else now
        return {"steps": int(self.num_timesteps), "time_sec": round(now - self._t0, 3),
                "episodes": self.episodes, "mean_reward": self.mean_reward,
                "laps_total": self.total_laps, "best_episode_laps": self.best_episode_laps}

    def _write_point(self, now: float) -> None:
        if self.curve_path is None:
            return
        with self.curve_path.open("a") as fh:
            fh.write(json.dumps(self.point(now)) + "\n")

    def _log_driving(self) -> None:
        """Records this window's driving metrics in the SB3 logger and dumps them."""
        logger = self.model.logger
        n = max(self._window_steps, 1)
        values: dict[str, float | None] = {
            "driving/episodes": self.episodes, "driving/laps_total": self.total_laps,
            "driving/best_episode_laps": self.best_episode_laps, "driving/mean_reward": self.mean_reward,
            "driving/mean_abs_cte": self._abs_cte_sum / n, "driving/mean_speed": self._speed_sum / n,
            "driving/mean_lap_time": float(np.mean(self._lap_times)) if self._lap_times else None,
            "driving/best_lap_time": min(self._lap_times) if self._lap_times else None,
        }
        for key, value in values.items():
            if value is not None:
                logger.record(key, value)
        logger.dump(self.num_timesteps)
        self._abs_cte_sum = self._speed_sum = 0.0
        self._window_steps = 0
        self._lap_times = []

    def line(self, now: float | None = None) -> str:
        """One human-readable progress line."""
        mean_r = self.mean_reward
        return (f"steps {self.num_timesteps:>7d}  {self.steps_per_sec:6.0f} steps/s  "
                f"episodes {self.episodes:4d}  mean reward (last {WINDOW}) "
                f"{float('nan') if mean_r is None else mean_r:8.2f}  "
                f"laps: total {self.total_laps} best-episode {self.best_episode_laps}")


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



class ValidationCheckpointCallback(BaseCallback):
    """Races the model on the validation set at a few fractions of the training budget and appends
    the scores to the progress file (see :mod:`donkeyrl.rl.checkpoints`), saving the model first.

    ``validate(model)`` returns the trainer's validation result (``race_score`` and
    ``validation_lap_rate`` among its keys; ``train.validation_result``). The file is emptied when
    training starts. The race runs on envs of its own, so the training envs and their episode
    bookkeeping are untouched; its time counts in ``time_sec`` (it is real wall time the trial
    spends).
    """

    def __init__(self, total_timesteps: int, fractions: Sequence[float], path: str | Path,
                 validate: Callable[[BaseAlgorithm], dict[str, Any]], model_path: str | Path | None = None) -> None:
        super().__init__()
        from donkeyrl.rl.checkpoints import checkpoint_steps
        self.checkpoints = checkpoint_steps(total_timesteps, fractions)
        self.path = Path(path)
        self.validate = validate
        self.model_path = Path(model_path) if model_path is not None else None
        self._next = 0
        self._t0 = 0.0

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()
        self.path.write_text("")

    def _on_step(self) -> bool:
        if self._next >= len(self.checkpoints) or self.num_timesteps < self.checkpoints[self._next][0]:
            return True
        from donkeyrl.rl.checkpoints import ProgressPoint, append_progress
        _, fraction = self.checkpoints[self._next]
        self._next += 1
        check_finite(self.model.policy)
        if self.model_path is not None:
            _save_atomic(self.model, self.model_path)
        result = self.validate(self.model)
        point = ProgressPoint(steps=int(self.num_timesteps), fraction=fraction,
                              race_score=_finite_or_none(result.get("race_score")),
                              validation_lap_rate=_finite_or_none(result.get("validation_lap_rate")),
                              time_sec=round(time.perf_counter() - self._t0, 3))
        append_progress(self.path, point)
        log.info("checkpoint at %d steps (%.0f%% of training): race score %s", point.steps,
                 100 * fraction, point.race_score)
        return True


def _finite_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if np.isfinite(value) else None


def _save_atomic(model: BaseAlgorithm, path: Path) -> None:
    """``model.save`` to a temporary name, then rename: a reader never sees half a zip."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.zip")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def validation_checkpoints(cfg: Any, save_dir: Path, validate: Callable[[BaseAlgorithm], dict[str, Any]],
                           model_name: str = "model.zip") -> list[BaseCallback]:
    """The trainer's checkpoint callback for ``cfg`` (a list of one), or [] when the trial runs no
    validation race or no checkpoint fraction is in force (a stale progress file is removed then).
    """
    from donkeyrl.rl.checkpoints import PROGRESS_NAME, checkpoint_fractions
    path = Path(save_dir) / PROGRESS_NAME
    fractions = checkpoint_fractions() if getattr(cfg, "validation", False) else ()
    if not fractions:
        path.unlink(missing_ok=True)
        return []
    return [ValidationCheckpointCallback(cfg.timesteps, fractions, path, validate, Path(save_dir) / model_name)]
