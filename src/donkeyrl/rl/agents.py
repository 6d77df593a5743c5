"""Build PPO / DQN / SAC from a TrialConfig, with every hyperparameter reaching the model.

Why a table of defaults per agent: a ``None`` in the config means "the agent's default", and the
result file must record the value actually used; the defaults here were chosen by measurement for
small-image pixel driving on a 2-core CPU (benchmarks/README.md, "rl pipeline speed").
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.policies import policy_kwargs

log = logging.getLogger(__name__)

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "dqn": DQN, "sac": SAC}

#: Hyperparameters that each agent accepts; the rest of the None-able fields do not apply to it.
AGENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": dict(learning_rate=3e-4, gamma=0.99, n_steps=256, batch_size=256, n_epochs=5,
                gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, n_envs=8),
    "dqn": dict(learning_rate=1e-3, gamma=0.99, batch_size=64, n_envs=4, buffer_size=20_000,
                learning_starts=1000, train_freq=4, gradient_steps=1, exploration_fraction=0.3,
                exploration_final_eps=0.05, target_update_interval=1000),
    "sac": dict(learning_rate=7.3e-4, gamma=0.99, batch_size=128, n_envs=2, buffer_size=20_000,
                learning_starts=1000, train_freq=8, gradient_steps=1, tau=0.02, ent_coef="auto"),
}


def agent_kwargs(cfg: TrialConfig) -> dict[str, Any]:
    """Constructor keyword arguments (besides policy and env) for ``cfg.agent``."""
    cfg = cfg.resolved()
    keys = [k for k in AGENT_DEFAULTS[cfg.agent] if k != "n_envs"]
    kwargs = {k: getattr(cfg, k) for k in keys}
    for int_key in ("n_steps", "batch_size", "n_epochs", "buffer_size", "learning_starts",
                    "train_freq", "gradient_steps", "target_update_interval"):
        if int_key in kwargs:
            kwargs[int_key] = int(kwargs[int_key])
    if cfg.agent == "ppo":
        kwargs["ent_coef"] = float(kwargs["ent_coef"])
    kwargs["policy_kwargs"] = policy_kwargs(cfg.policy_net, cfg.features_dim, cfg.net_width,
                                            cfg.net_depth, cfg.agent)
    kwargs["seed"] = cfg.seed
    return kwargs


def build_agent(cfg: TrialConfig, env: VecEnv, verbose: int = 0) -> BaseAlgorithm:
    """A fresh model for ``cfg.agent`` on ``env`` (which must carry the matching action space).

    Sets torch's (process-wide) intra-op thread count to ``cfg.torch_threads``.
    """
    torch.set_num_threads(cfg.torch_threads)
    algo = ALGORITHMS[cfg.agent]
    kwargs = agent_kwargs(cfg)
    log.info("building %s with %s", cfg.agent, {k: v for k, v in kwargs.items() if k != "policy_kwargs"})
    return algo("CnnPolicy", env, verbose=verbose, device="cpu", **kwargs)


def load_agent(agent: str, path: str, env: VecEnv | None = None) -> BaseAlgorithm:
    """Loads a saved model of the given agent type onto the CPU."""
    if agent not in ALGORITHMS:
        raise ValueError(f"unknown agent {agent!r}; valid: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[agent].load(path, env=env, device="cpu")
