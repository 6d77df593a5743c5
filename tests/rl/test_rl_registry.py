"""The algorithm registry: every parameter reaches the model, every agent trains, and the registry
is the only place that names an algorithm."""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import pytest
import torch

from donkeyrl.rl.agents import build_agent, load_agent
from donkeyrl.rl.algorithms import AGENTS, REGISTRY
from donkeyrl.rl.config import TrialConfig, param_infos
from donkeyrl.rl.envbuild import build_vec_env
from donkeyrl.rl.evaluate import load_trained
from donkeyrl.rl.policies import CompactCNN
from donkeyrl.rl.train import run_trial

SRC = Path(__file__).resolve().parents[2] / "src" / "donkeyrl"


def _lrs(model):
    return {g["lr"] for opt in _optimizers(model) for g in opt.param_groups}


def _optimizers(model):
    nets = [model.policy, getattr(model, "actor", None), getattr(model, "critic", None)]
    return [n.optimizer for n in nets if n is not None and getattr(n, "optimizer", None) is not None]


def _ent_coef(model):
    if hasattr(model, "log_ent_coef") and model.log_ent_coef is not None:
        return math.exp(model.log_ent_coef.item())
    return float(model.ent_coef_tensor.item()) if hasattr(model, "ent_coef_tensor") else model.ent_coef


#: How to read each registry parameter back from a built model (and its VecEnv).
PROBES = {
    "learning_rate": lambda m, v: _lrs(m),
    "gamma": lambda m, v: m.gamma,
    "batch_size": lambda m, v: m.batch_size,
    "n_envs": lambda m, v: (m.n_envs, v.num_envs),
    "n_steps": lambda m, v: (m.n_steps, m.rollout_buffer.buffer_size),
    "n_epochs": lambda m, v: m.n_epochs,
    "gae_lambda": lambda m, v: m.gae_lambda,
    "clip_range": lambda m, v: m.clip_range(1.0),
    "ent_coef": lambda m, v: _ent_coef(m),
    # SB3 gives each env buffer_size // n_envs transitions
    "buffer_size": lambda m, v: (m.buffer_size, m.replay_buffer.buffer_size * m.n_envs + m.buffer_size % m.n_envs),
    "learning_starts": lambda m, v: m.learning_starts,
    "train_freq": lambda m, v: m.train_freq.frequency,
    "gradient_steps": lambda m, v: m.gradient_steps,
    "exploration_fraction": lambda m, v: m.exploration_fraction,
    "exploration_final_eps": lambda m, v: m.exploration_final_eps,
    "target_update_interval": lambda m, v: m.target_update_interval,
    "tau": lambda m, v: m.tau,
    "top_quantiles_to_drop_per_net": lambda m, v: m.top_quantiles_to_drop_per_net,
    "n_quantiles": lambda m, v: (m.critic.n_quantiles, m.critic.q_networks[0][-1].out_features),
    "n_critics": lambda m, v: (m.critic.n_critics, len(m.critic.q_networks)),
}


def _expected(name, value):
    """What the probe of ``name`` returns when the parameter is ``value``."""
    if name == "learning_rate":
        return {value}
    if name in ("n_envs", "n_steps", "buffer_size", "n_quantiles", "n_critics"):
        return (value, value)
    return value


def _other_value(name: str, default):
    """A valid value different from ``default`` (within the declared bounds)."""
    info = param_infos()[name]
    if isinstance(default, str):  # ent_coef 'auto': a fixed number instead
        return 0.3
    if info.type == "int":
        value = default + 1 if info.high is None or default + 1 <= info.high else default - 1
    else:
        value = default * 0.7 if default else (info.low or 0.0) + 0.1 * ((info.high or 1.0) - (info.low or 0.0))
    assert value != default and (info.low is None or value >= info.low) and (info.high is None or value <= info.high)
    return value


def test_every_registry_parameter_has_a_probe():
    names = {f.name for a in REGISTRY.values() for f in dataclasses.fields(a.params)}
    assert names == set(PROBES), "add a probe proving the new parameter reaches the model"


@pytest.mark.parametrize("agent", AGENTS)
def test_every_parameter_reaches_the_model(agent, fake_factory):
    factory, _ = fake_factory
    algorithm = REGISTRY[agent]
    defaults = algorithm.params()
    values = {f.name: _other_value(f.name, getattr(defaults, f.name)) for f in dataclasses.fields(defaults)}
    if agent == "ppo":
        values["n_steps"] = 40  # keep the rollout buffer small
    cfg = TrialConfig(agent=agent, seed=11, net_width=37, net_depth=1, features_dim=48, **values)
    assert dataclasses.asdict(cfg.algo) == values  # nothing dropped or rewritten on the way in
    venv = build_vec_env(cfg, env_factory=factory)
    model = build_agent(cfg, venv)
    try:
        for name, value in values.items():
            got = PROBES[name](model, venv)
            want = _expected(name, value)
            if isinstance(want, float):
                assert got == pytest.approx(want, rel=1e-6), name
            else:
                assert got == want, name
        assert model.seed == 11
        extractors = [m for m in model.policy.modules() if isinstance(m, CompactCNN)]
        assert extractors and all(e.features_dim == 48 for e in extractors)
        widths = [m.out_features for m in model.policy.modules() if isinstance(m, torch.nn.Linear)]
        assert widths.count(37) >= max(len(algorithm.net_arch_keys), 1)
    finally:
        venv.close()


@pytest.mark.parametrize("agent", AGENTS)
def test_every_agent_trains_saves_and_loads(agent, tmp_path, fake_factory):
    factory, _ = fake_factory
    small = {"ppo": dict(n_steps=16, batch_size=16), "dqn": dict(learning_starts=8, batch_size=8, buffer_size=200),
             "sac": dict(learning_starts=8, batch_size=8, buffer_size=200),
             "tqc": dict(learning_starts=8, batch_size=8, buffer_size=200, n_quantiles=5)}
    cfg = TrialConfig(agent=agent, timesteps=48, n_envs=1, eval_episodes=1, max_steps=30,
                      **small.get(agent, {}))
    result = run_trial(cfg, tmp_path, env_factory=factory)
    assert result["run_status"] == "ok", result["message"]
    model, loaded = load_trained(tmp_path / "model.zip")
    assert loaded == cfg and type(model) is REGISTRY[agent].sb3_class
    assert type(load_agent(agent, str(tmp_path / "model.zip"), device="cpu")) is REGISTRY[agent].sb3_class
    heads = {"actor_critic": hasattr(model.policy, "action_net"), "q_network": hasattr(model, "q_net"),
             "squashed_actor": type(getattr(getattr(model, "actor", None), "action_dist", None)).__name__
             == "SquashedDiagGaussianDistribution"}
    assert [h for h, present in heads.items() if present] == [REGISTRY[agent].action_head]


def _string_constants(tree: ast.AST) -> list[str]:
    """String constants of a module except docstrings."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


#: Packages that build, run and tune a trial: none of them may branch on an agent's name.
TRIAL_PACKAGES = ("rl", "cli", "research")


def test_the_registry_is_the_only_place_naming_tqc_and_nothing_dispatches_on_agent_names():
    """Adding TQC touched its registry entry only; no trial code branches on an agent's name."""
    naming_tqc, dispatch = [], []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] not in TRIAL_PACKAGES:
            continue
        tree = ast.parse(path.read_text())
        if "tqc" in _string_constants(tree):
            naming_tqc.append(path.relative_to(SRC).as_posix())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Constant) and o.value in AGENTS for o in operands):
                    dispatch.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert naming_tqc == ["rl/algorithms.py"]
    assert dispatch == []


def test_default_search_spaces_fit_the_schema():
    infos = param_infos()
    for agent, algorithm in REGISTRY.items():
        for name, spec in algorithm.search_space.items():
            info = infos[name]
            assert info.agents is None or agent in info.agents, (agent, name)
            values = [spec.get("low"), spec.get("high"), *spec.get("choices", []), spec.get("value")]
            for v in values:
                if v is None or isinstance(v, str):
                    continue
                assert (info.low is None or v >= info.low) and (info.high is None or v <= info.high), (agent, name, v)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_trains_and_loads_on_either_device(tmp_path, fake_factory):
    factory, _ = fake_factory
    cfg = TrialConfig(timesteps=32, n_envs=1, n_steps=16, batch_size=16, eval_episodes=1, max_steps=20,
                      device="cuda")
    result = run_trial(cfg, tmp_path, env_factory=factory)
    assert result["run_status"] == "ok", result["message"]
    assert load_agent("ppo", str(tmp_path / "model.zip"), device="cpu").device.type == "cpu"
    assert load_agent("ppo", str(tmp_path / "model.zip"), device="cuda").device.type == "cuda"


def test_cuda_request_without_cuda_is_a_clear_error():
    from donkeyrl.rl.agents import resolve_device

    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
