"""One training trial: build env + agent from a TrialConfig, learn, save, evaluate, report.

Read top to bottom: :func:`run_trial` is the whole trial. It never raises for a failed trial: a
divergence, a lost simulator or any error becomes ``run_status`` + a one-line ``message`` in the
returned result (the research controller records it and carries on); invalid configs raise
ValueError before anything runs. :func:`check_trial` builds the env and the model once without
training (``donkeyrl train --check``).

Files written to the save directory:

- ``model.zip``: the SB3 model; ``trial_config.json``: its :class:`~donkeyrl.rl.config.TrialConfig`.
- ``curve.jsonl``: the learning curve, one JSON object per progress report and one when training
  ends (rewritten by each run into the directory, like the model beside it)::

      {"steps": 12288, "time_sec": 30.0, "episodes": 41, "mean_reward": 12.5,
       "laps_total": 3, "best_episode_laps": 1}

  ``steps``: environment steps so far (all envs); ``time_sec``: wall-clock seconds since training
  started; ``episodes``: training episodes finished; ``mean_reward``: mean reward of the last 20
  episodes (null before the first); ``laps_total``: laps driven in all training episodes;
  ``best_episode_laps``: most laps in one of the last 20 episodes.

- ``progress.jsonl``: the validation race's scores at a few fractions of the training budget,
  one line per checkpoint, for early stopping in a study (only with ``validation`` and when the
  study asks for checkpoints; format and settings in :mod:`donkeyrl.rl.checkpoints`)::

      {"steps": 5000, "fraction": 0.25, "race_score": 23.4, "validation_lap_rate": 0.1, "time_sec": 41.2}

With ``tensorboard_dir``, the run logs to ``tensorboard_dir/<save dir name>`` (so a study that
passes one directory to every trial gets its trial-N runs side by side): SB3's own ``rollout/`` and
``train/`` metrics, ``driving/`` metrics of the training episodes at each progress report
(see :class:`~donkeyrl.rl.callbacks.ProgressCallback`) and ``eval/`` metrics of the final
evaluation (mean_reward, std_reward, driving_score, completion, laps, best_lap_time,
mean_abs_cte, mean_speed).
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import configure

from donkeyrl.rl.agents import build_agent
from donkeyrl.rl.callbacks import DivergenceError, ProgressCallback, check_finite, validation_checkpoints
from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.envbuild import EnvFactory, build_vec_env
from donkeyrl.rl.evaluate import evaluate
from donkeyrl.rl.finetune import init_weights, load_init

log = logging.getLogger(__name__)

MODEL_NAME = "model.zip"
CURVE_NAME = "curve.jsonl"
#: Longest failure message kept in a result (characters).
MAX_MESSAGE = 300
#: Final-evaluation results logged to TensorBoard under ``eval/``.
EVAL_KEYS = ("mean_reward", "std_reward", "driving_score", "completion", "laps", "best_lap_time",
             "mean_abs_cte", "mean_speed")


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


def check_writable_dir(path: str | Path, what: str) -> None:
    """ValueError unless directory ``path`` exists writable or could be created (creates nothing)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{what} {p} is not a directory")
    existing = p
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{what} {p} cannot be created: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {p} is not writable ({existing} is not writable)")


def check_result_file(path: str | Path) -> None:
    """ValueError unless ``path`` can be written as a file (not a directory; its folder writable)."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"result file {p} is a directory; give a file path, e.g. {p / 'result.json'}")
    if p.exists() and not os.access(p, os.W_OK):
        raise ValueError(f"result file {p} is not writable")
    check_writable_dir(p.parent, "result file directory")


def classify_failure(exc: BaseException) -> str:
    """run_status for an exception raised while training or evaluating."""
    if isinstance(exc, (DivergenceError, FloatingPointError)) or \
            re.search(r"\bnan\b|invalid values", str(exc).lower()):
        return "diverged"
    if isinstance(exc, (ConnectionError, TimeoutError, BrokenPipeError, EOFError)):
        return "sim_disconnected"
    return "error"


def failure_message(exc: BaseException) -> str:
    """One informative line: the exception type and the first line of its message, trimmed.

    Torch's distribution checks put whole tensors into their messages (hundreds of lines for a
    diverged policy); the first line says what failed, the numbers after it do not belong in a
    trial record.
    """
    text = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else ""
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_trial(cfg: TrialConfig, *, env_factory: EnvFactory | None = None) -> str:
    """Builds the trial's env and model once, closes them, and describes them in one line.

    Raises whatever building raises (the CLI turns it into one error line); trains nothing.
    """
    venv = build_vec_env(cfg, env_factory=env_factory)
    try:
        model = build_agent(cfg, venv)
        if cfg.init_model:
            init_weights(model, load_init(cfg.init_model, cfg), cfg.init_model)
        n_params = sum(p.numel() for p in model.policy.parameters())
        obs_shape = "x".join(str(d) for d in venv.observation_space.shape or ())
        space = venv.action_space
        actions = f"discrete {getattr(space, 'n', '?')} ({cfg.n_steer} steer x {cfg.n_throttle} throttle)" \
            if cfg.discrete else f"continuous {space.shape}"
        return (f"{cfg.agent} ({type(model).__name__}, {n_params} parameters, device {model.device}) on "
                f"{', '.join(cfg.tracks)}: {venv.num_envs} env(s), observation {obs_shape}, actions "
                f"{actions}, {cfg.timesteps} timesteps")
    finally:
        venv.close()


def run_trial(cfg: TrialConfig, save_dir: str | Path, *, env_factory: EnvFactory | None = None,
              report: Callable[[str], None] | None = None, progress_interval_sec: float = 10.0,
              callbacks: list[Any] | None = None, tensorboard_dir: str | Path | None = None) -> dict[str, Any]:
    """Trains, saves ``save_dir/model.zip`` + ``trial_config.json``, evaluates; returns the result.

    ``report`` receives progress lines and per-episode evaluation lines (the CLI prints them).
    ``callbacks`` are extra SB3 callbacks (e.g. a lap check for benchmarks). ``tensorboard_dir``:
    log to ``tensorboard_dir/<save_dir name>`` (see the module docstring).
    """
    out_dir = check_save_dir(save_dir)
    say = report or log.info
    result: dict[str, Any] = {"params": cfg.to_dict(), "seed": cfg.seed, "run_status": "ok",
                              "message": "", "model_path": None, "mean_reward": None,
                              "std_reward": None, "episode_rewards": [], "driving_score": None,
                              "train_steps_per_sec": None, "elapsed_sec": None}
    t0 = time.perf_counter()
    venv = None
    model: BaseAlgorithm | None = None
    try:
        venv = build_vec_env(cfg, env_factory=env_factory)
        model = build_agent(cfg, venv)
        if cfg.init_model:
            init_weights(model, load_init(cfg.init_model, cfg), cfg.init_model)
        if tensorboard_dir is not None:
            run_dir = Path(tensorboard_dir) / out_dir.resolve().name
            model.set_logger(configure(str(run_dir), ["tensorboard"]))
            result["tensorboard_dir"] = str(run_dir)
        progress = ProgressCallback(progress_interval_sec, say, curve_path=out_dir / CURVE_NAME)
        t_learn = time.perf_counter()
        checkpoints = validation_checkpoints(cfg, out_dir, lambda m: validation_result(m, cfg, say), MODEL_NAME)
        model.learn(total_timesteps=cfg.timesteps, callback=[progress, *checkpoints, *(callbacks or [])],
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
        cfg.save(out_dir)
        result["model_path"] = str(model_path)
        result["curve_path"] = str(out_dir / CURVE_NAME)
        venv.close()
        venv = None
        if cfg.eval_episodes > 0:
            ev = evaluate(model, cfg, episodes=cfg.eval_episodes, env_factory=env_factory,
                          on_episode=lambda i, r: say(f"eval episode {i + 1}: reward {r:.3f}"))
            if not math.isfinite(ev["mean_reward"]):
                raise DivergenceError(f"evaluation reward is {ev['mean_reward']}")
            result.update(ev)
            _log_evaluation(model, ev)
        if cfg.validation:
            result.update(validation_result(model, cfg, say))
    except Exception as exc:
        result["run_status"] = classify_failure(exc)
        result["message"] = failure_message(exc)
        log.warning("trial failed (%s): %s", result["run_status"], result["message"],
                    exc_info=log.isEnabledFor(logging.DEBUG))
    finally:
        if venv is not None:
            venv.close()
        if model is not None:
            model.logger.close()
    result["elapsed_sec"] = time.perf_counter() - t0
    return _json_safe(result)


def validation_result(model: BaseAlgorithm, cfg: TrialConfig, say: Callable[[str], None]) -> dict[str, Any]:
    """Races ``model`` on the validation set: ``race_score`` (the mean) and the ``validation`` summary.

    Always on the built-in simulator (the validation set's procedural tracks exist only there).
    """
    from donkeyrl.rl.race import race_tracks, summarise_races
    from donkeyrl.sim.tracksets import validation_tracks

    def show(r: Any) -> None:
        lap = f"flying lap {r.flying_lap_time:.2f} s (expert {r.expert_lap_time:.2f} s)" if r.lapped else \
            f"not lapped ({r.end_reason}, completion {r.completion:.2f})"
        say(f"validation {r.track}: {lap}, |cte| {r.mean_abs_cte:.2f}, race score {r.race_score:.1f}")

    race_cfg = cfg.replace(sim="embedded") if cfg.sim != "embedded" else cfg
    summary = summarise_races(race_tracks(model, race_cfg, validation_tracks(), seed=cfg.seed, on_track=show))
    say(f"validation race score {summary['race_score']:.2f} (lap rate {summary['lap_rate']:.0%})")
    out = {"race_score": summary["race_score"], "validation": summary}
    for key in ("lap_rate", "mean_lap_time_ratio", "lap_time_ratio_penalised", "mean_abs_cte"):
        out[f"validation_{key}"] = summary.get(key)
    return out


def _log_evaluation(model: BaseAlgorithm, ev: dict[str, Any]) -> None:
    """Records the final evaluation under ``eval/`` at the last training step."""
    for key in EVAL_KEYS:
        value = ev.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            model.logger.record(f"eval/{key}", float(value))
    model.logger.dump(model.num_timesteps)


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
