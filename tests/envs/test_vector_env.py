"""The batched env: SB3 VecEnv contract, auto-reset, seeds and options, per-car tracks, and car i
living exactly the episodes of an EmbeddedDonkeyEnv seeded seed + i."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecEnv

from donkeyrl.envs.common import EpisodeLimits
from donkeyrl.envs.embedded import EmbeddedDonkeyEnv
from donkeyrl.envs.vector import BatchedDonkeyEnv, DonkeyVecEnv
from donkeyrl.sim.camera import CameraConfig

CAM = CameraConfig(width=64, height=48)
KEYS = {"pos", "cte", "speed", "forward_vel", "hit", "lap_count", "last_lap_time", "progress",
        "track_length", "off_track", "lap_times", "track", "time", "steering", "throttle"}


def test_shapes_and_types() -> None:
    venv = BatchedDonkeyEnv(3, "generated_track", camera=CAM, seed=0)
    assert isinstance(venv, VecEnv) and venv.num_envs == 3 and DonkeyVecEnv is BatchedDonkeyEnv
    assert venv.observation_space.shape == (48, 64, 3)
    obs = venv.reset()
    assert obs.shape == (3, 48, 64, 3) and obs.dtype == np.uint8
    obs, rewards, dones, infos = venv.step(np.tile([0.0, 0.5], (3, 1)).astype(np.float32))
    assert obs.shape == (3, 48, 64, 3) and obs.dtype == np.uint8
    assert rewards.shape == (3,) and rewards.dtype == np.float64  # SB3 casts when it stores them
    assert dones.shape == (3,) and dones.dtype == bool and not dones.any()
    assert len(infos) == 3 and all(set(i) >= KEYS for i in infos)
    assert all(i["track"] == "generated_track" for i in infos)
    grey = BatchedDonkeyEnv(2, "oval", camera=CameraConfig(width=40, height=30, grey=True))
    assert grey.reset().shape == (2, 30, 40, 1)


def test_construction_is_warning_free() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. SB3's "render_mode attribute is not defined"
        venv = BatchedDonkeyEnv(2, "oval", camera=CAM)
    assert venv.render_mode is None


def test_bad_actions_and_arguments_raise() -> None:
    venv = BatchedDonkeyEnv(2, "oval", camera=CAM)
    venv.reset()
    with pytest.raises(ValueError, match="nan"):
        venv.step(np.array([[0.0, np.nan], [0.0, 0.5]]))
    with pytest.raises(ValueError):
        venv.step(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_envs"):
        BatchedDonkeyEnv(0, "oval")
    with pytest.raises(ValueError, match="nowhere"):
        BatchedDonkeyEnv(2, "nowhere")


def test_cars_with_different_actions_diverge_and_are_independent() -> None:
    venv = BatchedDonkeyEnv(2, "oval", camera=CAM, start_noise=False)
    venv.reset()
    for _ in range(30):
        obs, *_ , infos = venv.step(np.array([[0.0, 1.0], [0.0, 0.3]], np.float32))
    assert infos[0]["progress"] > infos[1]["progress"] > 0
    assert not np.array_equal(obs[0], obs[1])


def test_auto_reset_keeps_the_terminal_observation() -> None:
    limits = EpisodeLimits(max_steps=5)
    venv = BatchedDonkeyEnv(2, "generated_track", camera=CAM, limits=limits, start_noise=False)
    first = venv.reset()
    single = EmbeddedDonkeyEnv("generated_track", camera=CAM, limits=EpisodeLimits(max_steps=5), start_noise=False)
    single.reset(seed=0)
    action = np.array([0.1, 0.8], np.float32)
    for k in range(5):
        obs, rewards, dones, infos = venv.step(np.tile(action, (2, 1)))
        s_obs, s_reward, _, s_trunc, s_info = single.step(action)
        assert dones.tolist() == [k == 4] * 2
    assert s_trunc
    for i in range(2):
        assert infos[i]["truncated_reason"] == "step_limit" and infos[i]["TimeLimit.truncated"] is True
        assert venv.reset_infos[i]["time"] == 0.0 and venv.reset_infos[i]["progress"] == 0.0
        np.testing.assert_array_equal(infos[i]["terminal_observation"], s_obs)
        np.testing.assert_array_equal(obs[i], first[i])  # already the next episode's first frame
        assert infos[i]["progress"] == pytest.approx(s_info["progress"])
    # the next episode starts from scratch
    _, _, dones, infos = venv.step(np.tile(action, (2, 1)))
    assert not dones.any() and infos[0]["time"] == pytest.approx(0.05)


def test_matches_the_single_env_for_the_same_actions() -> None:
    n, steps = 3, 160
    venv = BatchedDonkeyEnv(n, "mini_monaco", camera=CAM, start_noise=False)
    singles = [EmbeddedDonkeyEnv("mini_monaco", camera=CAM, start_noise=False) for _ in range(n)]
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
            assert v_rew[i] == rew
            assert bool(v_done[i]) == (term or trunc)
            assert v_info[i]["TimeLimit.truncated"] == (trunc and not term)
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
        venv = BatchedDonkeyEnv(2, "generated_track", camera=CAM, seed=seed)
        out = [venv.reset()]
        for _ in range(20):
            out.append(venv.step(np.tile([0.2, 0.7], (2, 1)).astype(np.float32))[0])
        return out
    a, b, c = run(3), run(3), run(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def rollout_pair(n: int, track, *, seed: int, steps: int, dr: bool = False, max_steps: int | None = None):
    """Drive a batched env and n single envs seeded seed + i with the same random actions; yield
    (step, car, batched (obs, reward, done, info), single (obs, reward, terminated, truncated, info))."""
    limits = EpisodeLimits(max_steps=max_steps)
    venv = BatchedDonkeyEnv(n, track, camera=CAM, domain_randomization=dr, limits=limits)
    singles = [EmbeddedDonkeyEnv(track, camera=CAM, domain_randomization=dr, limits=limits) for _ in range(n)]
    venv.seed(seed)  # as SB3 does before the first reset: car i gets seed + i
    v_obs = venv.reset()
    for i, env in enumerate(singles):
        obs, info = env.reset(seed=seed + i)
        np.testing.assert_array_equal(obs, v_obs[i])
        assert info == venv.reset_infos[i]
    rng = np.random.default_rng(seed)
    for k in range(steps):
        actions = rng.uniform([-1, 0.2], [1, 1], size=(n, 2)).astype(np.float32)
        v_obs, v_rew, v_done, v_info = venv.step(actions)
        for i, env in enumerate(singles):
            single = env.step(actions[i])
            yield k, i, (v_obs[i], v_rew[i], v_done[i], v_info[i]), single
            if single[2] or single[3]:
                obs, info = env.reset()
                np.testing.assert_array_equal(obs, v_obs[i])
                assert info == venv.reset_infos[i]


@pytest.mark.parametrize("track, dr", [(["generated_track", "mini_monaco", "oval", "warehouse"], True),
                                       ("procedural", False)])
def test_cars_on_their_own_tracks_match_single_envs_seeded_alike(track, dr) -> None:
    tracks_seen: set[str] = set()
    ends = 0
    for _, _, (obs, rew, done, info), (s_obs, s_rew, s_term, s_trunc, s_info) in rollout_pair(
            4, track, seed=11, steps=120, dr=dr, max_steps=60):
        assert rew == s_rew and bool(done) == (s_term or s_trunc)
        extra = {"terminal_observation", "TimeLimit.truncated"}
        assert {k: v for k, v in info.items() if k not in extra} == s_info
        tracks_seen.add(info["track"])
        if done:
            ends += 1
            np.testing.assert_array_equal(info["terminal_observation"], s_obs)
        else:
            np.testing.assert_array_equal(obs, s_obs)
    assert ends >= 4 and len(tracks_seen) >= 3, (ends, tracks_seen)
    if track == "procedural":
        assert all(t.startswith("procedural-") for t in tracks_seen)


def test_reset_honours_per_car_seeds_and_options() -> None:
    venv = BatchedDonkeyEnv(3, ["oval", "mini_monaco", "warehouse"], camera=CAM)
    venv.seed(21)
    first = venv.reset()
    again = BatchedDonkeyEnv(3, ["oval", "mini_monaco", "warehouse"], camera=CAM, seed=21)
    np.testing.assert_array_equal(again._obs, first)  # seed= at construction resets alike
    for i in range(3):  # car i is an EmbeddedDonkeyEnv seeded 21 + i
        single = EmbeddedDonkeyEnv(["oval", "mini_monaco", "warehouse"], camera=CAM)
        obs, info = single.reset(seed=21 + i)
        np.testing.assert_array_equal(obs, first[i])
        assert info == venv.reset_infos[i]
    venv.set_options([{"track": "chicane_alley"}, {}, {"track": "oval"}])
    venv.reset()
    assert [i["track"] for i in venv.reset_infos][::2] == ["chicane_alley", "oval"]
    venv.reset()  # seeds and options are used once
    assert venv._seeds == [None] * 3 and venv._options == [{}] * 3
    venv.set_options({"track": "waveshare"})
    venv.reset()
    assert {i["track"] for i in venv.reset_infos} == {"waveshare"}


def test_reset_car_starts_one_cars_next_episode() -> None:
    venv = BatchedDonkeyEnv(2, "oval", camera=CAM, seed=0, start_noise=False)
    for _ in range(10):
        venv.step(np.tile([0.0, 0.8], (2, 1)))
    obs, info = venv.reset_car(1)
    assert info["progress"] == 0.0 and info["time"] == 0.0 and venv.reset_infos[1] is info
    _, _, _, infos = venv.step(np.tile([0.0, 0.8], (2, 1)))
    assert infos[0]["time"] == pytest.approx(0.55) and infos[1]["time"] == pytest.approx(0.05)


@pytest.mark.slow
def test_sb3_ppo_trains_on_the_vector_env() -> None:
    from stable_baselines3 import PPO

    venv = BatchedDonkeyEnv(4, "generated_track", camera=CAM, seed=0,
                        limits=EpisodeLimits(max_steps=40))
    model = PPO("CnnPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"features_extractor_kwargs": {"features_dim": 32}}, verbose=0)
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    obs = venv.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (4, 2) and np.all(np.isfinite(actions))
