"""Search spaces per agent, --search-space files, and trial command rendering."""

from __future__ import annotations

import json
import sys

import pytest

from donkeyrl.bo import SearchSpaceError
from donkeyrl.research import default_space, load_space
from donkeyrl.rl.algorithms import AGENTS
from donkeyrl.research.trialcmd import build_argv, param_flags, render_template


@pytest.mark.parametrize("agent", AGENTS)
def test_default_space_per_agent(agent):
    space = default_space(agent, 3000, 9000)
    spec = space.to_dict()
    assert spec["timesteps"]["low"] == 3000 and spec["timesteps"]["high"] == 9000
    assert "learning_rate" in spec and "gamma" in spec
    assert ("n_steer" in spec) == (agent == "dqn")
    assert list(spec)[:2] == ["learning_rate", "timesteps"]
    for p in space.sample(0, 50):
        assert 3000 <= p["timesteps"] <= 9000


def test_default_spaces_keep_their_documented_values_and_order():
    """The encoding follows the order, so a study's proposals for a seed stay what they were.

    Each default space is the algorithm's entries followed by the driving knobs (DRIVING_SPACE).
    """
    from donkeyrl.research.space import DRIVING_SPACE

    driving = list(DRIVING_SPACE)
    lr = {"type": "float", "low": 1e-5, "high": 3e-3, "log": True}
    gamma = {"type": "float", "low": 0.9, "high": 0.999, "log": False}
    ts = {"type": "int", "low": 5000, "high": 20000, "log": False}
    ppo = default_space("ppo").to_dict()
    assert list(ppo) == [*list(ppo)[:len(ppo) - len(driving)], *driving]
    assert list(ppo.items())[:len(ppo) - len(driving)] == list({
        "learning_rate": lr, "timesteps": ts,
        "n_steps": {"type": "categorical", "choices": [64, 128, 256, 512]},
        "ent_coef": {"type": "float", "low": 1e-4, "high": 0.05, "log": True},
        "batch_size": {"type": "categorical", "choices": [32, 64, 128]}, "gamma": gamma}.items())
    assert list(default_space("dqn").to_dict()) == ["learning_rate", "timesteps", "n_steer", "n_throttle",
                                                    "batch_size", "gamma", *driving]
    assert list(default_space("sac").to_dict()) == ["learning_rate", "timesteps", "batch_size", "gamma", *driving]
    assert "top_quantiles_to_drop_per_net" in default_space("tqc").to_dict()


def test_default_space_fixed_timesteps_and_errors():
    assert default_space("ppo", 5000, 5000).to_dict()["timesteps"] == {"type": "fixed",
                                                                       "value": 5000}
    with pytest.raises(ValueError, match="min_timesteps=9 must be <= max_timesteps=5"):
        default_space("ppo", 9, 5)
    with pytest.raises(ValueError, match="unknown agent 'a2c'"):
        default_space("a2c")


def test_load_space_adds_timesteps(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2,
                                               "log": True}}))
    assert load_space(f, 100, 200).to_dict()["timesteps"]["high"] == 200


@pytest.mark.parametrize("text,match", [
    (None, "cannot read"),
    ('{"lr": {"type": "float", "low": 1,}', "not valid JSON.*line 1"),
    ("[1]", "non-empty JSON object"),
    ('{"seed": {"type": "int", "low": 1, "high": 5}}', "controller sets itself"),
    ('{"lr": {"type": "float", "low": 2, "high": 1}}', "s.json.*low=2.0 must be < high=1.0"),
])
def test_load_space_errors_name_file_and_problem(tmp_path, text, match):
    f = tmp_path / "s.json"
    if text is not None:
        f.write_text(text)
    with pytest.raises(SearchSpaceError, match=match):
        load_space(f)


def test_param_flags_rendering():
    flags = param_flags({"learning_rate": 0.0003, "n_steer": 7, "domain_randomization": True,
                         "grey": False, "track": ["a", "b"], "agent": "dqn", "init_model": None})
    # booleans explicitly: an omitted False would leave a trainer default that may be True
    assert flags == ["--learning-rate", "0.0003", "--n-steer", "7", "--domain-randomization",
                     "true", "--grey", "false", "--track", "a", "b"]


def test_build_argv(tmp_path):
    argv = build_argv("{python} -m donkeyrl train --tag t{trial}", params={"agent": "dqn",
                      "n_steer": 5}, agent="ppo", tracks=["t1", "t2"], eval_episodes=3, seed=7,
                      save_dir=tmp_path / "trial-4", result_file=tmp_path / "r.json",
                      reward="speed", trial=4, study_dir=tmp_path, extra_args=["--n-envs", "2"])
    assert argv[:5] == [sys.executable, "-m", "donkeyrl", "train", "--tag"]
    assert argv[5] == "t4"
    s = " ".join(argv)
    assert "--agent dqn" in s and "--track t1 t2" in s and "--eval-episodes 3" in s
    assert f"--save-dir {tmp_path / 'trial-4'}" in s and "--seed 7" in s
    assert s.endswith("--reward speed --n-steer 5 --n-envs 2")


def test_render_template_errors():
    with pytest.raises(ValueError, match="must not be empty"):
        render_template("  ")
    with pytest.raises(ValueError, match="not a valid command line"):
        render_template("python 'unclosed")
