"""TrialConfig: every parameter of one training trial, nested, frozen and validated once.

Why one frozen object: the same config builds the training env, the agent and, loaded back from
``trial_config.json`` beside ``model.zip``, the exact same env + wrappers for evaluation. It is
validated when it is made (each section checks its own fields against their declared bounds, the
config checks what spans sections) and never changes afterwards.

Sections (attribute: class):

=============  ======================  ==========================================================
``agent``      str                     the algorithm, a key of :data:`donkeyrl.rl.algorithms.REGISTRY`
``run``        :class:`RunConfig`      timesteps, seed, evaluation episodes, threads, device
``env``        :class:`EnvConfig`      tracks, simulator, car limits, episode limits, action space
``observation`` :class:`ObservationConfig`  image size, grey, crop, frame stack
``rewards``    :class:`RewardConfig`   reward mode, crash penalty, short-lap guard
``network``    :class:`NetworkConfig`  features extractor and hidden layers
``algo``       the agent's params      e.g. :class:`~donkeyrl.rl.algorithms.PPOParams`
``extra``      dict                    free-form notes, recorded, never used to build anything
=============  ======================  ==========================================================

Flat names (the stable external interface): every parameter has one snake_case name, unique
across sections, that is also its ``donkeyrl train`` flag (``foo_bar`` <-> ``--foo-bar``; the one
exception, ``tracks``, is ``--track``, with ``--tracks`` accepted too) and its key in the result
file's ``params``. ``TrialConfig(**flat)``, ``cfg.foo_bar``, :meth:`TrialConfig.replace` (and
``dataclasses.replace``), :meth:`~TrialConfig.to_dict` and :meth:`~TrialConfig.from_dict` speak
flat names. ``actions="auto"`` means the agent's first action kind (:attr:`TrialConfig.action_kind`).

A parameter that does not apply is an error, not a silent no-op: an algorithm parameter the agent
does not have (``TrialConfig(agent="dqn", n_epochs=5)``), or the discrete grid (``n_steer``,
``n_throttle``) with continuous actions. In the flat dict of :meth:`~TrialConfig.to_dict` such
parameters are ``None``.

``trial_config.json`` format: ``{"format": 2, "agent": ..., "run": {...}, "env": {...},
"observation": {...}, "rewards": {...}, "network": {...}, "algo": {...}, "extra": {...}}``.
Migration: files without ``"format"`` are the flat format 1 written before the nesting (one object
of flat names, ``None`` for "the agent's default" or "does not apply"); they still load: ``None``
algorithm parameters take the agent's default and values that do not apply to the agent (which
that version silently ignored) are dropped with a log line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from donkeyrl.rl.algorithms import (ACTION_KINDS, AGENTS, FEATURE_EXTRACTORS, REGISTRY, Algorithm, CommonParams,
                                    get_algorithm)
from donkeyrl.rl.schema import ParamInfo, check_fields, describe, param

log = logging.getLogger(__name__)

SIMS = ("embedded", "donkey")
#: Training rewards (implemented by donkeyrl.rl.wrappers.wrap_reward). Declared here, with the
#: other valid values of the trial schema, so that reading the schema (every CLI start) imports
#: neither the wrappers nor what they import (gymnasium, SB3, torch).
REWARD_MODES = ("donkey", "speed", "progress")
POLICY_NETS = tuple(FEATURE_EXTRACTORS)
ACTION_MODES = ("auto", *ACTION_KINDS)
#: How the cars of a trial are stepped (implemented by donkeyrl.rl.envbuild.build_vec_env).
VEC_ENVS = ("auto", "batched", "dummy", "subproc")
DEVICES = ("auto", "cpu", "cuda")
CONFIG_NAME = "trial_config.json"
FORMAT = 2
#: Parameters that apply only with discrete actions.
GRID_PARAMS = ("n_steer", "n_throttle")


class _Section:
    """Validates every declared field when made (see :func:`donkeyrl.rl.schema.check_fields`)."""

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class RunConfig(_Section):
    """How long and how the trial trains and is evaluated."""

    timesteps: int = param(50_000, low=0, high=1_000_000_000)
    """Total environment steps for ``model.learn`` (summed over the n_envs parallel envs)."""
    seed: int = param(0, low=0, high=2**32 - 1)
    """Seeds the agent (torch, numpy), every env and the evaluation episodes."""
    eval_episodes: int = param(5, low=0, high=1000)
    """Evaluation episodes after training."""
    torch_threads: int = param(1, low=1, high=256)
    """Torch intra-op threads; 1 measured ~2x faster than 2 on the shared 2-core machine."""
    device: str = param("auto", choices=DEVICES)
    """Torch device of the learner: auto picks cpu, the device the default small-CNN pipeline was
    measured and tuned on (see donkeyrl.rl.agents); cuda needs a CUDA build of torch and a GPU."""
    init_model: str | None = param(None, metavar="DIR")
    """Fine-tune: start from this saved model's weights (its directory or model.zip) instead of a
    random policy; its agent, actions, observation and network must match this trial's (checked
    before training, see donkeyrl.rl.finetune); none = a fresh policy."""
    validation: bool = param(True)
    """After training, race the model once on every track of the validation set (built-in
    simulator; the race_score objective of a study, see donkeyrl.rl.race); false skips it."""


@dataclass(frozen=True)
class EnvConfig(_Section):
    """The environment: tracks, simulator, car and episode limits, action space."""

    tracks: tuple[str, ...] = param(("generated_track",), flag="--track", target="env", metavar="NAME")
    """Training tracks; several = each episode samples one (multi-track training)."""
    sim: str = param("embedded", choices=SIMS, target="env")
    """Simulator backend: embedded (built in) or donkey (the real Unity simulator over TCP)."""
    host: str = param("127.0.0.1", target="env")
    """Real simulator host (sim=donkey)."""
    port: int = param(9091, low=1, high=65535, target="env")
    """Real simulator port (sim=donkey)."""
    sim_path: str | None = param(None, target="env", metavar="PATH")
    """Real simulator executable to launch in its own process group (on a free port if the port is
    taken) and stop afterwards (sim=donkey); none = connect to a running one."""
    max_cte: float = param(8.0, low=0.5, high=100.0, target="env")
    """Episode ends when |cte| exceeds this (simulator units); also scales the centring term."""
    steer_limit: float = param(1.0, low=0.05, high=1.0, target="env")
    """Steering range is [-steer_limit, steer_limit]."""
    throttle_min: float = param(0.0, low=-1.0, high=1.0, target="env")
    """Minimum throttle; below 0 the policy can brake. 0 by default: with the calibrated car
    (top speed ~209 units/s) any positive minimum keeps accelerating, so a policy could never
    slow down for a bend (throttle 0.2 reaches 30 units/s in 10 s and still climbs); the progress
    watchdog ends episodes of a car that stalls."""
    throttle_max: float = param(1.0, low=-1.0, high=1.0, target="env")
    """Maximum throttle."""
    domain_randomization: bool = param(False, target="env")
    """Randomise appearance (lighting, colours) on every reset, for generalisation."""
    steer_rate_limit: float | None = param(None, low=0.01, high=1.0, target="env")
    """Max steering change per step as a fraction of the steering range (e.g. 0.15); none = off."""
    max_steps: int | None = param(None, low=1, high=10_000_000, target="env")
    """Episode step limit; none = the env's default from the track length."""
    max_laps: int | None = param(None, low=1, high=1000, target="env")
    """End an episode after this many laps (none = no lap limit, the step limit still applies)."""
    vec_env: str = param("auto", choices=VEC_ENVS, target="env")
    """How the n_envs cars are stepped: auto (batched on the built-in simulator, else dummy), batched
    (all cars in one batched simulator call), dummy (single envs in this process) or subproc (one
    process per env)."""
    actions: str = param("auto", choices=ACTION_MODES, target="env")
    """Action space: auto (the agent's first kind: dqn discrete, the others continuous),
    continuous or discrete (the n_steer x n_throttle grid)."""
    n_steer: int = param(7, low=2, high=64, target="env", requires="discrete")
    """Steering bins of the discrete action grid (discrete actions only)."""
    n_throttle: int = param(3, low=1, high=32, target="env", requires="discrete")
    """Throttle bins of the discrete action grid (discrete actions only)."""


@dataclass(frozen=True)
class ObservationConfig(_Section):
    """The image the policy sees."""

    obs_width: int = param(64, low=8, high=640, target="env")
    """Observation width in pixels (the embedded renderer draws it directly)."""
    obs_height: int = param(32, low=8, high=480, target="env")
    """Observation height in pixels, after cropping."""
    grey: bool = param(True, target="env")
    """Grey-scale (1 channel) instead of RGB."""
    crop_top: float = param(0.4, low=0.0, high=0.9, target="env")
    """Fraction of the camera frame's top rows (sky) dropped before resizing."""
    frame_stack: int = param(2, low=1, high=16, target="env")
    """Number of most recent frames stacked along the channel axis (motion cue)."""


@dataclass(frozen=True)
class RewardConfig(_Section):
    """The training reward and the guards that end bad episodes."""

    reward: str = param("progress", choices=REWARD_MODES, target="env")
    """donkey (the simulator's own), speed (speed*(1-|cte|/max_cte)) or progress (net progress x
    centring, crash penalty)."""
    crash_penalty: float = param(1.0, low=0.0, high=1000.0, target="env")
    """Reward on a crash/off-track termination is -crash_penalty (speed and progress rewards)."""
    min_lap_time: float | None = param(None, low=0.0, high=3600.0, target="env")
    """Laps faster than this (s) terminate the episode; none = track_length / 60 units/s."""


@dataclass(frozen=True)
class NetworkConfig(_Section):
    """The policy network: features extractor, then hidden layers per head."""

    policy_net: str = param("compact", choices=POLICY_NETS, target="policy")
    """Features extractor: compact (small CNN for small frames) or nature (SB3's NatureCNN)."""
    features_dim: int = param(128, low=1, high=4096, target="policy")
    """Output size of the features extractor."""
    net_width: int = param(64, low=1, high=4096, target="policy")
    """Units per hidden layer of the policy/value heads."""
    net_depth: int = param(2, low=0, high=16, target="policy")
    """Number of hidden layers of the policy/value heads."""


#: Section attribute -> its dataclass, in file order.
SECTIONS: dict[str, Any] = {"run": RunConfig, "env": EnvConfig, "observation": ObservationConfig,
                                       "rewards": RewardConfig, "network": NetworkConfig}
#: Flat name -> section attribute, for every section field.
_SECTION_OF: dict[str, str] = {f.name: sec for sec, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
#: Flat name -> agents having it, for every algorithm parameter.
_AGENTS_OF: dict[str, tuple[str, ...]] = {}
for _a in REGISTRY.values():
    for _name in _a.param_names():
        _AGENTS_OF[_name] = (*_AGENTS_OF.get(_name, ()), _a.name)
_clash = set(_SECTION_OF) & set(_AGENTS_OF)
if _clash or len(_SECTION_OF) != sum(len(dataclasses.fields(c)) for c in SECTIONS.values()):
    raise TypeError(f"flat parameter names must be unique across sections, clashing: {sorted(_clash)}")
DISCRETE_AGENTS = tuple(a.name for a in REGISTRY.values() if "discrete" in a.action_kinds)


def flat_names() -> tuple[str, ...]:
    """Every flat parameter name, ``agent`` first, then sections, then algorithm parameters."""
    return ("agent", *_SECTION_OF, *_AGENTS_OF)


@dataclass(frozen=True, init=False)
class TrialConfig:
    """One trial. ``TrialConfig(agent, **flat)`` or with whole sections (``run=RunConfig(...)``)."""

    agent: str
    run: RunConfig
    env: EnvConfig
    observation: ObservationConfig
    rewards: RewardConfig
    network: NetworkConfig
    algo: CommonParams
    extra: dict[str, Any]

    def __init__(self, agent: str = "ppo", *, run: RunConfig | None = None, env: EnvConfig | None = None,
                 observation: ObservationConfig | None = None, rewards: RewardConfig | None = None,
                 network: NetworkConfig | None = None, algo: CommonParams | None = None,
                 extra: dict[str, Any] | None = None, **flat: Any) -> None:
        algorithm = get_algorithm(agent)
        unknown = sorted(set(flat) - set(_SECTION_OF) - set(_AGENTS_OF))
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(flat_names())}")
        given = {"run": run, "env": env, "observation": observation, "rewards": rewards, "network": network}
        sections: dict[str, Any] = {}
        for name, cls in SECTIONS.items():
            changes = {k: v for k, v in flat.items() if _SECTION_OF.get(k) == name}
            base = given[name]
            if base is not None and not isinstance(base, cls):
                raise TypeError(f"{name} must be a {cls.__name__}, got {type(base).__name__}")
            sections[name] = cls(**changes) if base is None else dataclasses.replace(base, **changes)
        algo = _algorithm_params(algorithm, algo, {k: v for k, v in flat.items() if k in _AGENTS_OF})
        _check_actions(algorithm, sections["env"], {k for k in GRID_PARAMS if flat.get(k) is not None})
        env_cfg: EnvConfig = sections["env"]
        if env_cfg.throttle_min > env_cfg.throttle_max:
            raise ValueError(f"throttle_min {env_cfg.throttle_min} > throttle_max {env_cfg.throttle_max}")
        if extra is not None and not isinstance(extra, dict):
            raise ValueError(f"extra must be a JSON object, got {extra!r}")
        for name, value in (("agent", agent), *sections.items(), ("algo", algo), ("extra", dict(extra or {}))):
            object.__setattr__(self, name, value)

    # --- flat read-through -----------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        """``cfg.<flat name>``: the value from its section; None for a parameter the agent lacks."""
        section = _SECTION_OF.get(name)
        if section is not None:
            return getattr(object.__getattribute__(self, section), name)
        if name in _AGENTS_OF:
            return getattr(object.__getattribute__(self, "algo"), name, None)
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    @property
    def algorithm(self) -> Algorithm:
        """The registry entry of the agent."""
        return REGISTRY[self.agent]

    @property
    def action_kind(self) -> str:
        """continuous or discrete: ``actions``, with auto resolved to the agent's first kind."""
        return self.algorithm.action_kinds[0] if self.env.actions == "auto" else self.env.actions

    @property
    def discrete(self) -> bool:
        """True when the agent acts on the discrete (n_steer x n_throttle) grid."""
        return self.action_kind == "discrete"

    def resolved(self) -> TrialConfig:
        """This config: every value is concrete since it was made (kept for older callers)."""
        return self

    def replace(self, **flat: Any) -> TrialConfig:
        """A copy with flat parameters changed (validated like a new config).

        Changing ``agent`` starts from the new agent's default parameters.
        """
        agent = flat.pop("agent", self.agent)
        algo = self.algo if agent == self.agent else None
        return TrialConfig(agent, run=self.run, env=self.env, observation=self.observation,
                           rewards=self.rewards, network=self.network, algo=algo, extra=self.extra, **flat)

    # --- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready: every flat name, None where a parameter does not apply (tuples -> lists).

        This is the ``params`` of the result file, which the research controller compares with
        the parameters it searched.
        """
        out: dict[str, Any] = {"agent": self.agent}
        for name, section in _SECTION_OF.items():
            value = getattr(getattr(self, section), name)
            if name in GRID_PARAMS and not self.discrete:
                value = None
            out[name] = list(value) if isinstance(value, tuple) else value
        for name in _AGENTS_OF:
            out[name] = getattr(self.algo, name, None)
        out["extra"] = dict(self.extra)
        return out

    def to_nested(self) -> dict[str, Any]:
        """The nested ``trial_config.json`` form (format 2)."""
        out: dict[str, Any] = {"format": FORMAT, "agent": self.agent}
        for name in SECTIONS:
            out[name] = _jsonable(dataclasses.asdict(getattr(self, name)))
        out["algo"] = dataclasses.asdict(self.algo)
        out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialConfig:
        """A config from :meth:`to_nested` (format 2) or from a flat dict (format 1, migrated)."""
        if not isinstance(data, dict):
            raise ValueError(f"a trial config must be a JSON object, got {type(data).__name__}")
        if "format" not in data:
            return cls._from_flat_file(data)
        if data["format"] != FORMAT:
            raise ValueError(f"unknown trial config format {data['format']!r}; this version reads {FORMAT} "
                             "and the flat format without a 'format' key")
        known = {"format", "agent", "algo", "extra", *SECTIONS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown trial config keys {unknown}; valid: {sorted(known)}")
        algorithm = get_algorithm(data.get("agent", "ppo"))
        sections = {name: _section(name, sec_cls, data.get(name, {})) for name, sec_cls in SECTIONS.items()}
        algo = _section("algo", algorithm.params, data.get("algo", {}))
        return cls(algorithm.name, algo=algo, extra=data.get("extra"), **sections)

    @classmethod
    def _from_flat_file(cls, data: dict[str, Any]) -> TrialConfig:
        """Migrates a format-1 (flat) config; see the module docstring."""
        flat = dict(data)
        agent = flat.pop("agent", "ppo")
        extra = flat.pop("extra", None)
        algorithm = get_algorithm(agent)
        unknown = sorted(set(flat) - set(_SECTION_OF) - set(_AGENTS_OF))
        if unknown:
            raise ValueError(f"unknown trial config keys {unknown}; valid: {sorted(flat_names())}")
        dropped = [k for k in flat if k in _AGENTS_OF and flat[k] is not None
                   and k not in algorithm.param_names()]
        actions = flat.get("actions") or "auto"
        kind = algorithm.action_kinds[0] if actions == "auto" else actions
        if kind != "discrete":
            dropped += [k for k in GRID_PARAMS if k in flat]
        if dropped:
            log.info("flat trial config: dropped %s, which do not apply to %s", sorted(dropped), agent)
        flat = {k: v for k, v in flat.items() if k not in dropped and not (k in _AGENTS_OF and v is None)}
        return cls(agent, extra=extra, **flat)

    def save(self, directory: str | Path) -> Path:
        """Writes ``directory/trial_config.json`` (nested format) beside model.zip; returns its path."""
        path = Path(directory) / CONFIG_NAME
        path.write_text(json.dumps(self.to_nested(), indent=2) + "\n")
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
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(f"{p} is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _algorithm_params(algorithm: Algorithm, algo: CommonParams | None, changes: dict[str, Any]) -> CommonParams:
    """The agent's params: ``algo`` (or the defaults) with ``changes``; errors for params it lacks."""
    own = set(algorithm.param_names())
    foreign = sorted(k for k, v in changes.items() if k not in own and v is not None)
    if foreign:
        raise ValueError("; ".join(f"{k} does not apply to agent {algorithm.name} (it applies to: "
                                   f"{', '.join(_AGENTS_OF[k])})" for k in foreign))
    changes = {k: v for k, v in changes.items() if v is not None}
    if algo is None:
        return algorithm.params(**changes)
    if type(algo) is not algorithm.params:
        raise ValueError(f"agent {algorithm.name} takes {algorithm.params.__name__}, got {type(algo).__name__}")
    return dataclasses.replace(algo, **changes) if changes else algo


def _check_actions(algorithm: Algorithm, env: EnvConfig, grid_given: set[str]) -> None:
    """``actions`` must be a kind the agent acts on; the grid is given only with discrete actions."""
    kinds = algorithm.action_kinds
    if env.actions != "auto" and env.actions not in kinds:
        raise ValueError(f"agent {algorithm.name} acts on {' or '.join(kinds)} actions only; actions "
                         f"{env.actions!r} is not valid for it (valid: auto, {', '.join(kinds)})")
    kind = kinds[0] if env.actions == "auto" else env.actions
    if grid_given and kind != "discrete":
        how = "set actions=discrete" if "discrete" in kinds else \
            f"agents with discrete actions: {', '.join(DISCRETE_AGENTS)}"
        raise ValueError(f"{', '.join(sorted(grid_given))} applies only to discrete actions, but agent "
                         f"{algorithm.name} acts on continuous actions here ({how})")


def _section(name: str, cls: type, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ValueError(f"trial config section {name!r} must be an object, got {values!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown keys {unknown} in trial config section {name!r}; valid: {sorted(known)}")
    return cls(**values)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# ----------------------------------------------------------------------------- schema


def param_infos() -> dict[str, ParamInfo]:
    """Flat name -> :class:`ParamInfo` of every trial parameter (the schema ``donkeyrl train`` uses)."""
    out: dict[str, ParamInfo] = {
        "agent": ParamInfo(name="agent", flag="--agent", type="str", default="ppo", choices=AGENTS,
                           help="RL algorithm: " + "; ".join(a.summary for a in REGISTRY.values()) + ".",
                           section="agent")}
    for name, cls in SECTIONS.items():
        for info in describe(cls, name):
            if info.requires == "discrete":
                info = dataclasses.replace(info, agents=DISCRETE_AGENTS)
            out[info.name] = info
    out.update(_merged_algorithm_infos())
    return out


def _merged_algorithm_infos() -> dict[str, ParamInfo]:
    """One entry per algorithm parameter name, merged over the agents that have it."""
    per_name: dict[str, list[tuple[str, ParamInfo]]] = {}
    for algorithm in REGISTRY.values():
        for info in describe(algorithm.params, "algo"):
            per_name.setdefault(info.name, []).append((algorithm.name, info))
    out = {}
    for name, entries in per_name.items():
        first = entries[0][1]
        for agent, info in entries[1:]:
            if (info.type, info.low, info.high, info.log, info.choices, info.target) != \
                    (first.type, first.low, first.high, first.log, first.choices, first.target):
                raise TypeError(f"parameter {name} is declared differently for {entries[0][0]} and {agent}")
        agents = tuple(a for a, _ in entries)
        defaults = {a: i.default for a, i in entries}
        same_default = len({json.dumps(v) for v in defaults.values()}) == 1
        docs: dict[str, list[str]] = {}
        for a, i in entries:
            docs.setdefault(i.help, []).append(a)
        help_text = next(iter(docs)) if len(docs) == 1 else \
            " ".join(f"{', '.join(a)}: {doc}" for doc, a in docs.items())
        keywords = tuple(dict.fromkeys(k for _, i in entries for k in i.keywords))
        out[name] = dataclasses.replace(
            first, agents=None if set(agents) == set(AGENTS) else agents,
            default=first.default if same_default else None,
            agent_defaults=None if same_default else defaults, keywords=keywords, help=help_text)
    return out


def schema() -> dict[str, Any]:
    """The ``donkeyrl train --print-schema`` document (see cli/train.py for its keys).

    ``result_fields`` lists the numeric keys of the result file (``--result-file``) that a
    study's ``--objective`` may name, so that a misspelt objective is refused before the first
    trial (research/preflight.py). They come from rl/train.py (``run_trial``: training figures),
    rl/evaluate.py + rl/metrics.py (``summarise``: the evaluation episodes) and
    ``train.validation_result`` (the validation race, present unless ``--validation false``);
    tests/research/test_real_study.py checks that a real result file holds every one.
    """
    result_fields = [
        "mean_reward", "std_reward", "driving_score", "completion", "laps", "total_laps",
        "best_lap_time", "mean_abs_cte", "max_abs_cte", "mean_speed", "steering_oscillation",
        "off_track_count", "hit_count", "distance", "progress",
        "race_score", "validation_lap_rate", "validation_mean_lap_time_ratio",
        "validation_lap_time_ratio_penalised", "validation_mean_abs_cte",
        "train_steps_per_sec", "train_timesteps", "train_episodes", "train_laps", "elapsed_sec"]
    return {"schema_version": 1, "agents": list(AGENTS),
            "action_kinds": {a.name: list(a.action_kinds) for a in REGISTRY.values()},
            "params": {name: info.schema() for name, info in param_infos().items()},
            "result_fields": result_fields}
