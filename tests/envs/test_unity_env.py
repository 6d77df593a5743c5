"""The real-simulator env against the protocol server over loopback: handshake, laps, reset, path."""

from __future__ import annotations

import numpy as np
import pytest

from donkeyrl.donkey.client import SimClient, UnknownSceneError
from donkeyrl.donkey.server import DonkeySimServer, ServerConfig
from donkeyrl.envs.unity import UnityDonkeyEnv
from donkeyrl.sim.camera import CameraConfig
from donkeyrl.sim.tracks import get_track

from unity_helpers import FAST_CLIENT, pursuit, session_of, unity_env

pytestmark = pytest.mark.timeout(180)


def test_handshake_from_menu_reads_the_centre_line(fast_server):
    env = unity_env(fast_server, "generated_track")
    try:
        truth = get_track("generated_track")
        assert env.track is not None and env.track.closed
        assert env.track.length == pytest.approx(truth.length, rel=0.02)
        # every true path point lies on the path rebuilt from the nodes
        lat = [abs(env.track.project(x, z).lateral) for x, z in truth.points[::7]]
        assert max(lat) < 0.05
        obs, info = env.reset(seed=0)
        assert obs.shape == (120, 160, 3) and obs.dtype == np.uint8 and obs.std() > 5
        assert env.observation_space.contains(obs)
        assert info["track"] == "generated_track" and info["track_length"] == env.track.length
        assert info["progress"] == 0.0 and info["lap_count"] == 0
    finally:
        env.close()


def test_handshake_from_a_loaded_scene():
    with DonkeySimServer(ServerConfig(port=0, fast=True, track="waveshare")) as srv:
        client = SimClient(srv.host, srv.port, FAST_CLIENT).connect()
        try:
            assert client.load_scene("waveshare") == "scene"
        finally:
            client.close()
        env = unity_env(srv, "waveshare")
        try:
            assert env.track.length == pytest.approx(get_track("waveshare").length, rel=0.02)
            _, info = env.reset()
            assert env.step(np.array([0.0, 0.3]))[4]["speed"] > 0
        finally:
            env.close()


def test_unknown_scene_lists_the_available_ones(fast_server):
    with pytest.raises(UnknownSceneError, match="'no_such_scene'.*available: .*generated_track"):
        unity_env(fast_server, "no_such_scene")


def test_episode_with_laps_matches_the_simulator(fast_server):
    env = unity_env(fast_server, "waveshare", max_steps=3000)
    try:
        obs, info = env.reset()
        progress = [info["progress"]]
        for _ in range(3000):
            obs, reward, terminated, truncated, info = env.step(pursuit(env, info))
            progress.append(info["progress"])
            assert not terminated, info
            if info["lap_count"] >= 2:
                break
        truth = session_of(fast_server).sim.telemetry(0)
        assert info["lap_count"] == truth.lap_count == 2
        assert info["lap_times"] == pytest.approx(list(truth.lap_times), abs=1e-6)
        assert info["last_lap_time"] == pytest.approx(truth.last_lap_time)
        assert np.all(np.diff(progress) >= 0)
        assert info["progress"] == pytest.approx(truth.progress, rel=0.03)
        assert reward > 0 and abs(info["cte"] - truth.cte) < 1e-9
    finally:
        env.close()


def test_reset_gives_fresh_telemetry_and_zeroed_episode(fast_server):
    env = unity_env(fast_server, "generated_track")
    try:
        _, info = env.reset()
        start = info["pos"]
        for _ in range(400):  # drive straight off the road until the cte ends the episode
            _, _, terminated, truncated, info = env.step(np.array([0.6, 0.8]))
            if terminated:
                break
        assert terminated and info["terminated_reason"] == "cte" and abs(info["cte"]) > 8
        obs, info = env.reset()
        assert abs(info["cte"]) < 0.5 and info["speed"] < 0.05 and info["time"] == 0.0
        assert np.allclose(info["pos"], start, atol=0.05)
        assert info["progress"] == 0 and info["lap_count"] == 0 and info["lap_times"] == []
        _, _, terminated, _, info = env.step(np.array([0.0, 0.2]))
        assert not terminated and abs(info["cte"]) < 0.5
    finally:
        env.close()


def test_reset_in_real_time_mode_has_no_stale_cte():
    with DonkeySimServer(ServerConfig(port=0, fast=False)) as srv:
        env = unity_env(srv, "generated_track", max_cte=2.0)
        try:
            env.reset()
            for _ in range(80):
                _, _, terminated, _, info = env.step(np.array([1.0, 1.0]))
                if terminated:
                    break
            assert terminated and abs(info["cte"]) > 2.0
            _, info = env.reset()
            assert abs(info["cte"]) < 0.5
            times = []
            for _ in range(3):
                _, _, terminated, _, info = env.step(np.array([0.0, 0.0]))
                assert not terminated
                times.append(info["time"])
            assert np.all(np.diff(times) > 0)  # each step waited for newer telemetry
        finally:
            env.close()


def test_camera_follows_the_requested_config(fast_server):
    cam = CameraConfig(width=64, height=48, grey=True, crop_top=0.25)
    env = unity_env(fast_server, "generated_track", camera=cam)
    try:
        obs, _ = env.reset()
        assert obs.shape == (48, 64, 1) == env.observation_space.shape
        assert obs.std() > 5  # a real picture, cropped and greyed here
        assert env._cam_config().img_w == 64 and env._cam_config().img_h == 64  # the uncropped frame
    finally:
        env.close()


def test_close_leaves_the_simulator_usable(fast_server):
    for _ in range(2):
        env = unity_env(fast_server, "waveshare")
        env.reset()
        env.step(np.array([0.0, 0.5]))
        env.close()


def test_make_donkey_env_signature_matches_make_env():
    import inspect

    from donkeyrl.envs.unity import make_donkey_env

    params = inspect.signature(make_donkey_env).parameters
    for name in ("track", "host", "port", "sim_path", "camera", "max_cte", "steer_limit",
                 "throttle_min", "throttle_max", "domain_randomization", "max_steps", "seed",
                 "render_mode"):
        assert name in params


def test_several_scenes_one_sampled_per_episode(fast_server):
    env = unity_env(fast_server, ["waveshare", "generated_track"], seed=3)
    try:
        seen = set()
        for _ in range(8):
            _, info = env.reset()
            seen.add(info["track"])
            assert info["track_length"] == pytest.approx(get_track(info["track"]).length, rel=0.02)
            assert env.step(np.array([0.0, 0.3]))[4]["track"] == info["track"]
        assert seen == {"waveshare", "generated_track"}
    finally:
        env.close()


def test_make_env_sim_donkey_goes_through_the_protocol(fast_server):
    from donkeyrl.envs import make_env as project_make_env

    env = project_make_env("donkey-waveshare-v0", sim="donkey", port=fast_server.port, max_cte=5.0)
    try:
        assert isinstance(env, UnityDonkeyEnv) and env.scene == "waveshare" and env.max_cte == 5.0
        obs, info = env.reset()
        _, reward, terminated, truncated, info = env.step(np.array([0.0, 0.5]))
        assert reward > 0 and not terminated and not truncated and info["forward_vel"] > 0
    finally:
        env.close()
