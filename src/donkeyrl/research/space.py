"""Default search spaces per agent and loading of ``--search-space`` JSON files.

Default spaces (every name reaches ``donkeyrl train`` as ``--name-with-dashes VALUE``):

========== ===================================== ===================================
parameter  ppo / dqn                             sac
========== ===================================== ===================================
learning_rate float, log, [1e-5, 3e-3]            float, log, [1e-5, 3e-3]
timesteps  int, [--min-timesteps, --max-timesteps] (fixed when min == max)
n_steer    int, [3, 9]  (discrete steering bins)  - (continuous actions)
n_throttle int, [1, 5]  (discrete throttle bins)  -
gamma      float, [0.9, 0.999]                    float, [0.9, 0.999]
n_steps    ppo: categorical 64, 128, 256, 512     -
ent_coef   ppo: float, log, [1e-4, 0.05]          -
batch_size ppo: 32, 64, 128; dqn: 32, 64, 128     64, 128, 256
========== ===================================== ===================================

PPO is searched on the discrete (n_steer x n_throttle) action grid (``actions`` fixed to
``discrete``), so that the discretisation parameters reach the trainer; for continuous PPO pass
a search space file with ``"actions": {"type": "fixed", "value": "continuous"}`` and no
n_steer / n_throttle.

Why these: the previous system found the learning rate and the discretisation (n_steer: 3 bins
drove more decisively than 4) to matter most; timesteps trade trial time for quality; gamma,
batch size and PPO's rollout length / entropy bonus are the key agent knobs.

A ``--search-space`` file holds the ``SearchSpace.from_dict`` form, e.g.
``{"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": true}}``.
If it does not define ``timesteps``, the ``[min, max]`` range is added. Parameters the controller
sets itself (``RESERVED``) are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from donkeyrl.bo import SearchSpace, SearchSpaceError

__all__ = ["AGENTS", "RESERVED", "default_space", "load_space", "timesteps_spec"]

AGENTS = ("ppo", "dqn", "sac")

RESERVED = ("save_dir", "result_file", "seed", "track", "eval_episodes")
"""Flags the controller passes itself; a search space may not define them."""

_COMMON: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 3e-3, "log": True},
    "gamma": {"type": "float", "low": 0.9, "high": 0.999},
}
_DISCRETE: dict[str, dict[str, Any]] = {
    "n_steer": {"type": "int", "low": 3, "high": 9},
    "n_throttle": {"type": "int", "low": 1, "high": 5},
}
_AGENT: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {
        "actions": {"type": "fixed", "value": "discrete"},
        **_DISCRETE,
        "n_steps": {"type": "categorical", "choices": [64, 128, 256, 512]},
        "ent_coef": {"type": "float", "low": 1e-4, "high": 0.05, "log": True},
        "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
    },
    "dqn": {**_DISCRETE, "batch_size": {"type": "categorical", "choices": [32, 64, 128]}},
    "sac": {"batch_size": {"type": "categorical", "choices": [64, 128, 256]}},
}


def timesteps_spec(min_timesteps: int, max_timesteps: int) -> dict[str, Any]:
    """The ``timesteps`` parameter for ``[min, max]``; raises ValueError on a bad range."""
    for name, v in (("min_timesteps", min_timesteps), ("max_timesteps", max_timesteps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if min_timesteps > max_timesteps:
        raise ValueError(f"min_timesteps={min_timesteps} must be <= max_timesteps={max_timesteps}")
    if min_timesteps == max_timesteps:
        return {"type": "fixed", "value": min_timesteps}
    return {"type": "int", "low": min_timesteps, "high": max_timesteps}


def default_space(agent: str, min_timesteps: int = 5000,
                  max_timesteps: int = 20000) -> SearchSpace:
    """The documented default space of ``agent`` (one of ``AGENTS``)."""
    if agent not in _AGENT:
        raise ValueError(f"unknown agent {agent!r}; valid agents are {list(AGENTS)}")
    spec = {"learning_rate": _COMMON["learning_rate"],
            "timesteps": timesteps_spec(min_timesteps, max_timesteps)}
    spec.update(_AGENT[agent])
    spec["gamma"] = _COMMON["gamma"]
    return SearchSpace.from_dict(spec)


def load_space(path: str | Path, min_timesteps: int = 5000,
               max_timesteps: int = 20000) -> SearchSpace:
    """Load a ``--search-space`` JSON file; every error names the file and what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SearchSpaceError(f"cannot read search space file {path}: {exc.strerror}") from exc
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SearchSpaceError(f"search space file {path} is not valid JSON: {exc.msg} at line "
                               f"{exc.lineno} column {exc.colno}") from exc
    if not isinstance(spec, dict) or not spec:
        raise SearchSpaceError(f"search space file {path} must hold a non-empty JSON object "
                               '{"name": {"type": ...}, ...}, got ' f"{type(spec).__name__}")
    bad = sorted(set(spec) & set(RESERVED))
    if bad:
        raise SearchSpaceError(f"search space file {path} defines {bad}, which the controller "
                               f"sets itself (reserved: {list(RESERVED)})")
    if "timesteps" not in spec:
        spec["timesteps"] = timesteps_spec(min_timesteps, max_timesteps)
    try:
        return SearchSpace.from_dict(spec)
    except SearchSpaceError as exc:
        raise SearchSpaceError(f"search space file {path}: {exc}") from exc
