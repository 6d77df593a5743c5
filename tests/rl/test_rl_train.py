"""TC-005 and the trial runner's contract, on the fake env (fast); CLI input errors."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from stable_baselines3 import PPO

from donkeyrl.cli import main
from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.envbuild import build_vec_env, metrics_wrappers
from donkeyrl.rl.evaluate import ModelLoadError, evaluate, load_trained
from donkeyrl.rl.train import run_trial


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


def test_diverged_training_is_a_result_not_a_crash(tmp_path, fake_factory):
    factory, _ = fake_factory
    cfg = TrialConfig(timesteps=64, n_envs=1, n_steps=32, batch_size=32, learning_rate=1e12,
                      eval_episodes=1, max_steps=30)
    result = run_trial(cfg, tmp_path, env_factory=factory)
    # A learning rate of 1e12 blows the weights up: either SB3's distribution check or the finite
    # check catches it.
    assert result["run_status"] == "diverged", result
    assert result["message"]


@pytest.mark.parametrize("argv,match", [
    (["--agent", "a2c"], "invalid choice"),
    (["--timesteps", "-5"], "timesteps must be >= 0"),
    (["--n-steer", "1"], "n_steer must be >= 2"),
    (["--crop-top", "1.5"], "crop_top"),
])
def test_train_cli_rejects_bad_input(argv, match, capsys):
    with pytest.raises(SystemExit) if "a2c" in argv else _no_raise():
        code = main(["train", *argv, "--save-dir", "/nonexistent-never-created"])
        assert code == 2
    err = capsys.readouterr().err
    assert match in err


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


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_expert_lap_time_for_comparison():
    from donkeyrl.rl.evaluate import expert_lap_time

    lap = expert_lap_time("oval")
    assert lap is not None and 3.0 < lap < 60.0
    assert expert_lap_time("generated_road") is None  # open road: no laps
    assert expert_lap_time("no-such-track") is None  # never fails an evaluation
