"""Build, and load, the SB3 model of a TrialConfig, with every hyperparameter reaching it.

Everything algorithm-specific comes from the registry entry (:mod:`donkeyrl.rl.algorithms`): its
SB3 class, which parameters are constructor keywords (``target="model"``) and which go into
``policy_kwargs`` (``target="policy"``), and the ``net_arch`` keys of its networks. Nothing here
names an algorithm.

Device (``--device``): ``auto`` resolves to ``cpu``. The default pipeline (a small CNN on 64x32
grey frames, 8 envs, one forward pass per env step) is bound by per-step latency, not by
arithmetic, and CPU is the device it was measured on and tuned for (benchmarks/README.md, "rl
pipeline speed", a CPU-only machine); no GPU measurement shows it faster, so ``auto`` does not
move the model to one. ``cuda`` is used only when asked for (an error without a CUDA device).
Models load on any device: SB3 maps the saved tensors onto the device given to :func:`load_agent`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv

from donkeyrl.rl.algorithms import get_algorithm
from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.policies import policy_kwargs
from donkeyrl.rl.schema import field_meta

log = logging.getLogger(__name__)

#: What ``device="auto"`` means (see the module docstring for the measurement behind it).
AUTO_DEVICE = "cpu"


def resolve_device(device: str) -> str:
    """``auto`` -> :data:`AUTO_DEVICE`; ``cuda`` checked for availability (ValueError if absent)."""
    if device == "auto":
        return AUTO_DEVICE
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda requested but torch sees no CUDA device (valid here: auto, cpu)")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid: auto, cpu, cuda")
    return device


def agent_kwargs(cfg: TrialConfig) -> dict[str, Any]:
    """Constructor keyword arguments (besides policy, env, device) for ``cfg.agent``."""
    algorithm = cfg.algorithm
    kwargs: dict[str, Any] = {}
    extra_policy: dict[str, Any] = {}
    for f in dataclasses.fields(cfg.algo):
        target = field_meta(algorithm.params, f.name).get("target")
        value = getattr(cfg.algo, f.name)
        if target == "model":
            kwargs[f.name] = value
        elif target == "policy":
            extra_policy[f.name] = value
    net = cfg.network
    kwargs["policy_kwargs"] = {**policy_kwargs(net.policy_net, net.features_dim, net.net_width, net.net_depth,
                                               algorithm.net_arch_keys), **extra_policy}
    kwargs["seed"] = cfg.seed
    return kwargs


def quiet_logger() -> Logger:
    """An SB3 logger with no outputs.

    Set on every model we build: otherwise ``learn()`` configures its own, which creates an empty
    ``/tmp/SB3-<date>`` directory per run even when nothing is logged.
    """
    return Logger(folder=None, output_formats=[])


def build_agent(cfg: TrialConfig, env: VecEnv, verbose: int = 0) -> BaseAlgorithm:
    """A fresh model for ``cfg.agent`` on ``env`` (which must carry the matching action space).

    Sets torch's (process-wide) intra-op thread count to ``cfg.torch_threads``.
    """
    torch.set_num_threads(cfg.torch_threads)
    algorithm = cfg.algorithm
    kwargs = agent_kwargs(cfg)
    device = resolve_device(cfg.run.device)
    log.info("building %s on %s with %s", cfg.agent, device,
             {k: v for k, v in kwargs.items() if k != "policy_kwargs"})
    model: BaseAlgorithm = algorithm.sb3_class(algorithm.policy, env, verbose=verbose, device=device, **kwargs)
    model.set_logger(quiet_logger())
    return model


def load_agent(agent: str, path: str, env: VecEnv | None = None, device: str = "cpu") -> BaseAlgorithm:
    """Loads a saved model of the given agent type onto ``device`` (auto, cpu or cuda)."""
    algorithm = get_algorithm(agent)
    model: BaseAlgorithm = algorithm.sb3_class.load(path, env=env, device=resolve_device(device))
    model.set_logger(quiet_logger())
    return model
