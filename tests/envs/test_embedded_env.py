"""The Gymnasium environment over the built-in simulator: the gym-donkeycar contract, end to end."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from donkeyrl.envs import DONKEY_ENV_IDS, make_env
from donkeyrl.envs.embedded import EmbeddedDonkeyEnv
from donkeyrl.sim.camera import CameraConfig
from donkeyrl.sim.expert import ExpertDriver
from donkeyrl.sim.track import Track
from donkeyrl.sim.tracks import UnknownTrackError
from donkeyrl.units import TELEMETRY_SCALE

CONTRACT_KEYS = {"pos", "cte", "speed", "forward_vel", "hit", "lap_count", "last_lap_time", "gyro", "accel",
                 "vel", "car", "progress", "track_length", "off_track", "lap_times", "track", "time",
                 "steering", "throttle", "heading_error"}
SMALL = CameraConfig(width=32, height=24)  # fast frames where the picture does not matter


def strict_check(env: gym.Env) -> None:
    """gymnasium's check_env with every warning turned into a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # only a note that envs made without gym.make have no spec to re-create them from
        warnings.filterwarnings("ignore", message=".*alternative render modes.*")
        check_env(env, skip_render_check=False)


def run_until_end(env: gym.Env, action: np.ndarray, max_steps: int = 3000) -> tuple[int, float, bool, bool, dict]:
    for n in range(1, max_steps + 1):
        _, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return n, reward, terminated, truncated, info
    raise AssertionError(f"episode did not end in {max_steps} steps")


def expert_rollout(env: gym.Env, steps: int):
    base = env.unwrapped
    expert = ExpertDriver(base.sim.track)
    for _ in range(steps):
        out = env.step(expert.action_for_env(base.sim.telemetry(0)))
        yield out
        if out[2] or out[3]:
            return


# ------------------------------------------------------------------------------ API contract
def test_check_env_passes_with_the_default_camera() -> None:
    env = make_env("generated_track", render_mode="rgb_array")
    assert env.observation_space.shape == (120, 160, 3) and env.observation_space.dtype == np.uint8
    assert env.action_space.shape == (2,) and env.action_space.dtype == np.float32
    strict_check(env)


def test_registered_ids_make_working_envs() -> None:
    assert "donkeyrl/Donkey-v0" in gym.registry
    for env_id in DONKEY_ENV_IDS:
        assert f"donkeyrl/{env_id}" in gym.registry
    env = gym.make("donkeyrl/Donkey-v0", track="oval", camera=SMALL)
    assert env.unwrapped.sim.track.name == "oval"
    strict_check(env.unwrapped)
    env = gym.make("donkeyrl/donkey-minimonaco-track-v0", camera=SMALL)
    assert env.unwrapped.sim.track.name == "mini_monaco"
    obs, info = env.reset(seed=0)
    assert obs.shape == (24, 32, 3) and info["track"] == "mini_monaco"
    strict_check(env.unwrapped)


def test_donkey_env_ids_are_accepted_as_track_names() -> None:
    env = make_env("donkey-generated-roads-v0", camera=SMALL)
    assert env.unwrapped.sim.track.name == "generated_road" and not env.unwrapped.sim.track.closed
    env = make_env("donkey-mountain-track-v0", camera=SMALL)
    assert env.unwrapped.sim.track.name == "mountain_track"


def test_grey_cropped_camera_gives_the_right_observation_space() -> None:
    cam = CameraConfig(width=80, height=60, grey=True, crop_top=0.4)
    env = make_env("generated_track", camera=cam, render_mode="rgb_array")
    assert env.observation_space.shape == (60, 80, 1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (60, 80, 1) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    assert obs.std() > 5  # a real picture, not a constant
    # render() still shows the full 120x160 RGB view
    frame = env.render()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    strict_check(env)


def test_render_modes() -> None:
    env = make_env("generated_track", camera=SMALL)
    env.reset(seed=0)
    assert env.render() is None
    env = make_env("generated_track", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), obs)  # default camera: the frame is the observation
    with pytest.raises(ValueError, match="render_mode"):
        make_env("generated_track", render_mode="human")


def test_info_has_the_contract_keys_in_telemetry_units() -> None:
    env = make_env("generated_track", camera=SMALL, throttle_min=-1.0, seed=1)
    base = env.unwrapped
    _, info = env.reset(seed=1)
    assert set(info) >= CONTRACT_KEYS
    last_progress = 0.0
    for _obs, reward, _terminated, _truncated, info in expert_rollout(env, 120):
        assert set(info) >= CONTRACT_KEYS
        tel = base.sim.telemetry(0)
        assert info["pos"] == pytest.approx((tel.x / TELEMETRY_SCALE, tel.y / TELEMETRY_SCALE, tel.z / TELEMETRY_SCALE))
        assert info["speed"] == pytest.approx(tel.speed / TELEMETRY_SCALE)
        assert info["forward_vel"] == pytest.approx(tel.forward_vel / TELEMETRY_SCALE)
        assert info["cte"] == pytest.approx(tel.cte)  # cte stays in simulator units
        assert info["hit"] == "none" and info["track"] == "generated_track" and not info["off_track"]
        assert info["track_length"] == pytest.approx(base.sim.track.length)
        assert info["progress"] >= last_progress
        last_progress = info["progress"]
        assert 0.0 <= info["car"][2] < 360.0
        assert isinstance(info["lap_times"], list)
        # the DonkeyCar reward, by hand: (1 - |cte| / max_cte) * forward_vel while moving forward
        if info["forward_vel"] > 0:
            assert reward == pytest.approx((1 - abs(info["cte"]) / 8.0) * info["forward_vel"])
    assert info["time"] == pytest.approx(120 * 0.05)
    assert 2.0 < info["speed"] < 5.0  # telemetry units: sim units / 8 (top speed 40 -> 5)
    assert last_progress > 50.0


def test_out_of_range_actions_are_clipped_to_the_action_box() -> None:
    env = make_env("oval", camera=SMALL, steer_limit=0.5, throttle_max=0.8, seed=0)
    _, _, _, _, info = env.step(np.array([3.0, 5.0], np.float32))
    assert info["steering"] == pytest.approx(0.5) and info["throttle"] == pytest.approx(0.8)
    _, _, _, _, info = env.step(np.array([-3.0, -5.0], np.float32))
    assert info["steering"] == pytest.approx(-0.5) and info["throttle"] == pytest.approx(0.0)


@pytest.mark.parametrize("bad, pattern", [
    (np.array([np.nan, 0.5]), "nan"),
    (np.array([0.0, np.inf]), "inf"),
    (np.array([0.0, 0.5, 0.1]), r"shape \(3,\)"),
    (np.array(0.3), r"shape \(\)"),
    (np.zeros((2, 1)), r"shape \(2, 1\)"),
])
def test_bad_actions_raise_value_error_naming_the_value(bad: np.ndarray, pattern: str) -> None:
    env = make_env("oval", camera=SMALL, seed=0)
    with pytest.raises(ValueError, match=pattern):
        env.step(bad)


def test_unknown_tracks_and_bad_arguments_give_clear_errors() -> None:
    with pytest.raises(UnknownTrackError, match=r"'mini_monacco'.*Did you mean 'mini_monaco'.*Valid names"):
        make_env("mini_monacco")
    with pytest.raises(ValueError, match="nowhere.*Valid names"):
        make_env(["oval", "nowhere"])
    with pytest.raises(ValueError, match="unity.*embedded, donkey"):
        make_env("oval", sim="unity")
    with pytest.raises(ValueError, match="steer_limit"):
        make_env("oval", steer_limit=0.0)
    with pytest.raises(ValueError, match="throttle_min"):
        make_env("oval", throttle_min=0.5, throttle_max=0.2)
    with pytest.raises(ValueError, match="max_cte"):
        make_env("oval", max_cte=-1.0)


# ------------------------------------------------------------------------------ determinism
def rollout(seed: int, domain_randomization: bool = False, steps: int = 150):
    env = make_env(["generated_track", "mini_monaco"], camera=CameraConfig(width=64, height=48),
                   domain_randomization=domain_randomization)
    rng = np.random.default_rng(123)
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, False, False, info)]
    for _ in range(steps):
        a = rng.uniform([-1, 0], [1, 1]).astype(np.float32)
        step = env.step(a)
        out.append(step)
        if step[2] or step[3]:
            obs, info = env.reset()
            out.append((obs, 0.0, False, False, info))
    return out


@pytest.mark.parametrize("dr", [False, True])
def test_same_seed_same_rollout_bit_for_bit(dr: bool) -> None:
    a, b = rollout(5, dr), rollout(5, dr)
    assert len(a) == len(b)
    for (oa, ra, ta, ua, ia), (ob, rb, tb, ub, ib) in zip(a, b):
        assert np.array_equal(oa, ob)
        assert ra == rb and ta == tb and ua == ub
        assert ia == ib
    c = rollout(6, dr)
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c)), "the seed must matter"


# ------------------------------------------------------------------------------ episode ends
def test_leaving_the_road_terminates_with_reward_minus_one() -> None:
    env = make_env("oval", camera=SMALL, max_cte=2.0, start_noise=False, seed=0)
    n, reward, terminated, truncated, info = run_until_end(env, np.array([1.0, 0.5], np.float32))
    assert terminated and not truncated and info["terminated_reason"] == "cte"
    assert abs(info["cte"]) > 2.0 and reward == -1.0
    assert 3 < n < 100


def test_hitting_a_barrier_terminates() -> None:
    env = make_env("mini_monaco", camera=SMALL, seed=0)
    n, reward, terminated, truncated, info = run_until_end(env, np.array([-1.0, 0.6], np.float32))
    assert terminated and info["terminated_reason"] == "hit" and info["hit"] != "none"
    assert reward == -1.0


def test_watchdog_truncates_a_parked_car() -> None:
    env = make_env("generated_track", camera=SMALL, seed=0)
    n, reward, terminated, truncated, info = run_until_end(env, np.array([0.0, 0.0], np.float32))
    assert truncated and not terminated and info["truncated_reason"] == "stuck"
    assert n == env.unwrapped.limits.stuck_steps


def test_watchdog_truncates_a_circling_car() -> None:
    env = make_env("generated_track", camera=SMALL, max_cte=30.0, seed=0)
    n, _, terminated, truncated, info = run_until_end(env, np.array([1.0, 0.12], np.float32))
    assert truncated and not terminated and info["truncated_reason"] == "stuck"
    assert info["speed"] > 1.0, "the car was moving the whole time"
    assert info["progress"] < 15.0 and n < 400


def test_watchdog_truncates_a_reversing_car() -> None:
    env = make_env("oval", camera=SMALL, throttle_min=-1.0, max_cte=50.0, seed=0)
    n, _, terminated, truncated, info = run_until_end(env, np.array([0.0, -0.3], np.float32))
    assert truncated and info["truncated_reason"] == "stuck"
    assert info["forward_vel"] < -1.0 and info["progress"] == 0.0
    assert n == env.unwrapped.limits.stuck_steps


def test_step_limit_truncates() -> None:
    env = make_env("generated_track", camera=SMALL, throttle_min=-1.0, max_steps=25, seed=0)
    steps = list(expert_rollout(env, 100))
    assert len(steps) == 25
    _, reward, terminated, truncated, info = steps[-1]
    assert truncated and not terminated and info["truncated_reason"] == "step_limit" and reward > 0


def test_auto_step_limit_scales_with_track_length() -> None:
    short = make_env("waveshare", camera=SMALL, seed=0).unwrapped
    long = make_env("thunderhill", camera=SMALL, seed=0).unwrapped
    assert 1000 <= short._max_steps < long._max_steps <= 6000


def test_open_road_end_truncates_as_end_of_road() -> None:
    road = Track.from_waypoints("short_road", np.array([[0.0, z] for z in range(0, 61, 10)], float), 3.0,
                                closed=False)
    env = EmbeddedDonkeyEnv(road, camera=SMALL, throttle_min=-1.0)
    env.reset(seed=0)
    steps = list(expert_rollout(env, 500))
    _, _, terminated, truncated, info = steps[-1]
    assert truncated and not terminated and info["truncated_reason"] == "end_of_road"
    assert info["progress"] == pytest.approx(road.length, abs=2.0) and info["lap_count"] == 0


def test_max_laps_truncates_after_a_lap() -> None:
    env = make_env("waveshare", camera=SMALL, throttle_min=-1.0, max_laps=1, seed=0)
    steps = list(expert_rollout(env, 1000))
    _, _, terminated, truncated, info = steps[-1]
    assert truncated and info["truncated_reason"] == "max_laps" and info["lap_count"] == 1
    assert info["last_lap_time"] == pytest.approx(info["lap_times"][0]) and info["last_lap_time"] > 2.0


# ------------------------------------------------------------------------------ resets
def test_domain_randomisation_changes_frames_between_resets() -> None:
    plain = make_env("generated_track", start_noise=False)
    a, _ = plain.reset(seed=1)
    b, _ = plain.reset()
    np.testing.assert_array_equal(a, b)  # same pose, same look: the control for the next check
    dr = make_env("generated_track", start_noise=False, domain_randomization=True)
    frames = [dr.reset(seed=1)[0]] + [dr.reset()[0] for _ in range(3)]
    for i in range(len(frames) - 1):
        assert not np.array_equal(frames[i], frames[i + 1])
        assert np.abs(frames[i].astype(int) - frames[i + 1]).mean() > 2.0
    again = make_env("generated_track", start_noise=False, domain_randomization=True)
    np.testing.assert_array_equal(again.reset(seed=1)[0], frames[0])


def test_start_noise_varies_the_start_pose() -> None:
    env = make_env("generated_track", camera=SMALL)
    ctes = {round(env.reset(seed=s)[1]["cte"], 6) for s in range(5)}
    assert len(ctes) == 5 and max(abs(c) for c in ctes) <= 0.25
    quiet = make_env("generated_track", camera=SMALL, start_noise=False)
    assert {quiet.reset(seed=s)[1]["cte"] for s in range(3)} == {0.0}


def test_multi_track_env_samples_different_tracks() -> None:
    names = ["generated_track", "oval", "warehouse"]
    env = make_env(names, camera=SMALL)
    seen = {}
    for seed in range(12):
        obs, info = env.reset(seed=seed)
        seen[info["track"]] = info["track_length"]
        assert env.unwrapped.sim.track.name == info["track"]
    assert set(seen) == set(names)
    assert len(set(seen.values())) == 3
    _, info = env.reset(options={"track": "mini_monaco"})
    assert info["track"] == "mini_monaco"
    # stepping after a switch drives on the new track
    _, _, _, _, info = env.step(np.array([0.0, 1.0], np.float32))
    assert info["track"] == "mini_monaco" and info["progress"] > 0
