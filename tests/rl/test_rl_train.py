"""TC-005 and the trial runner's contract, on the fake env (fast); CLI input errors."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from donkeyrl.cli import main
from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.envbuild import build_vec_env, metrics_wrappers
from donkeyrl.rl.evaluate import ModelLoadError, evaluate, load_trained
from donkeyrl.rl.train import classify_failure, failure_message, run_trial


def test_runner_exits_cleanly_tc005(tmp_path, fake_factory):
    factory, built = fake_factory
    cfg = TrialConfig(agent="ppo", timesteps=100, n_envs=2, n_steps=32, batch_size=32,
                      eval_episodes=2, max_steps=50, seed=3)
    result = run_trial(cfg, tmp_path, env_factory=factory)
    assert result["run_status"] == "ok", result["message"]
    assert (tmp_path / "model.zip").is_file() and (tmp_path / "trial_config.json").is_file()
    assert built and all(env.closed for env in built)  # training and evaluation envs closed
    model = PPO.load(tmp_path / "model.zip")
    assert model.num_timesteps >= 100
    assert len(result["episode_rewards"]) == 2 and result["mean_reward"] is not None
    assert result["params"]["learning_rate"] == 3e-4 and result["params"]["n_envs"] == 2
    for key in ("driving_score", "completion", "laps", "lap_times", "mean_abs_cte", "max_abs_cte",
                "mean_speed", "steering_oscillation", "off_track_count", "distance",
                "reward_hacking_flag", "model_path", "elapsed_sec", "train_steps_per_sec", "seed"):
        assert key in result, key
    json.dumps(result, allow_nan=False)


def test_evaluation_rebuilds_the_training_wrappers(tmp_path, fake_factory):
    factory, _ = fake_factory
    cfg = TrialConfig(agent="dqn", n_steer=3, n_throttle=2, timesteps=64, n_envs=1, learning_starts=16,
                      batch_size=8, buffer_size=200, eval_episodes=1, max_steps=40, frame_stack=3,
                      obs_width=40, obs_height=20, reward="speed")
    result = run_trial(cfg, tmp_path, env_factory=factory)
    assert result["run_status"] == "ok", result["message"]
    model, loaded = load_trained(tmp_path / "model.zip")
    assert loaded == cfg.resolved()
    venv = build_vec_env(loaded, n_envs=1, env_factory=factory)
    assert venv.observation_space.shape == (20, 40, 3) and venv.action_space.n == 6
    assert model.observation_space.shape == (3, 20, 40)  # channels first after SB3's transpose
    venv.close()
    again = evaluate(model, loaded, episodes=1, env_factory=factory)
    assert again["episode_rewards"] == pytest.approx(result["episode_rewards"])  # same seed, same stack


def test_driving_metrics_are_recorded_per_episode(fake_factory):
    factory, _ = fake_factory
    cfg = TrialConfig(max_steps=30, n_envs=1, frame_stack=1)
    venv = build_vec_env(cfg, env_factory=factory)
    venv.reset()
    for _ in range(30):
        venv.step(np.array([[0.04, 0.8]], np.float32))
    (m,) = metrics_wrappers(venv)[0].episodes
    assert m.steps == 30 and m.end_reason == "step_limit" and m.progress > 10
    assert 0 < m.completion < 1 and m.mean_speed > 0 and m.distance >= m.progress * 0.99
    assert 0 < m.driving_score < 100
    venv.close()


class _PoisonWeights(BaseCallback):
    """Sets one policy weight to NaN after ``at`` steps: what a diverging optimiser ends with."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at:
            with torch.no_grad():
                next(self.model.policy.parameters()).fill_(float("nan"))
        return True


def test_diverged_training_is_a_result_with_a_one_line_message(tmp_path, fake_factory):
    factory, _ = fake_factory
    cfg = TrialConfig(timesteps=96, n_envs=1, n_steps=32, batch_size=32, eval_episodes=1, max_steps=30)
    result = run_trial(cfg, tmp_path, env_factory=factory, callbacks=[_PoisonWeights(40)])
    # NaN weights: either SB3's distribution check (whose message holds whole tensors) or the
    # finite check catches it; the record keeps one line, no tensor.
    assert result["run_status"] == "diverged", result
    message = result["message"]
    assert message and "\n" not in message and "tensor(" not in message and len(message) <= 340


def test_failure_message_keeps_the_first_line_only():
    dump = "Expected parameter loc (Tensor of shape (8, 2)) to satisfy Real(), but found invalid values:\n" + \
        "tensor([[nan, nan],\n" * 500
    msg = failure_message(ValueError(dump))
    assert msg == "ValueError: Expected parameter loc (Tensor of shape (8, 2)) to satisfy Real(), but found " \
        "invalid values:"
    assert classify_failure(ValueError(dump)) == "diverged"
    assert len(failure_message(RuntimeError("x" * 5000))) < 320
    assert failure_message(EOFError()) == "EOFError"


def _train(argv, capsys):
    """(exit code, stderr) of ``donkeyrl train argv`` (argparse errors exit through SystemExit)."""
    try:
        code = main(["train", *argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv,match", [
    (["--agent", "a2c"], "invalid choice: 'a2c'"),
    (["--timesteps", "-5"], "--timesteps: -5 must be an integer in [0, 1000000000]"),
    (["--timesteps", str(10**30)], "--timesteps"),
    (["--n-steer", "1"], "--n-steer: 1 must be an integer in [2, 64]"),
    (["--n-steer", str(10**7)], "--n-steer"),
    (["--crop-top", "1.5"], "--crop-top: 1.5 must be a number in [0, 0.9]"),
    (["--n-envs", "100000"], "--n-envs: 100000 must be an integer in [1, 128]"),
    (["--features-dim", "1e8"], "--features-dim: '1e8' is not an integer"),
    (["--features-dim", "100000000"], "--features-dim"),
    (["--frame-stack", "1000"], "--frame-stack"),
    (["--net-width", "100000"], "--net-width"),
    (["--batch-size", "1000000"], "--batch-size"),
    (["--agent", "dqn", "--buffer-size", "100000000"], "--buffer-size"),
    (["--gae-lambda", "2"], "--gae-lambda: 2 must be a number in [0, 1]"),
    (["--port", "70000"], "--port: 70000 must be an integer in [1, 65535]"),
    (["--port", "0"], "--port"),
    (["--seed", str(2**32)], "--seed: 4294967296 must be an integer in [0, 4294967295]"),
    (["--learning-rate", "1e10"], "--learning-rate: 1e10 must be a number in [1e-08, 1]"),
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--agent", "dqn", "--n-epochs", "5"], "n_epochs does not apply to agent dqn (it applies to: ppo)"),
    (["--agent", "sac", "--n-steer", "5"], "n_steer applies only to discrete actions"),
    (["--agent", "dqn", "--actions", "continuous"], "agent dqn acts on discrete actions only"),
    (["--agent", "ppo", "--ent-coef", "auto"], "ent_coef must be a number"),
    (["--throttle-min", "0.9", "--throttle-max", "0.5"], "throttle_min 0.9 > throttle_max 0.5"),
    (["--env", "donkey-generated-roads-v0", "--track", "oval"], "either --env or --track"),
    (["--bogus", "1"], "unrecognized arguments: --bogus 1"),
])
def test_train_cli_rejects_bad_input_in_one_line(argv, match, capsys, tmp_path):
    code, err = _train([*argv, "--save-dir", str(tmp_path / "never-created")], capsys)
    assert code == 2, err
    assert match in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "never-created").exists()


def test_train_cli_refuses_a_directory_as_result_file_before_training(tmp_path, capsys):
    code, err = _train(["--timesteps", "10", "--save-dir", str(tmp_path / "run"),
                        "--result-file", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "model.zip").exists()


def test_train_cli_rejects_unwritable_save_dir(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")  # a directory cannot be created below a file, even by root
    code = main(["train", "--timesteps", "10", "--save-dir", str(blocker / "run")])
    assert code == 2 and "not writable" in capsys.readouterr().err


def test_corrupt_or_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_trained(tmp_path / "missing.zip")
    bad = tmp_path / "model.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="not a saved SB3 model"):
        load_trained(bad)
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("data", "{broken")
    TrialConfig().save(tmp_path)
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        load_trained(bad)


def test_expert_lap_time_for_comparison():
    from donkeyrl.rl.evaluate import expert_lap_time

    lap = expert_lap_time("oval")
    assert lap is not None and 3.0 < lap < 60.0
    assert expert_lap_time("generated_road") is None  # open road: no laps
    assert expert_lap_time("no-such-track") is None  # never fails an evaluation
