"""The batched vector environment: SB3 VecEnv contract, auto-reset, and same dynamics as DonkeyEnv."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecEnv

from donkeyrl.envs.common import EpisodeLimits
from donkeyrl.envs.embedded import DonkeyEnv
from donkeyrl.envs.vector import DonkeyVecEnv
from donkeyrl.sim.camera import CameraConfig

CAM = CameraConfig(width=64, height=48)
KEYS = {"pos", "cte", "speed", "forward_vel", "hit", "lap_count", "last_lap_time", "progress",
        "track_length", "off_track", "lap_times", "track", "time", "steering", "throttle"}


def test_shapes_and_types() -> None:
    venv = DonkeyVecEnv(3, "generated_track", camera=CAM, seed=0)
    assert isinstance(venv, VecEnv) and venv.num_envs == 3
    assert venv.observation_space.shape == (48, 64, 3)
    obs = venv.reset()
    assert obs.shape == (3, 48, 64, 3) and obs.dtype == np.uint8
    obs, rewards, dones, infos = venv.step(np.tile([0.0, 0.5], (3, 1)).astype(np.float32))
    assert obs.shape == (3, 48, 64, 3) and obs.dtype == np.uint8
    assert rewards.shape == (3,) and rewards.dtype == np.float32
    assert dones.shape == (3,) and dones.dtype == bool and not dones.any()
    assert len(infos) == 3 and all(set(i) >= KEYS for i in infos)
    assert all(i["track"] == "generated_track" for i in infos)
    grey = DonkeyVecEnv(2, "oval", camera=CameraConfig(width=40, height=30, grey=True))
    assert grey.reset().shape == (2, 30, 40, 1)


def test_construction_is_warning_free() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. SB3's "render_mode attribute is not defined"
        venv = DonkeyVecEnv(2, "oval", camera=CAM)
    assert venv.render_mode is None


def test_bad_actions_and_arguments_raise() -> None:
    venv = DonkeyVecEnv(2, "oval", camera=CAM)
    venv.reset()
    with pytest.raises(ValueError, match="nan"):
        venv.step(np.array([[0.0, np.nan], [0.0, 0.5]]))
    with pytest.raises(ValueError):
        venv.step(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_envs"):
        DonkeyVecEnv(0, "oval")
    with pytest.raises(ValueError, match="nowhere"):
        DonkeyVecEnv(2, "nowhere")


def test_cars_with_different_actions_diverge_and_are_independent() -> None:
    venv = DonkeyVecEnv(2, "oval", camera=CAM, start_noise=False)
    venv.reset()
    for _ in range(30):
        obs, *_ , infos = venv.step(np.array([[0.0, 1.0], [0.0, 0.3]], np.float32))
    assert infos[0]["progress"] > infos[1]["progress"] > 0
    assert not np.array_equal(obs[0], obs[1])


def test_auto_reset_keeps_the_terminal_observation() -> None:
    limits = EpisodeLimits(max_steps=5)
    venv = DonkeyVecEnv(2, "generated_track", camera=CAM, limits=limits, start_noise=False)
    first = venv.reset()
    single = DonkeyEnv("generated_track", camera=CAM, limits=EpisodeLimits(max_steps=5), start_noise=False)
    single.reset(seed=0)
    action = np.array([0.1, 0.8], np.float32)
    for k in range(5):
        obs, rewards, dones, infos = venv.step(np.tile(action, (2, 1)))
        s_obs, s_reward, _, s_trunc, s_info = single.step(action)
        assert dones.tolist() == [k == 4] * 2
    assert s_trunc
    for i in range(2):
        assert infos[i]["truncated_reason"] == "step_limit" and infos[i]["TimeLimit.truncated"] is True
        np.testing.assert_array_equal(infos[i]["terminal_observation"], s_obs)
        np.testing.assert_array_equal(obs[i], first[i])  # already the next episode's first frame
        assert infos[i]["progress"] == pytest.approx(s_info["progress"])
    # the next episode starts from scratch
    _, _, dones, infos = venv.step(np.tile(action, (2, 1)))
    assert not dones.any() and infos[0]["time"] == pytest.approx(0.05)


def test_matches_the_single_env_for_the_same_actions() -> None:
    n, steps = 3, 160
    venv = DonkeyVecEnv(n, "mini_monaco", camera=CAM, start_noise=False)
    singles = [DonkeyEnv("mini_monaco", camera=CAM, start_noise=False) for _ in range(n)]
    v_obs = venv.reset()
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(env.reset(seed=i)[0], v_obs[i])
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(steps):
        actions = rng.uniform([-1, 0.2], [1, 1], size=(n, 2)).astype(np.float32)
        v_obs, v_rew, v_done, v_info = venv.step(actions)
        for i, env in enumerate(singles):
            obs, rew, term, trunc, info = env.step(actions[i])
            assert v_rew[i] == np.float32(rew)
            assert bool(v_done[i]) == (term or trunc)
            extra = {"terminal_observation", "TimeLimit.truncated"}
            assert {k: v for k, v in v_info[i].items() if k not in extra} == info
            if term or trunc:
                ends += 1
                np.testing.assert_array_equal(v_info[i]["terminal_observation"], obs)
                obs, _ = env.reset()
            np.testing.assert_array_equal(v_obs[i], obs)
    assert ends > 0, "random driving on mini_monaco should end some episodes (hits)"


def test_same_seed_same_vector_rollout() -> None:
    def run(seed: int) -> list[np.ndarray]:
        venv = DonkeyVecEnv(2, "generated_track", camera=CAM, seed=seed)
        out = [venv.reset()]
        for _ in range(20):
            out.append(venv.step(np.tile([0.2, 0.7], (2, 1)).astype(np.float32))[0])
        return out
    a, b, c = run(3), run(3), run(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.slow
def test_sb3_ppo_trains_on_the_vector_env() -> None:
    from stable_baselines3 import PPO

    venv = DonkeyVecEnv(4, "generated_track", camera=CAM, seed=0,
                        limits=EpisodeLimits(max_steps=40))
    model = PPO("CnnPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"features_extractor_kwargs": {"features_dim": 32}}, verbose=0)
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    obs = venv.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (4, 2) and np.all(np.isfinite(actions))
