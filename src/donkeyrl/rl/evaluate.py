"""Evaluate a policy with SB3's ``evaluate_policy`` on the trial's own wrapper stack.

Why here and not in the CLI: ``donkeyrl train`` (after training) and ``donkeyrl evaluate`` (any saved
model, any track) must evaluate identically: the env is rebuilt from the saved TrialConfig through
:func:`donkeyrl.rl.envbuild.build_vec_env`, and driving metrics come from the DrivingMetrics wrapper
inside that stack (formula of driving_score: see :mod:`donkeyrl.rl.metrics`). Evaluation runs one
single env (``vec_env="dummy"``) whichever path trained the model: the batched training path gives
the same observations, rewards and infos as single envs (tests/rl/test_batched_training.py).
"""

from __future__ import annotations

import functools
import logging
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy

from donkeyrl.rl.agents import load_agent
from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.envbuild import EnvFactory, build_vec_env, metrics_wrappers
from donkeyrl.rl.metrics import summarise

log = logging.getLogger(__name__)

#: Seed offset of evaluation episodes, so they never replay a training episode's seed.
EVAL_SEED_OFFSET = 10_000


class ModelLoadError(ValueError):
    """A model file is missing, corrupt, or has no trial config beside it."""


def evaluate(model: BaseAlgorithm, cfg: TrialConfig, *, episodes: int, tracks: Sequence[str] | None = None,
             seed: int | None = None, env_factory: EnvFactory | None = None,
             deterministic: bool = True,
             on_episode: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Runs ``episodes`` evaluation episodes of ``model`` on ``tracks`` (default: training tracks),
    always in the tracks' own look (no domain randomisation, whatever the model trained with).

    Returns mean_reward, std_reward, episode_rewards, episode_lengths, per-episode metrics under
    ``episodes`` and the aggregate driving metrics (driving_score, completion, laps, ...).
    ``on_episode(i, reward)`` is called for every episode (the CLI prints them).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    # Always the tracks' own look: a model trained with domain randomisation is judged in the
    # world it must drive (the real simulator's look), and every driver of a comparison in the
    # same one. Evaluating in the training distribution hid that such a model could not drive it.
    cfg = cfg.replace(domain_randomization=False)
    eval_seed = (cfg.seed if seed is None else seed) + EVAL_SEED_OFFSET
    venv = build_vec_env(cfg, n_envs=1, tracks=tracks, seed=eval_seed, env_factory=env_factory,
                         vec_env="dummy")
    try:
        venv.seed(eval_seed)
        rewards, lengths = evaluate_policy(model, venv, n_eval_episodes=episodes,
                                           deterministic=deterministic, return_episode_rewards=True,
                                           warn=False)
        assert isinstance(rewards, list) and isinstance(lengths, list)  # return_episode_rewards=True
        recorded = metrics_wrappers(venv)[0].episodes[:episodes]
    finally:
        venv.close()
    for i, r in enumerate(rewards):
        log.info("evaluation episode %d: reward %.3f, %d steps", i + 1, r, lengths[i])
        if on_episode is not None:
            on_episode(i, float(r))
    out: dict[str, Any] = {
        "mean_reward": float(np.mean(rewards)),
        "std_reward": float(np.std(rewards)),
        "episode_rewards": [float(r) for r in rewards],
        "episode_lengths": [int(n) for n in lengths],
    }
    out.update(summarise(recorded))
    out["episodes"] = [e.to_dict() for e in recorded]
    return out


def load_trained(model_path: str | Path) -> tuple[BaseAlgorithm, TrialConfig]:
    """Loads ``model.zip`` and the TrialConfig beside it; ModelLoadError with the reason if not."""
    path = Path(model_path)
    if path.is_dir():
        path = path / "model.zip"
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"model file {path} is not a saved SB3 model (not a zip archive)")
    try:
        cfg = TrialConfig.load(path)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"cannot rebuild the env of {path}: {exc}") from None
    try:
        model = load_agent(cfg.agent, str(path))
    except Exception as exc:
        raise ModelLoadError(f"model file {path} could not be loaded as {cfg.agent}: "
                             f"{type(exc).__name__}: {exc}") from None
    return model, cfg


@functools.lru_cache(maxsize=64)
def expert_lap_time(track: str) -> float | None:
    """The scripted expert's lap time on ``track`` (s), driven on the embedded simulator.

    None when the track is open (no laps) or the expert does not lap (see
    :func:`donkeyrl.sim.expert.expert_lap_time`). A comparison figure must never fail an
    evaluation, so errors are logged, not raised.
    """
    from donkeyrl.sim import expert
    from donkeyrl.sim.tracks import get_track

    try:
        return expert.expert_lap_time(get_track(track))
    except Exception as exc:
        log.warning("expert lap time for %s unavailable: %s", track, exc)
    return None
