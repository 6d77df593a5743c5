"""TrialConfig: every parameter of one training trial, saved as JSON beside ``model.zip``.

Why one frozen dataclass: the same object builds the training env, the agent and, after loading it
from ``trial_config.json``, the exact same env + wrappers for evaluation. Hyperparameters left as
``None`` take the agent's default (see :data:`donkeyrl.rl.agents.AGENT_DEFAULTS`);
:meth:`TrialConfig.resolved` fills them in, and the resolved values are what gets recorded.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from donkeyrl.rl.wrappers import REWARD_MODES

AGENTS = ("ppo", "dqn", "sac")
SIMS = ("embedded", "donkey")
POLICY_NETS = ("compact", "nature")
ACTION_MODES = ("auto", "continuous", "discrete")
VEC_ENVS = ("dummy", "subproc")
CONFIG_NAME = "trial_config.json"


@dataclass(frozen=True)
class TrialConfig:
    """One trial. Field names equal the ``donkeyrl train`` flags (``foo_bar`` <-> ``--foo-bar``)."""

    # --- what to train
    agent: str = "ppo"
    """RL algorithm: ppo (continuous or discrete actions), dqn (discrete), sac (continuous)."""
    actions: str = "auto"
    """Action space: auto (dqn -> discrete, ppo/sac -> continuous), continuous or discrete."""
    timesteps: int = 50_000
    """Total environment steps for ``model.learn`` (summed over the n_envs parallel envs)."""
    seed: int = 0
    """Seeds the agent (torch, numpy), every env and the evaluation episodes."""
    # --- environment
    tracks: tuple[str, ...] = ("generated_track",)
    """Training tracks; several = each episode samples one (multi-track training)."""
    sim: str = "embedded"
    """Simulator backend: embedded (built in) or donkey (the real Unity simulator over TCP)."""
    host: str = "127.0.0.1"
    """Real simulator host (sim=donkey)."""
    port: int = 9091
    """Real simulator port (sim=donkey)."""
    sim_path: str | None = None
    """Real simulator executable to launch (sim=donkey); None = connect to a running one."""
    max_cte: float = 8.0
    """Episode ends when |cte| exceeds this (simulator units); also scales the centring term."""
    steer_limit: float = 1.0
    """Steering range is [-steer_limit, steer_limit]."""
    throttle_min: float = 0.2
    """Minimum throttle: a clamp that keeps the car moving (with 0, deterministic policies were
    measured to stall at the standing start of some evaluation episodes)."""
    throttle_max: float = 1.0
    """Maximum throttle."""
    domain_randomization: bool = False
    """Randomise appearance (lighting, colours) on every reset, for generalisation."""
    steer_rate_limit: float | None = None
    """Max steering change per step as a fraction of the steering range (e.g. 0.15); None = off."""
    max_steps: int | None = None
    """Episode step limit; None = the env's default from the track length."""
    max_laps: int | None = None
    """End an episode after this many laps (None = no lap limit, the step limit still applies)."""
    # --- reward and guards
    reward: str = "progress"
    """donkey (the simulator's own), speed (speed*(1-|cte|/max_cte)) or progress (net progress)."""
    crash_penalty: float = 1.0
    """Reward on a crash/off-track termination is -crash_penalty (speed and progress rewards)."""
    min_lap_time: float | None = None
    """Laps faster than this (s) terminate the episode; None = track_length / 60 units/s."""
    # --- observation pipeline
    obs_width: int = 64
    """Observation width in pixels (the embedded renderer draws it directly)."""
    obs_height: int = 32
    """Observation height in pixels, after cropping."""
    grey: bool = True
    """Grey-scale (1 channel) instead of RGB."""
    crop_top: float = 0.4
    """Fraction of the camera frame's top rows (sky) dropped before resizing."""
    frame_stack: int = 2
    """Number of most recent frames stacked along the channel axis (motion cue)."""
    policy_net: str = "compact"
    """Features extractor: compact (small CNN for small frames) or nature (SB3's NatureCNN)."""
    features_dim: int = 128
    """Output size of the features extractor."""
    net_width: int = 64
    """Units per hidden layer of the policy/value heads."""
    net_depth: int = 2
    """Number of hidden layers of the policy/value heads."""
    # --- discretisation (discrete actions)
    n_steer: int = 7
    """Steering bins of the discrete action grid (>= 2)."""
    n_throttle: int = 3
    """Throttle bins of the discrete action grid (>= 1)."""
    # --- agent hyperparameters (None = agent default)
    learning_rate: float | None = None
    """Optimizer learning rate."""
    gamma: float | None = None
    """Discount factor."""
    n_steps: int | None = None
    """PPO: rollout steps per env per update."""
    batch_size: int | None = None
    """Minibatch size."""
    n_epochs: int | None = None
    """PPO: optimisation epochs per rollout."""
    gae_lambda: float | None = None
    """PPO: GAE lambda."""
    clip_range: float | None = None
    """PPO: policy clip range."""
    ent_coef: float | str | None = None
    """PPO: entropy coefficient; SAC: a float or 'auto'."""
    n_envs: int | None = None
    """Parallel environments."""
    vec_env: str = "dummy"
    """dummy (one process) or subproc (one process per env)."""
    torch_threads: int = 1
    """Torch intra-op threads; 1 measured ~2x faster than 2 on the shared 2-core machine."""
    buffer_size: int | None = None
    """DQN/SAC: replay buffer size (transitions)."""
    learning_starts: int | None = None
    """DQN/SAC: steps collected before the first gradient step."""
    train_freq: int | None = None
    """DQN/SAC: env steps between updates."""
    gradient_steps: int | None = None
    """DQN/SAC: gradient steps per update."""
    tau: float | None = None
    """SAC: target network soft-update rate."""
    exploration_fraction: float | None = None
    """DQN: fraction of training over which epsilon decays."""
    exploration_final_eps: float | None = None
    """DQN: final epsilon."""
    target_update_interval: int | None = None
    """DQN: env steps between target network updates."""
    # --- evaluation
    eval_episodes: int = 5
    """Evaluation episodes after training."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes recorded with the config (not used to build anything)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises ValueError naming the bad value and what is valid."""
        _choice("agent", self.agent, AGENTS)
        _choice("actions", self.actions, ACTION_MODES)
        _choice("sim", self.sim, SIMS)
        _choice("reward", self.reward, REWARD_MODES)
        _choice("policy_net", self.policy_net, POLICY_NETS)
        _choice("vec_env", self.vec_env, VEC_ENVS)
        if self.agent == "dqn" and self.actions == "continuous":
            raise ValueError("agent dqn needs discrete actions (actions=discrete or auto)")
        if self.agent == "sac" and self.actions == "discrete":
            raise ValueError("agent sac needs continuous actions (actions=continuous or auto)")
        if self.timesteps < 0:
            raise ValueError(f"timesteps must be >= 0, got {self.timesteps}")
        if not self.tracks:
            raise ValueError("at least one training track is needed")
        if self.n_steer < 2:
            raise ValueError(f"n_steer must be >= 2 (at least left and right), got {self.n_steer}")
        if self.n_throttle < 1:
            raise ValueError(f"n_throttle must be >= 1, got {self.n_throttle}")
        if not 0.0 <= self.crop_top < 1.0:
            raise ValueError(f"crop_top must be in [0, 1), got {self.crop_top}")
        if self.obs_width < 8 or self.obs_height < 8:
            raise ValueError(f"observation must be at least 8x8, got {self.obs_width}x{self.obs_height}")
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {self.frame_stack}")
        if not self.throttle_min <= self.throttle_max:
            raise ValueError(f"throttle_min {self.throttle_min} > throttle_max {self.throttle_max}")
        if self.max_cte <= 0:
            raise ValueError(f"max_cte must be > 0, got {self.max_cte}")
        if self.steer_rate_limit is not None and not 0.0 < self.steer_rate_limit <= 1.0:
            raise ValueError(f"steer_rate_limit must be in (0, 1], got {self.steer_rate_limit}")
        if self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {self.torch_threads}")
        if self.n_envs is not None and self.n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {self.n_envs}")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be a finite number > 0, got {self.learning_rate}")
        if isinstance(self.ent_coef, str) and (self.agent != "sac" or not self.ent_coef.startswith("auto")):
            raise ValueError(f"ent_coef {self.ent_coef!r}: only sac accepts 'auto'; use a number >= 0")
        if self.gamma is not None and not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")

    @property
    def discrete(self) -> bool:
        """True when the agent acts on the discrete (n_steer x n_throttle) grid."""
        if self.actions == "auto":
            return self.agent == "dqn"
        return self.actions == "discrete"

    def resolved(self) -> TrialConfig:
        """A copy with every ``None`` hyperparameter replaced by the agent's default."""
        from donkeyrl.rl.agents import AGENT_DEFAULTS

        updates = {k: v for k, v in AGENT_DEFAULTS[self.agent].items() if getattr(self, k) is None}
        return dataclasses.replace(self, **updates)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["tracks"] = list(self.tracks)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a config from another version)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrialConfig keys {unknown}; valid: {sorted(known)}")
        data = dict(data)
        if "tracks" in data:
            data["tracks"] = tuple(data["tracks"])
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        """Writes ``directory/trial_config.json`` (beside model.zip); returns its path."""
        path = Path(directory) / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrialConfig:
        """Reads a config JSON file, or ``trial_config.json`` inside a directory / beside a model."""
        p = Path(path)
        if p.is_dir():
            p = p / CONFIG_NAME
        elif p.suffix == ".zip":
            p = p.with_name(CONFIG_NAME)
        if not p.is_file():
            raise FileNotFoundError(f"no trial config at {p} (expected {CONFIG_NAME} beside model.zip)")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p} is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _choice(name: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
