"""The algorithm registry: one entry per RL algorithm, the only place that names one.

An entry (:class:`Algorithm`) holds the algorithm's Stable-Baselines3 class, the action kinds it
acts on, its parameters dataclass (every hyperparameter with its default, inclusive bounds, a
log-scale hint and a docstring), the keys of SB3's ``net_arch`` for its networks, and its default
search space for ``donkeyrl research``. The trial config, ``donkeyrl train``'s flags, the
``--print-schema`` JSON, the model builder and the research defaults are all derived from here, so
adding an algorithm is adding one entry (see ``TQC``).

Defaults were chosen by measurement for small-image pixel driving on a 2-core CPU
(benchmarks/README.md, "rl pipeline speed"): PPO with 8 envs and 256-step rollouts; DQN and SAC with
a 20k replay buffer and fewer envs (off-policy learners gain little from many envs). TQC (from
sb3-contrib) is the learner of the fastest published DonkeyCar result; it shares SAC's settings and
adds its quantile critics.

Every field's ``target`` says where its value goes: ``model`` = a keyword of the SB3 constructor,
``policy`` = a key of ``policy_kwargs``, ``env`` = the environment stack (``n_envs`` sizes the
VecEnv). ``tests/rl/test_rl_registry.py`` sets every parameter to a non-default value and finds it
on the built model or env.

SB3 classes are imported on first use (:attr:`Algorithm.sb3_class`): importing torch takes
seconds, and the CLI reads the registry on every start.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from donkeyrl.rl.schema import check_fields, field_meta, is_keyword_value, param

__all__ = ["Algorithm", "REGISTRY", "AGENTS", "ACTION_KINDS", "ACTION_HEADS", "FEATURE_EXTRACTORS", "get_algorithm",
           "CommonParams", "OffPolicyParams", "PPOParams", "DQNParams", "SACParams", "TQCParams",
           "load_object"]

#: Kinds of action space an algorithm can act on.
ACTION_KINDS = ("continuous", "discrete")
#: How a policy network produces its action (see :attr:`Algorithm.action_head`).
ACTION_HEADS = ("actor_critic", "q_network", "squashed_actor")

#: Features extractors selectable with ``policy_net`` -> "module:attribute" of the class.
FEATURE_EXTRACTORS: dict[str, str] = {
    "compact": "donkeyrl.rl.policies:CompactCNN",
    "nature": "stable_baselines3.common.torch_layers:NatureCNN",
}


def load_object(path: str) -> Any:
    """Imports ``"package.module:attribute"`` and returns the attribute."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class CommonParams:
    """Hyperparameters every algorithm takes. Subclasses re-declare a field to change its default."""

    learning_rate: float = param(3e-4, low=1e-8, high=1.0, log=True, target="model")
    """Optimizer (Adam) learning rate. Pixel policies diverge well below the upper bound."""
    gamma: float = param(0.99, low=0.0, high=1.0, target="model")
    """Discount factor; 0.99 looks about 100 steps (5 s of driving) ahead."""
    batch_size: int = param(256, low=1, high=16_384, log=True, target="model")
    """Minibatch size of one gradient step."""
    n_envs: int = param(8, low=1, high=128, target="env")
    """Parallel environments collecting experience (sizes the VecEnv). The upper bound keeps one
    trial within a machine's memory and processes."""

    def __post_init__(self) -> None:
        check_fields(self)
        ent = getattr(self, "ent_coef", None)
        if isinstance(ent, str) and not is_keyword_value(ent, field_meta(type(self), "ent_coef")["keywords"]):
            raise ValueError(f"ent_coef must be a number, got {ent!r}")


@dataclass(frozen=True)
class PPOParams(CommonParams):
    """PPO (on-policy; continuous or discrete actions)."""

    n_steps: int = param(256, low=2, high=8192, log=True, target="model")
    """Rollout steps per env between updates (the rollout holds n_steps x n_envs transitions)."""
    n_epochs: int = param(5, low=1, high=100, target="model")
    """Optimisation epochs over each rollout."""
    gae_lambda: float = param(0.95, low=0.0, high=1.0, target="model")
    """GAE lambda: bias/variance trade-off of the advantage estimate."""
    clip_range: float = param(0.2, low=0.01, high=1.0, target="model")
    """Policy clip range."""
    ent_coef: float = param(0.0, low=0.0, high=1.0, target="model")
    """Entropy bonus coefficient (exploration)."""


@dataclass(frozen=True)
class OffPolicyParams(CommonParams):
    """Hyperparameters of the replay-buffer learners."""

    learning_rate: float = 1e-3
    batch_size: int = 64
    n_envs: int = 4
    buffer_size: int = param(20_000, low=1, high=1_000_000, log=True, target="model")
    """Replay buffer size (transitions). Each stores two observations: 1e6 small grey frames take
    about 8 GB, hence the bound."""
    learning_starts: int = param(1000, low=0, high=10_000_000, target="model")
    """Environment steps collected before the first gradient step."""
    train_freq: int = param(4, low=1, high=100_000, target="model")
    """Environment steps (per env) between updates."""
    gradient_steps: int = param(1, low=1, high=1000, target="model")
    """Gradient steps per update."""


@dataclass(frozen=True)
class DQNParams(OffPolicyParams):
    """DQN (discrete actions only)."""

    exploration_fraction: float = param(0.3, low=0.001, high=1.0, target="model")
    """Fraction of training over which epsilon decays from 1 to its final value."""
    exploration_final_eps: float = param(0.05, low=0.0, high=1.0, target="model")
    """Final epsilon of epsilon-greedy exploration."""
    target_update_interval: int = param(1000, low=1, high=10_000_000, target="model")
    """Environment steps between target network updates."""


@dataclass(frozen=True)
class SACParams(OffPolicyParams):
    """SAC (continuous actions only)."""

    learning_rate: float = 7.3e-4
    batch_size: int = 128
    n_envs: int = 2
    train_freq: int = 8
    tau: float = param(0.02, low=0.0001, high=1.0, target="model")
    """Target network soft-update rate."""
    ent_coef: float | str = param("auto", low=0.0, high=1.0, keywords=("auto",), target="model")
    """Entropy coefficient: a number, 'auto' (learned) or 'auto_<initial value>'."""


@dataclass(frozen=True)
class TQCParams(SACParams):
    """TQC from sb3-contrib (continuous actions only): SAC with truncated quantile critics."""

    top_quantiles_to_drop_per_net: int = param(2, low=0, high=50, target="model")
    """Quantiles of each critic dropped from the target (overestimation control)."""
    n_quantiles: int = param(25, low=2, high=100, target="policy")
    """Quantiles per critic network."""
    n_critics: int = param(2, low=1, high=10, target="policy")
    """Critic networks."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.top_quantiles_to_drop_per_net >= self.n_quantiles:
            raise ValueError(f"top_quantiles_to_drop_per_net ({self.top_quantiles_to_drop_per_net}) must be "
                             f"smaller than n_quantiles ({self.n_quantiles})")


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Algorithm:
    """One registry entry."""

    name: str
    """Agent name (``--agent``)."""
    sb3_class_path: str
    """``"module:Class"`` of the SB3 algorithm (imported on first use)."""
    action_kinds: tuple[str, ...]
    """Action spaces it acts on; the first is what ``--actions auto`` picks."""
    params: type[CommonParams]
    """Its hyperparameters dataclass."""
    net_arch_keys: tuple[str, ...]
    """Keys of SB3's ``net_arch`` dict (one hidden-layer list per network); () = a single list."""
    search_space: Mapping[str, Mapping[str, Any]]
    """Default search space (``bo.SearchSpace.from_dict`` form; research adds ``timesteps``)."""
    action_head: str = "actor_critic"
    """How its policy turns features into an action, for code that runs the network itself (an
    exporter): ``actor_critic`` (SB3 ActorCriticPolicy: action_net on the actor latent; logits for
    discrete actions), ``q_network`` (argmax of the q-network), ``squashed_actor`` (tanh-squashed
    Gaussian actor, deterministic = its mean, in [-1, 1] before rescaling to the action box)."""
    summary: str = ""
    """One line for help texts."""
    policy: str = "CnnPolicy"
    """SB3 policy name (pixels in)."""

    def __post_init__(self) -> None:
        bad = set(self.action_kinds) - set(ACTION_KINDS)
        if not self.action_kinds or bad:
            raise ValueError(f"{self.name}: action kinds must be among {ACTION_KINDS}, got {self.action_kinds}")
        if self.action_head not in ACTION_HEADS:
            raise ValueError(f"{self.name}: action_head must be one of {ACTION_HEADS}, got {self.action_head!r}")

    @property
    def sb3_class(self) -> Any:
        """The SB3 algorithm class (a ``BaseAlgorithm`` subclass)."""
        return load_object(self.sb3_class_path)

    def param_names(self) -> tuple[str, ...]:
        """Names of its hyperparameters."""
        return tuple(f.name for f in dataclasses.fields(self.params))


_LR = {"type": "float", "low": 1e-5, "high": 3e-3, "log": True}
_GAMMA = {"type": "float", "low": 0.9, "high": 0.999}
_GRID = {"n_steer": {"type": "int", "low": 3, "high": 9}, "n_throttle": {"type": "int", "low": 1, "high": 5}}

REGISTRY: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm(
        name="ppo", sb3_class_path="stable_baselines3:PPO", action_kinds=("continuous", "discrete"),
        params=PPOParams, net_arch_keys=("pi", "vf"),
        summary="PPO: on-policy, continuous or discrete actions",
        # Searched with continuous actions (its default): on the built-in simulator's calibrated car,
        # 60k-step PPO on the catalogue lapped 8 of the 10 validation tracks with continuous actions
        # (3 seeds) against 2-3 with the 7x3 discrete grid (2 seeds). The grid stays searchable
        # with a --search-space file (actions fixed to discrete, plus n_steer / n_throttle).
        search_space={"learning_rate": _LR,
                      "n_steps": {"type": "categorical", "choices": [64, 128, 256, 512]},
                      "ent_coef": {"type": "float", "low": 1e-4, "high": 0.05, "log": True},
                      "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
                      "gamma": _GAMMA}),
    Algorithm(
        name="dqn", sb3_class_path="stable_baselines3:DQN", action_kinds=("discrete",),
        params=DQNParams, net_arch_keys=(), action_head="q_network",
        summary="DQN: off-policy, discrete actions",
        search_space={"learning_rate": _LR, **_GRID,
                      "batch_size": {"type": "categorical", "choices": [32, 64, 128]}, "gamma": _GAMMA}),
    Algorithm(
        name="sac", sb3_class_path="stable_baselines3:SAC", action_kinds=("continuous",),
        params=SACParams, net_arch_keys=("pi", "qf"), action_head="squashed_actor",
        summary="SAC: off-policy, continuous actions",
        search_space={"learning_rate": _LR,
                      "batch_size": {"type": "categorical", "choices": [64, 128, 256]}, "gamma": _GAMMA}),
    Algorithm(
        name="tqc", sb3_class_path="sb3_contrib:TQC", action_kinds=("continuous",),
        params=TQCParams, net_arch_keys=("pi", "qf"), action_head="squashed_actor",
        summary="TQC (sb3-contrib): SAC with truncated quantile critics, continuous actions",
        search_space={"learning_rate": _LR,
                      "batch_size": {"type": "categorical", "choices": [64, 128, 256]},
                      "top_quantiles_to_drop_per_net": {"type": "int", "low": 0, "high": 5},
                      "gamma": _GAMMA}),
)}

#: Agent names, in registry order.
AGENTS: tuple[str, ...] = tuple(REGISTRY)


def get_algorithm(name: str) -> Algorithm:
    """The registry entry of ``name``; ValueError naming the valid agents otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown agent {name!r}; valid: {', '.join(AGENTS)}") from None
