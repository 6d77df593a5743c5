"""Fine-tuning from a saved model, and the validation race a trial ends with."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.evaluate import load_trained
from donkeyrl.rl.finetune import InitModelError, check_compatible, init_weights, load_init
from donkeyrl.rl.train import run_trial

TINY = dict(timesteps=128, n_envs=2, n_steps=64, batch_size=64, n_epochs=1, eval_episodes=1)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("saved")
    result = run_trial(TrialConfig("ppo", seed=3, validation=False, **TINY), out)
    assert result["run_status"] == "ok", result["message"]
    return out


def test_weights_come_from_the_saved_model(saved):
    from donkeyrl.rl.agents import build_agent
    from donkeyrl.rl.envbuild import build_vec_env

    cfg = TrialConfig("ppo", seed=99, learning_rate=1e-5, tracks=("warehouse",), **TINY)
    venv = build_vec_env(cfg)
    try:
        model = build_agent(cfg, venv)
        old, _ = load_trained(saved)
        before = {k: v.clone() for k, v in model.policy.state_dict().items()}
        init_weights(model, load_init(saved, cfg), saved)
        after = model.policy.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in after)
        for k, v in old.policy.state_dict().items():
            assert torch.equal(v, after[k]), k
        assert model.learning_rate == 1e-5  # the new trial's hyperparameters are kept
    finally:
        venv.close()


def test_another_contract_is_refused_naming_each_difference(saved):
    base = TrialConfig("ppo", **TINY)
    with pytest.raises(InitModelError, match="frame_stack: model 2, trial 3") as err:
        check_compatible(load_trained(saved)[1], base.replace(frame_stack=3, net_width=32), saved)
    assert "net_width: model 64, trial 32" in str(err.value)
    with pytest.raises(InitModelError, match="agent: model 'ppo', trial 'dqn'"):
        load_init(saved, TrialConfig("dqn"))
    with pytest.raises(InitModelError, match="does not exist"):
        load_init(saved / "nothing-here", base)


def test_cli_refuses_a_mismatched_init_model_before_training(saved, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "donkeyrl", "train", "--init-model", str(saved),
                           "--obs-width", "80", "--save-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "obs_width: model 64, trial 80" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "model.zip").exists()


def test_fine_tuned_trial_trains_and_races_the_validation_set(saved, tmp_path):
    from donkeyrl.sim.tracksets import validation_tracks

    result = run_trial(TrialConfig("ppo", init_model=str(saved), seed=4, **TINY), tmp_path)
    assert result["run_status"] == "ok", result["message"]
    assert result["params"]["init_model"] == str(saved)
    v = result["validation"]
    assert [t["track"] for t in v["tracks"]] == list(validation_tracks())
    assert result["race_score"] == pytest.approx(sum(t["race_score"] for t in v["tracks"]) / len(v["tracks"]))
    assert 0.0 <= result["validation_lap_rate"] <= 1.0
    json.dumps(result)  # the result file must be plain JSON
