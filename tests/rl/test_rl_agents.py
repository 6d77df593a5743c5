"""Every hyperparameter of the config reaches the SB3 model it configures."""

from __future__ import annotations

import dataclasses

import pytest
from stable_baselines3 import DQN, PPO, SAC

from donkeyrl.rl.agents import build_agent
from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.envbuild import build_vec_env
from donkeyrl.rl.policies import CompactCNN


def _model(fake_factory, **kw):
    factory, _ = fake_factory
    cfg = TrialConfig(**kw)
    venv = build_vec_env(cfg, env_factory=factory)
    return build_agent(cfg, venv), venv


def _lrs(model):
    return sorted({g["lr"] for g in model.policy.optimizer.param_groups})


def test_ppo_parameters_reach_the_model(fake_factory):
    model, venv = _model(fake_factory, agent="ppo", learning_rate=1.234e-4, gamma=0.97, n_steps=32,
                         batch_size=16, ent_coef=0.013, n_envs=3, n_epochs=2, gae_lambda=0.9,
                         clip_range=0.15, net_width=37, net_depth=1, features_dim=48, seed=5)
    assert isinstance(model, PPO)
    assert _lrs(model) == pytest.approx([1.234e-4])
    assert model.gamma == 0.97 and model.n_steps == 32 and model.batch_size == 16
    assert model.ent_coef == pytest.approx(0.013) and model.n_epochs == 2
    assert model.gae_lambda == 0.9 and model.clip_range(1.0) == pytest.approx(0.15)
    assert model.n_envs == 3 and venv.num_envs == 3 and model.seed == 5
    assert isinstance(model.policy.features_extractor, CompactCNN)
    assert model.policy.features_dim == 48
    assert model.policy.mlp_extractor.policy_net[0].out_features == 37
    assert len([m for m in model.policy.mlp_extractor.policy_net if hasattr(m, "out_features")]) == 1
    assert model.rollout_buffer.buffer_size == 32
    venv.close()


def test_ppo_learning_rate_in_optimizer_after_training(fake_factory):
    model, venv = _model(fake_factory, agent="ppo", learning_rate=7e-4, n_steps=16, batch_size=16,
                         n_envs=1, n_epochs=1)
    model.learn(32)
    assert _lrs(model) == pytest.approx([7e-4])
    venv.close()


def test_discrete_ppo_and_dqn_use_the_grid(fake_factory):
    model, venv = _model(fake_factory, agent="ppo", actions="discrete", n_steer=4, n_throttle=2,
                         n_envs=1, n_steps=16, batch_size=16)
    assert model.action_space.n == 8
    venv.close()
    model, venv = _model(fake_factory, agent="dqn", n_steer=5, n_throttle=3, learning_rate=2e-4,
                         gamma=0.9, batch_size=8, buffer_size=500, learning_starts=17, train_freq=3,
                         gradient_steps=2, exploration_fraction=0.4, exploration_final_eps=0.07,
                         target_update_interval=123, n_envs=2)
    assert isinstance(model, DQN) and model.action_space.n == 15
    assert _lrs(model) == pytest.approx([2e-4])
    assert model.gamma == 0.9 and model.batch_size == 8 and model.buffer_size == 500
    assert model.learning_starts == 17 and model.train_freq.frequency == 3
    assert model.gradient_steps == 2 and model.exploration_fraction == 0.4
    assert model.exploration_final_eps == 0.07 and model.n_envs == 2
    assert model.target_update_interval == 123
    venv.close()


def test_sac_parameters_reach_the_model(fake_factory):
    model, venv = _model(fake_factory, agent="sac", learning_rate=5e-4, gamma=0.95, batch_size=32,
                         buffer_size=300, tau=0.03, ent_coef="auto", n_envs=1, net_width=20,
                         learning_starts=10)
    assert isinstance(model, SAC)
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert model.critic.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert model.gamma == 0.95 and model.tau == 0.03 and model.batch_size == 32
    assert model.buffer_size == 300 and model.learning_starts == 10
    assert model.actor.latent_pi[0].out_features == 20
    venv.close()


def test_observation_pipeline_reaches_the_env(fake_factory):
    factory, built = fake_factory
    cfg = TrialConfig(obs_width=48, obs_height=24, grey=True, frame_stack=3, n_envs=2)
    venv = build_vec_env(cfg, env_factory=factory)
    assert venv.observation_space.shape == (24, 48, 3)
    assert len(built) == 2
    rgb = build_vec_env(dataclasses.replace(cfg, grey=False, frame_stack=1), env_factory=factory)
    assert rgb.observation_space.shape == (24, 48, 3)
    venv.close(), rgb.close()


def test_nature_cnn_on_raw_frames(fake_factory):
    from stable_baselines3.common.torch_layers import NatureCNN

    model, venv = _model(fake_factory, agent="ppo", policy_net="nature", obs_width=160,
                         obs_height=120, grey=False, crop_top=0.0, frame_stack=1, n_envs=1,
                         n_steps=16, batch_size=16)
    assert isinstance(model.policy.features_extractor, NatureCNN)
    assert model.observation_space.shape == (3, 120, 160)
    venv.close()


def test_config_json_round_trip(tmp_path):
    cfg = TrialConfig(agent="dqn", tracks=("a", "b"), learning_rate=1e-3, n_steer=3)
    cfg.save(tmp_path)
    assert TrialConfig.load(tmp_path) == cfg
    assert TrialConfig.load(tmp_path / "model.zip") == cfg


def test_env_parameters_reach_make_env_and_the_wrappers(fake_factory):
    from donkeyrl.rl.envbuild import build_env
    from donkeyrl.rl.wrappers import MinLapTimeGuard, ProgressReward, SteeringRateLimit

    factory, built = fake_factory
    cfg = TrialConfig(tracks=("oval", "warren"), max_cte=5.0, steer_limit=0.8, throttle_min=0.3,
                      throttle_max=0.9, domain_randomization=True, max_steps=77, max_laps=3, steer_rate_limit=0.2,
                      obs_width=40, obs_height=20, grey=False, crop_top=0.3, min_lap_time=4.0,
                      crash_penalty=3.0)
    env = build_env(cfg, seed=9, env_factory=factory)
    kw = built[-1].make_kwargs
    assert kw["track"] == ["oval", "warren"] and kw["seed"] == 9 and kw["max_cte"] == 5.0
    assert kw["steer_limit"] == 0.8 and kw["throttle_min"] == 0.3 and kw["throttle_max"] == 0.9
    assert kw["domain_randomization"] is True and kw["max_steps"] == 77
    assert kw["max_laps"] == 3
    cam = kw["camera"]
    assert (cam.width, cam.height, cam.grey, cam.crop_top) == (40, 20, False, 0.3)
    chain, e = [], env
    while hasattr(e, "env"):
        chain.append(e)
        e = e.env
    by_type = {type(w): w for w in chain}
    assert by_type[SteeringRateLimit].max_step == pytest.approx(0.2 * 1.6)
    assert by_type[ProgressReward].max_cte == 5.0 and by_type[ProgressReward].crash_penalty == 3.0
    assert by_type[MinLapTimeGuard].min_lap_time == 4.0
    env.close()
