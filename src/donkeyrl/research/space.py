"""Default search spaces per agent and loading of ``--search-space`` JSON files.

The default space of an agent is its registry entry's ``search_space``
(:data:`donkeyrl.rl.algorithms.REGISTRY`) plus ``timesteps`` in ``[--min-timesteps,
--max-timesteps]`` (fixed when min == max), placed right after ``learning_rate``, followed by
:data:`DRIVING_SPACE`, the knobs that decide whether a policy generalises and how fast it drives
(the same for every agent). The order of the parameters fixes their encoding, so a study's
proposals for a given seed stay the same. Every name reaches ``donkeyrl train`` as
``--name-with-dashes VALUE`` (tests/research/test_space_reaches_trainer.py proves, for every
parameter of every default space, that the value arrives in the built env or model).

Algorithm entries:

========== ============================================ ===================================
parameter  ppo / dqn                                    sac / tqc
========== ============================================ ===================================
learning_rate float, log, [1e-5, 3e-3]                  float, log, [1e-5, 3e-3]
timesteps  int, [--min-timesteps, --max-timesteps] (fixed when min == max)
n_steer    dqn: int, [3, 9]  (discrete steering bins)   - (continuous actions)
n_throttle dqn: int, [1, 5]  (discrete throttle bins)   -
gamma      float, [0.9, 0.999]                          float, [0.9, 0.999]
n_steps    ppo: categorical 64, 128, 256, 512           -
ent_coef   ppo: float, log, [1e-4, 0.05]                -
batch_size ppo: 32, 64, 128; dqn: 32, 64, 128           64, 128, 256
========== ============================================ ===================================

tqc also searches ``top_quantiles_to_drop_per_net`` (int, [0, 5]).

PPO is searched with continuous actions (measured better than the discrete grid on the calibrated
car, see the registry entry); for the grid pass a search space file with
``"actions": {"type": "fixed", "value": "discrete"}`` and n_steer / n_throttle.

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
from donkeyrl.rl.algorithms import AGENTS, REGISTRY

from .files import NotRegularFileError, read_regular
from .trialcmd import TRACK_PARAMS

__all__ = ["AGENTS", "DRIVING_SPACE", "RESERVED", "MAX_SPACE_BYTES", "default_space", "load_space",
           "timesteps_spec", "check_space_tracks", "fix_params"]

MAX_SPACE_BYTES = 16 << 20
"""Largest search space file read (a space is a few kilobytes)."""

RESERVED = ("save_dir", "result_file", "seed", "track", "eval_episodes")
"""Flags the controller passes itself; a search space may not define them."""

#: ``timesteps`` goes right after this parameter of a default space (first if it is absent).
_TIMESTEPS_AFTER = "learning_rate"

#: Generalisation and speed knobs searched for every agent (see the module docstring).
DRIVING_SPACE: dict[str, dict[str, Any]] = {
    "tracks": {"type": "categorical", "choices": ["mixed", "procedural", "catalogue"]},
    "domain_randomization": {"type": "categorical", "choices": [True, False]},
    "frame_stack": {"type": "int", "low": 1, "high": 4},
    "obs_width": {"type": "categorical", "choices": [48, 64, 96]},
    "obs_height": {"type": "categorical", "choices": [24, 32, 48]},
    "steer_rate_limit": {"type": "float", "low": 0.1, "high": 1.0},
    "throttle_min": {"type": "float", "low": -0.5, "high": 0.2},
    "throttle_max": {"type": "float", "low": 0.5, "high": 1.0},
    "reward": {"type": "categorical", "choices": ["progress", "speed"]},
    "crash_penalty": {"type": "float", "low": 0.1, "high": 10.0, "log": True},
    "net_width": {"type": "categorical", "choices": [32, 64, 128, 256]},
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
    """The documented default space of ``agent`` (one of ``AGENTS``), from its registry entry."""
    if agent not in REGISTRY:
        raise ValueError(f"unknown agent {agent!r}; valid agents are {list(AGENTS)}")
    registry_space = dict(REGISTRY[agent].search_space)
    spec: dict[str, Any] = {}
    if _TIMESTEPS_AFTER not in registry_space:
        spec["timesteps"] = timesteps_spec(min_timesteps, max_timesteps)
    for name, param in registry_space.items():
        spec[name] = dict(param)
        if name == _TIMESTEPS_AFTER:
            spec["timesteps"] = timesteps_spec(min_timesteps, max_timesteps)
    spec.update({name: dict(p) for name, p in DRIVING_SPACE.items()})
    return SearchSpace.from_dict(spec)


def load_space(path: str | Path, min_timesteps: int = 5000,
               max_timesteps: int = 20000) -> SearchSpace:
    """Load a ``--search-space`` JSON file; every error names the file and what is wrong.

    The file must be a regular UTF-8 file of at most ``MAX_SPACE_BYTES``: a FIFO is refused
    without opening it for a blocking read (it would hang the controller), a directory or a
    binary file gets one line naming it.
    """
    path = Path(path)
    try:
        text = read_regular(path, MAX_SPACE_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SearchSpaceError(f"search space file {path} is not UTF-8 text ({exc.reason} at "
                               f"byte {exc.start})") from None
    except NotRegularFileError as exc:
        raise SearchSpaceError(f"cannot read search space file {path}: {exc}") from None
    except OSError as exc:
        raise SearchSpaceError(f"cannot read search space file {path}: "
                               f"{exc.strerror or exc}") from None
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


def _values(param: Any) -> list[Any]:
    if param.kind == "fixed":
        return [param.value]
    if param.kind == "categorical":
        return list(param.choices)
    return []


def check_space_tracks(space: SearchSpace) -> None:
    """SearchSpaceError when a searched ``tracks`` value is not a valid training entry.

    Every value must be a training track or regime (``donkeyrl.sim.tracksets``): an unknown
    regime or a validation / test track would make every trial that draws it fail, or leak the
    tracks the study selects and reports on.
    """
    from donkeyrl.sim.tracksets import check_training_tracks

    for p in space.params:
        if p.name not in TRACK_PARAMS:
            continue
        for value in _values(p):
            entries = list(value) if isinstance(value, (list, tuple)) else [value]
            try:
                check_training_tracks([str(e) for e in entries])
            except ValueError as exc:
                raise SearchSpaceError(f"search space parameter {p.name!r}: {exc}") from None


def fix_params(space: SearchSpace, fixed: dict[str, Any],
               drop: tuple[str, ...] = ()) -> tuple[SearchSpace, list[str]]:
    """``space`` with every parameter of ``fixed`` set to its value (a ``fixed`` parameter:
    passed to every trial, never searched) and the parameters named in ``drop`` removed; returns
    the space and one note per searched parameter that was overridden or removed. Parameters
    missing from the space are added at the end; the others keep their place (and encoding)."""
    spec = space.to_dict()
    notes = [f"{name} removed from the space (was {spec.pop(name)})" for name in drop if name in spec]
    for name, value in fixed.items():
        old = spec.get(name)
        if old is not None and old != {"type": "fixed", "value": value}:
            notes.append(f"{name} fixed to {value!r} (was {old})")
        spec[name] = {"type": "fixed", "value": value}
    return SearchSpace.from_dict(spec), notes
