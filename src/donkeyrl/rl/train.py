"""One training trial: build env + agent from a TrialConfig, learn, save, evaluate, report.

Read top to bottom: :func:`run_trial` is the whole trial. It never raises for a failed trial: a
divergence, a lost simulator or any error becomes ``run_status`` + ``message`` in the returned
result (the research controller records it and carries on); invalid configs raise ValueError before
anything runs.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from donkeyrl.rl.agents import build_agent
from donkeyrl.rl.callbacks import DivergenceError, ProgressCallback, check_finite
from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.envbuild import EnvFactory, build_vec_env
from donkeyrl.rl.evaluate import evaluate

log = logging.getLogger(__name__)

MODEL_NAME = "model.zip"


def check_save_dir(save_dir: str | Path) -> Path:
    """Creates ``save_dir`` if needed and proves it is writable; ValueError otherwise."""
    path = Path(save_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"save dir {path} is not writable: {exc.strerror or exc}") from None
    return path


def classify_failure(exc: BaseException) -> str:
    """run_status for an exception raised while training or evaluating."""
    if isinstance(exc, (DivergenceError, FloatingPointError)) or \
            re.search(r"\bnan\b", str(exc).lower()):
        return "diverged"
    if isinstance(exc, (ConnectionError, TimeoutError, BrokenPipeError, EOFError)):
        return "sim_disconnected"
    return "error"


def run_trial(cfg: TrialConfig, save_dir: str | Path, *, env_factory: EnvFactory | None = None,
              report: Callable[[str], None] | None = None, progress_interval_sec: float = 10.0,
              callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Trains, saves ``save_dir/model.zip`` + ``trial_config.json``, evaluates; returns the result.

    ``report`` receives progress lines and per-episode evaluation lines (the CLI prints them).
    ``callbacks`` are extra SB3 callbacks (e.g. a lap check for benchmarks).
    """
    rcfg = cfg.resolved()
    out_dir = check_save_dir(save_dir)
    say = report or log.info
    result: dict[str, Any] = {"params": rcfg.to_dict(), "seed": rcfg.seed, "run_status": "ok",
                              "message": "", "model_path": None, "mean_reward": None,
                              "std_reward": None, "episode_rewards": [], "driving_score": None,
                              "train_steps_per_sec": None, "elapsed_sec": None}
    t0 = time.perf_counter()
    venv = None
    model: BaseAlgorithm | None = None
    try:
        venv = build_vec_env(rcfg, env_factory=env_factory)
        model = build_agent(rcfg, venv)
        progress = ProgressCallback(progress_interval_sec, say)
        t_learn = time.perf_counter()
        model.learn(total_timesteps=rcfg.timesteps, callback=[progress, *(callbacks or [])],
                    progress_bar=False)
        learn_sec = time.perf_counter() - t_learn
        result["train_steps_per_sec"] = model.num_timesteps / learn_sec if learn_sec > 0 else None
        result["train_timesteps"] = int(model.num_timesteps)
        result["train_episodes"] = progress.episodes
        result["train_laps"] = progress.total_laps
        say(progress.line())
        check_finite(model.policy)
        model_path = out_dir / MODEL_NAME
        model.save(model_path)
        rcfg.save(out_dir)
        result["model_path"] = str(model_path)
        venv.close()
        venv = None
        if rcfg.eval_episodes > 0:
            ev = evaluate(model, rcfg, episodes=rcfg.eval_episodes, env_factory=env_factory,
                          on_episode=lambda i, r: say(f"eval episode {i + 1}: reward {r:.3f}"))
            if not math.isfinite(ev["mean_reward"]):
                raise DivergenceError(f"evaluation reward is {ev['mean_reward']}")
            result.update(ev)
    except Exception as exc:
        result["run_status"] = classify_failure(exc)
        result["message"] = f"{type(exc).__name__}: {exc}"
        log.warning("trial failed (%s): %s", result["run_status"], result["message"],
                    exc_info=log.isEnabledFor(logging.DEBUG))
    finally:
        if venv is not None:
            venv.close()
    result["elapsed_sec"] = time.perf_counter() - t0
    return _json_safe(result)


def _json_safe(obj: Any) -> Any:
    """Replaces NaN/inf by None and numpy scalars by Python ones, recursively."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
