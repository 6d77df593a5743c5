"""The trial configuration: nested and frozen, validated once, flat names outside, old files load."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from donkeyrl.rl.algorithms import AGENTS, DQNParams, SACParams
from donkeyrl.rl.config import EnvConfig, RunConfig, TrialConfig, flat_names, param_infos, schema

#: trial_config.json files as the flat format (before the nesting) wrote them.
OLD_SAC = json.loads("""{"actions": "auto", "agent": "sac", "batch_size": 128, "buffer_size": 20000,
"clip_range": null, "crash_penalty": 1.0, "crop_top": 0.4, "domain_randomization": false, "ent_coef": "auto",
"eval_episodes": 5, "exploration_final_eps": null, "exploration_fraction": null, "extra": {}, "features_dim": 128,
"frame_stack": 2, "gae_lambda": null, "gamma": 0.99, "gradient_steps": 1, "grey": true, "host": "127.0.0.1",
"learning_rate": 0.0005, "learning_starts": 1000, "max_cte": 8.0, "max_laps": null, "max_steps": null,
"min_lap_time": null, "n_envs": 2, "n_epochs": null, "n_steer": 7, "n_steps": null, "n_throttle": 3, "net_depth": 2,
"net_width": 64, "obs_height": 32, "obs_width": 64, "policy_net": "compact", "port": 9091, "reward": "progress",
"seed": 3, "sim": "embedded", "sim_path": null, "steer_limit": 1.0, "steer_rate_limit": null,
"target_update_interval": null, "tau": 0.02, "throttle_max": 1.0, "throttle_min": 0.2, "timesteps": 1000,
"torch_threads": 1, "tracks": ["oval", "warren"], "train_freq": 8, "vec_env": "dummy"}""")
OLD_DQN = json.loads("""{"actions": "auto", "agent": "dqn", "batch_size": 64, "buffer_size": 20000,
"clip_range": null, "crash_penalty": 1.0, "crop_top": 0.4, "domain_randomization": false, "ent_coef": null,
"eval_episodes": 5, "exploration_final_eps": 0.05, "exploration_fraction": 0.3, "extra": {}, "features_dim": 128,
"frame_stack": 2, "gae_lambda": 0.5, "gamma": 0.99, "gradient_steps": 1, "grey": true, "host": "127.0.0.1",
"learning_rate": 0.001, "learning_starts": 1000, "max_cte": 8.0, "max_laps": null, "max_steps": null,
"min_lap_time": null, "n_envs": 4, "n_epochs": 5, "n_steer": 3, "n_steps": null, "n_throttle": 2, "net_depth": 2,
"net_width": 64, "obs_height": 32, "obs_width": 64, "policy_net": "compact", "port": 9091, "reward": "progress",
"seed": 0, "sim": "embedded", "sim_path": null, "steer_limit": 1.0, "steer_rate_limit": null,
"target_update_interval": 1000, "tau": null, "throttle_max": 1.0, "throttle_min": 0.2, "timesteps": 50000,
"torch_threads": 1, "tracks": ["generated_track"], "train_freq": 4, "vec_env": "dummy"}""")


def test_config_is_nested_and_frozen():
    cfg = TrialConfig(agent="dqn", tracks=("a", "b"), learning_rate=2e-3, n_steer=3, obs_width=48)
    assert isinstance(cfg.run, RunConfig) and isinstance(cfg.env, EnvConfig) and isinstance(cfg.algo, DQNParams)
    assert cfg.env.tracks == ("a", "b") and cfg.algo.learning_rate == 2e-3 and cfg.observation.obs_width == 48
    # flat read-through, None for parameters the agent lacks
    assert cfg.tracks == ("a", "b") and cfg.learning_rate == 2e-3 and cfg.n_steer == 3 and cfg.n_epochs is None
    assert cfg.discrete and cfg.actions == "auto" and cfg.action_kind == "discrete" and cfg.resolved() is cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.agent = "ppo"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.env.max_cte = 3.0
    with pytest.raises(AttributeError):
        cfg.no_such_thing  # noqa: B018


def test_parameters_that_do_not_apply_are_errors():
    with pytest.raises(ValueError, match=r"gae_lambda does not apply to agent dqn \(it applies to: ppo\); "
                                         r"n_epochs does not apply to agent dqn \(it applies to: ppo\)"):
        TrialConfig(agent="dqn", n_epochs=5, gae_lambda=0.5)
    with pytest.raises(ValueError, match="tau does not apply to agent ppo"):
        TrialConfig(agent="ppo", tau=0.1)
    with pytest.raises(ValueError, match="n_steer applies only to discrete actions.*set actions=discrete"):
        TrialConfig(agent="ppo", n_steer=5)
    with pytest.raises(ValueError, match="agents with discrete actions: ppo, dqn"):
        TrialConfig(agent="tqc", n_throttle=2)
    with pytest.raises(ValueError, match="unknown parameter"):
        TrialConfig(learning_rat=1e-3)


@pytest.mark.parametrize("bad,match", [
    (dict(agent="a2c"), "unknown agent 'a2c'; valid: ppo, dqn, sac, tqc"),
    (dict(timesteps=-1), r"timesteps must be an integer in \[0, 1000000000\], got -1"),
    (dict(n_steer=1, actions="discrete"), "n_steer must be an integer in"),
    (dict(reward="fun"), "unknown reward 'fun'; valid: donkey, speed, progress"),
    (dict(agent="dqn", actions="continuous"), "discrete"),
    (dict(agent="sac", actions="discrete"), "continuous"),
    (dict(crop_top=1.0), "crop_top"),
    (dict(learning_rate=-1.0), "learning_rate"),
    (dict(learning_rate=float("nan")), "learning_rate must be a finite number"),
    (dict(agent="ppo", ent_coef="auto"), "ent_coef"),
    (dict(agent="sac", ent_coef="automatic"), "ent_coef"),
    (dict(throttle_min=0.9, throttle_max=0.5), "throttle"),
    (dict(n_envs=2.5), "n_envs must be an integer"),
    (dict(grey="yes"), "grey must be true or false"),
    (dict(tracks=()), "tracks must not be empty"),
    (dict(seed=2**32), "seed"),
    (dict(port=70000), "port"),
    (dict(gae_lambda=2.0), "gae_lambda"),
    (dict(agent="tqc", n_quantiles=3, top_quantiles_to_drop_per_net=3), "smaller than n_quantiles"),
])
def test_bad_config_is_rejected_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        TrialConfig(**bad)


def test_json_numbers_are_normalised():
    cfg = TrialConfig(agent="sac", learning_rate=1, n_envs=3.0, tracks=["x"], ent_coef="auto_0.1")
    assert type(cfg.learning_rate) is float and type(cfg.n_envs) is int and cfg.tracks == ("x",)
    assert cfg.ent_coef == "auto_0.1"


def test_nested_file_round_trip(tmp_path):
    cfg = TrialConfig(agent="tqc", tracks=("a", "b"), learning_rate=1e-3, n_quantiles=10, steer_rate_limit=0.2,
                      extra={"note": "x"})
    path = cfg.save(tmp_path)
    data = json.loads(path.read_text())
    assert data["format"] == 2 and data["agent"] == "tqc"
    assert data["env"]["tracks"] == ["a", "b"] and data["algo"]["n_quantiles"] == 10
    assert set(data) == {"format", "agent", "run", "env", "observation", "rewards", "network", "algo", "extra"}
    assert TrialConfig.load(tmp_path) == cfg
    assert TrialConfig.load(tmp_path / "model.zip") == cfg


def test_old_flat_files_still_load(tmp_path):
    (tmp_path / "trial_config.json").write_text(json.dumps(OLD_SAC))
    sac = TrialConfig.load(tmp_path)
    assert sac == TrialConfig(agent="sac", tracks=("oval", "warren"), learning_rate=5e-4, timesteps=1000, seed=3,
                              throttle_min=0.2, vec_env="dummy")  # the old file's own values, not today's defaults
    assert sac.algo == SACParams(learning_rate=5e-4)
    # the old format accepted DQN with PPO's n_epochs / gae_lambda and ignored them: dropped on load
    dqn = TrialConfig.from_dict(OLD_DQN)
    assert dqn == TrialConfig(agent="dqn", n_steer=3, n_throttle=2, throttle_min=0.2, vec_env="dummy")
    with pytest.raises(ValueError, match="unknown trial config keys"):
        TrialConfig.from_dict({**OLD_DQN, "bogus": 1})
    with pytest.raises(ValueError, match="unknown trial config format 7"):
        TrialConfig.from_dict({"format": 7})


def test_flat_dict_keeps_every_old_key_and_reports_none_where_a_parameter_does_not_apply():
    flat = TrialConfig(agent="sac").to_dict()
    assert set(OLD_SAC) <= set(flat)
    assert flat["n_epochs"] is None and flat["n_steer"] is None and flat["tau"] == 0.02
    assert flat["actions"] == "auto" and flat["tracks"] == ["generated_track"]
    assert set(flat) == set(flat_names()) | {"extra"}
    # the flat dict is valid input again (what the research controller compares against)
    again = {k: v for k, v in flat.items() if v is not None}
    assert TrialConfig(**again) == TrialConfig(agent="sac")


def test_replace_keeps_the_flat_surface():
    cfg = TrialConfig(agent="ppo", learning_rate=1e-4, tracks=("oval",))
    moved = dataclasses.replace(cfg, tracks=("warren",), max_laps=2)
    assert moved.tracks == ("warren",) and moved.max_laps == 2 and moved.learning_rate == 1e-4
    assert cfg.replace(sim="donkey", port=9000).port == 9000
    assert cfg.replace(agent="dqn").algo == DQNParams()
    with pytest.raises(ValueError, match="max_laps"):
        cfg.replace(max_laps=0)


def test_schema_describes_every_parameter():
    doc = schema()
    assert doc["agents"] == list(AGENTS)
    params = doc["params"]
    assert set(params) == set(flat_names())
    keys = {"flag", "type", "default", "low", "high", "choices", "agents", "help"}
    for name, entry in params.items():
        assert keys <= set(entry), name
        assert entry["type"] in ("int", "float", "bool", "str", "list")
        assert entry["help"], name
        assert entry["flag"] == "--" + name.replace("_", "-") or name == "tracks"
    assert params["tracks"]["flag"] == "--track" and params["tracks"]["type"] == "list"
    assert params["n_epochs"]["agents"] == ["ppo"] and params["learning_rate"]["agents"] is None
    assert params["n_steer"]["agents"] == ["ppo", "dqn"]
    assert params["learning_rate"]["default"] is None
    assert params["learning_rate"]["agent_defaults"] == {"ppo": 3e-4, "dqn": 1e-3, "sac": 7.3e-4, "tqc": 7.3e-4}
    assert params["gae_lambda"]["low"] == 0.0 and params["gae_lambda"]["high"] == 1.0
    assert params["port"]["low"] == 1 and params["port"]["high"] == 65535
    assert params["seed"]["high"] == 2**32 - 1
    assert params["reward"]["choices"] == ["donkey", "speed", "progress"]
    assert params["ent_coef"]["keywords"] == ["auto"] and params["ent_coef"]["agents"] == ["ppo", "sac", "tqc"]
    json.dumps(doc, allow_nan=False)
    assert param_infos()["n_quantiles"].target == "policy"


def test_config_imports_neither_the_learners_nor_torch():
    """No import loop rl.config <-> rl.agents, and the CLI can read the schema without torch."""
    code = ("import sys, donkeyrl.rl.config as c; c.schema(); "
            "print(sorted(m for m in ('torch', 'stable_baselines3', 'sb3_contrib', 'donkeyrl.rl.agents') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_declared_reward_mode_is_implemented():
    from donkeyrl.envs import make_env
    from donkeyrl.rl import config, wrappers

    for mode in config.REWARD_MODES:
        env = wrappers.wrap_reward(make_env("oval"), mode, 8.0, 1.0)
        env.close()


def test_every_declared_vec_env_kind_resolves():
    from donkeyrl.rl import config, envbuild

    for kind in config.VEC_ENVS:
        assert envbuild.resolve_vec_env(kind, "embedded") in ("batched", "dummy", "subproc")
