"""The protocol server behaves like the DonkeyCar simulator: camera configs, valid messages, idle
connections, generated roads, lidar, shared multi-car worlds and randomised looks."""

from __future__ import annotations

import json
import math
import socket
import time

import numpy as np
import pytest

from donkeyrl.donkey import protocol as P
from donkeyrl.donkey.client import SimClient, SimDisconnected
from donkeyrl.donkey.server import DonkeySimServer, ServerConfig, node_stride
from donkeyrl.sim.generators import ROAD_STYLES

from .conftest import FAST_CLIENT, car, session_of, step

pytestmark = pytest.mark.timeout(120)


def gym_cam_config(**fields: object) -> bytes:
    """cam_config exactly as gym-donkeycar's send_cam_config writes it: every field, as a string,
    "0" for the ones the user left alone (img_enc included)."""
    msg = {"msg_type": "cam_config", "fov": "0", "fish_eye_x": "0.0", "fish_eye_y": "0.0",
           "img_w": "0", "img_h": "0", "img_d": "0", "img_enc": "0", "offset_x": "0.0",
           "offset_y": "0.0", "offset_z": "0.0", "rot_x": "0.0", "rot_y": "0.0", "rot_z": "0.0"}
    msg.update({k: str(v) for k, v in fields.items()})
    return json.dumps(msg).encode()


def raw_send(client: SimClient, data: bytes) -> None:
    assert client._sock is not None
    client._sock.sendall(data)


def nodes(client: SimClient) -> np.ndarray:
    tel = step(client, brake=1.0)
    return np.array([(n.pos_x, n.pos_z) for n in client.read_nodes(tel.totalNodes)])


# ----------------------------------------------------------------------------- item 13, 14
def test_gym_donkeycar_cam_config_with_img_enc_0_gets_its_size(fast_server):
    client = car(fast_server)
    try:
        raw_send(client, gym_cam_config(img_w=320, img_h=240))
        img = P.decode_image(step(client).image)
        assert img.shape == (240, 320, 3)
        assert not session_of(fast_server).bad_times  # not a bad message
    finally:
        client.close()


def test_img_d_1_gives_three_equal_channels(fast_server):
    client = car(fast_server)
    try:
        raw_send(client, gym_cam_config(img_d=1, img_enc="PNG"))  # PNG: lossless, channels exact
        img = P.decode_image(step(client).image)
        assert img.shape == (120, 160, 3)
        assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
        assert img.std() > 5
    finally:
        client.close()


def test_camera_pose_fields_change_the_image(fast_server):
    client = car(fast_server)
    try:
        base = P.decode_image(step(client, brake=1).image)
        for fields in ({"offset_x": 1.0, "offset_y": 1.12, "offset_z": 0.55}, {"rot_x": 15, "rot_y": 25},
                       {"rot_x": 15, "rot_z": 30}, {"fish_eye_x": 0.5, "fish_eye_y": 0.5}):
            raw_send(client, gym_cam_config(**fields))
            img = P.decode_image(step(client, brake=1).image)
            assert img.shape == base.shape and np.abs(img.astype(int) - base).mean() > 3, fields
            raw_send(client, gym_cam_config(offset_x=0.0001, offset_y=1.12, offset_z=0.55, rot_x=15,
                                            rot_z=0.0001))  # back to (almost) the default pose
        assert not session_of(fast_server).bad_times
    finally:
        client.close()


# ----------------------------------------------------------------------------- item 15
def test_valid_messages_are_handled_or_ignored_never_bad():
    cfg = ServerConfig(port=0, fast=True, seed=0, max_errors=3)
    with DonkeySimServer(cfg) as srv:
        client = car(srv)
        try:
            start = step(client, brake=1)
            many = b"".join([
                b'{"msg_type":"step_mode","step_mode":"asynchronous","time_step":"0.05"}',
                b'{"msg_type":"pause","is_pause":"0"}',
                b'{"msg_type":"racer_info","racer_name":"r","car_name":"c","bio":"b","country":"x","guid":"g"}',
                b'{"msg_type":"node_position","index":"999999"}',
                b'{"msg_type":"node_position","index":"-1"}',
                b'{"msg_type":"load_scene","scene_name":"warehouse"}',   # inside a scene: ignored
                b'{"msg_type":"regen_road","road_style":"1","rand_seed":"3","turn_increment":"0"}',
                b'{"msg_type":"get_scene_names"}',
                b'{"msg_type":"physics_config","mass_scale":"1.0"}',      # not modelled: ignored
                b'{"msg_type":"ping"}',
                b'{"msg_type":"quit_app_please"}',
            ])
            for _ in range(60):
                raw_send(client, many)
            pos = {"pos_x": "10.0", "pos_y": "0.5", "pos_z": "20.0", "Qx": "0", "Qy": str(math.sin(0.25)),
                   "Qz": "0", "Qw": str(math.cos(0.25))}
            raw_send(client, json.dumps({"msg_type": "set_position", **pos}).encode())
            tel = step(client, brake=1)
            assert client.protocol_version() == "2"
            sess = session_of(srv)
            assert not sess.bad_times and sess.car is not None and sess.scene == "generated_track"
            assert tel.pos_x * 8 == pytest.approx(10.0, abs=0.05) and tel.pos_z * 8 == pytest.approx(20.0, abs=0.05)
            assert tel.yaw == pytest.approx(math.degrees(0.5), abs=0.5)
            assert (tel.pos_x, tel.pos_z) != (start.pos_x, start.pos_z)
        finally:
            client.close()


def test_lidar_config_and_reload_every_episode_is_never_cut_off():
    """A long-lived gym-donkeycar style client: per episode lidar_config, cam_config, exit and
    load the scene again, drive a little (the server's error budget is tiny to prove none is used)."""
    with DonkeySimServer(ServerConfig(port=0, fast=True, seed=0, max_errors=2)) as srv:
        client = car(srv, "waveshare")
        try:
            for _ in range(60):
                client.send(P.LidarConfig(degPerSweepInc=6.0, numSweepsLevels=1, maxRange=20.0))
                raw_send(client, gym_cam_config(img_w=80, img_h=60))
                for _ in range(3):
                    tel = step(client, 0.0, 0.3)
                assert "lidar" in tel.extra and P.decode_image(tel.image).shape == (60, 80, 3)
                client.exit_scene()
                client.load_scene("waveshare")
            assert client.connected and not session_of(srv).bad_times
        finally:
            client.close()


def test_bad_messages_are_counted_in_a_window():
    cfg = ServerConfig(port=0, fast=True, max_errors=5, error_window=0.4)
    with DonkeySimServer(cfg) as srv:
        client = car(srv)
        bad = b'{"msg_type":"control","steering":"nan"}'
        try:
            for _ in range(3):  # 4 bad, pause, 4 bad...: never more than 5 within the window
                raw_send(client, bad * 4)
                step(client, brake=1)
                time.sleep(0.5)
            raw_send(client, bad * 20)
            with pytest.raises(SimDisconnected):
                for _ in range(50):
                    step(client, brake=1, timeout=1.0)
                    time.sleep(0.05)
        finally:
            client.close()


# ----------------------------------------------------------------------------- item 16
def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_handshake_timeout_closes_a_connection_that_loads_nothing():
    with (DonkeySimServer(ServerConfig(port=0, fast=True, handshake_timeout=0.5)) as srv,
          socket.create_connection((srv.host, srv.port)) as silent):
        t0 = time.monotonic()
        assert _closed_within(silent, 5.0)
        assert 0.4 < time.monotonic() - t0 < 3.0


def test_idle_timeout_closes_idle_cars_but_not_active_ones():
    cfg = ServerConfig(port=0, fast=True, track="generated_track", idle_timeout=0.8)
    with DonkeySimServer(cfg) as srv:
        active = SimClient(srv.host, srv.port, FAST_CLIENT).connect()
        with socket.create_connection((srv.host, srv.port)) as idle:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.0:  # parked but talking: not idle
                step(active, brake=1.0)
                time.sleep(0.1)
            assert _closed_within(idle, 3.0)
            assert active.connected and step(active, brake=1.0).time > 0
        active.close()


def test_full_server_admits_a_newcomer_in_place_of_an_inactive_connection():
    cfg = ServerConfig(port=0, fast=True, track="generated_track", max_clients=2,
                       handshake_timeout=0.6, idle_timeout=0)
    with DonkeySimServer(cfg) as srv:
        busy = SimClient(srv.host, srv.port, FAST_CLIENT).connect()
        with socket.create_connection((srv.host, srv.port)) as lazy:
            # both inside the 0.6 s grace: a third connection is refused (closed, nothing sent)
            with socket.create_connection((srv.host, srv.port)) as third:
                assert _closed_within(third, 3.0)
            for _ in range(10):
                step(busy, brake=1.0)
                time.sleep(0.1)
            newcomer = SimClient(srv.host, srv.port, FAST_CLIENT).connect()
            assert newcomer.load_scene("generated_track") == "scene"  # it got a car
            assert _closed_within(lazy, 3.0)  # the inactive one made room
            assert busy.connected and step(busy, brake=1.0) is not None
            newcomer.close()
        busy.close()


# ----------------------------------------------------------------------------- item 17: roads
def test_generated_road_is_new_on_every_load_unless_regen_road_seeds_it(fast_server):
    client = car(fast_server, "generated_road")
    try:
        first = nodes(client)
        client.exit_scene()
        client.load_scene("generated_road")
        second = nodes(client)
        assert len(first) > 500 and np.abs(first[100:200] - second[100:200]).max() > 1.0
        client.send(P.RegenRoad(road_style=0, rand_seed=11))
        seeded = nodes(client)
        client.send(P.RegenRoad(road_style=0, rand_seed=12))
        assert np.abs(nodes(client)[100:200] - seeded[100:200]).max() > 1.0
        client.send(P.RegenRoad(road_style=0, rand_seed=11))
        assert np.allclose(nodes(client), seeded)  # a seed is a road
    finally:
        client.close()


@pytest.mark.parametrize("style", [1, 2, 4, 7])
def test_regen_road_honours_the_road_style(fast_server, style):
    client = car(fast_server, "generated_road")
    try:
        client.send(P.RegenRoad(road_style=style, rand_seed=5))
        tel = step(client, brake=1.0)
        track = session_of(fast_server).world.track
        w, o = ROAD_STYLES[style % 5]
        # path = o right of the road centre: edges at -(o + W) and W - o (reference table)
        assert track.lat_left[10] == pytest.approx(-(o + w)) and track.lat_right[10] == pytest.approx(w - o)
        assert abs(tel.cte) < 0.5
    finally:
        client.close()


def test_regen_road_turn_increment_bends_the_road(fast_server):
    client = car(fast_server, "generated_road")
    try:
        def curvature() -> float:
            track = session_of(fast_server).world.track
            return float(np.mean(np.abs(track.curvature)))

        client.send(P.RegenRoad(road_style=0, rand_seed=5, turn_increment=0.2))
        step(client, brake=1.0)
        gentle = curvature()
        client.send(P.RegenRoad(road_style=0, rand_seed=5, turn_increment=3.0))
        step(client, brake=1.0)
        assert curvature() > 1.5 * gentle
        client.send(P.RegenRoad(road_style=0, rand_seed=5, turn_increment=0.0))  # 0 keeps 3.0
        step(client, brake=1.0)
        assert curvature() > 1.5 * gentle
    finally:
        client.close()


def test_node_position_serves_the_world_path(fast_server):
    client = car(fast_server, "generated_track")
    try:
        got = nodes(client)
        track = session_of(fast_server).world.track
        assert np.allclose(got, track.points[::node_stride(track)])
    finally:
        client.close()


# ----------------------------------------------------------------------------- item 17: lidar
def test_lidar_sees_the_ground_and_another_car(fast_server):
    a, b = car(fast_server), car(fast_server)
    try:
        a.send(P.LidarConfig(degPerSweepInc=1.0, degAngDown=0.0, numSweepsLevels=1, maxRange=30.0))
        tel_b = step(b, brake=1.0)
        tel_a = step(a, brake=1.0)
        lidar = tel_a.extra["lidar"]
        xa, za, xb, zb = tel_a.pos_x * 8, tel_a.pos_z * 8, tel_b.pos_x * 8, tel_b.pos_z * 8
        bearing = (math.degrees(math.atan2(xb - xa, zb - za)) - tel_a.yaw) % 360.0
        hits = [p for p in lidar if abs((p["rx"] - bearing + 180) % 360 - 180) <= 2.0]
        assert hits, (bearing, lidar[:5])
        dist = math.hypot(xb - xa, zb - za)
        assert min(p["d"] for p in hits) < dist  # the near side of the other car's box
        assert all(set(p) == {"d", "rx", "ry"} for p in lidar)
    finally:
        a.close()
        b.close()


# ----------------------------------------------------------------------------- item 17: multi-car
def test_cars_in_one_scene_share_a_world_with_offset_spawns_and_contact(fast_server):
    a, b = car(fast_server), car(fast_server)
    other = car(fast_server, "waveshare")  # another scene: another world
    try:
        a.send(P.CarConfig(car_name="alpha", body_r=10, body_g=200, body_b=250))
        b.send(P.CarConfig(car_name="bravo"))
        ta, tb = step(a, brake=1.0), step(b, brake=1.0)
        sa, sb = session_of(fast_server, 0), session_of(fast_server, 1)
        assert sa.world is sb.world and session_of(fast_server, 2).world is not sa.world
        assert math.hypot(ta.pos_x - tb.pos_x, ta.pos_z - tb.pos_z) * 8 >= 4.5  # grid offsets
        # the car behind sees the other one (its body colour) ahead in its camera
        x, z, yaw = sa.car.pose
        fx, fz = math.sin(yaw), math.cos(yaw)
        bx, bz = x - 5 * fx, z - 5 * fz
        qy, qw = math.sin(yaw / 2), math.cos(yaw / 2)
        b.send(P.SetPosition(pos_x=bx, pos_z=bz, Qy=qy, Qw=qw))
        img = P.decode_image(step(b, brake=1.0).image)
        near = np.all(np.abs(img.astype(int) - (10, 200, 250)) < 40, axis=2)
        assert near.sum() > 50
        # drive b into a: both report the other's name once
        for _ in range(60):
            tb = step(b, 0.0, 0.6)
            if tb.hit != "none":
                break
        assert tb.hit == "alpha"
        assert step(a, brake=1.0).hit == "bravo"
        assert step(a, brake=1.0).hit == "none"
        assert step(other, brake=1.0).hit == "none"
        # reset puts b back on its own grid slot, clear of a
        b.send(P.ResetCar())
        tb = step(b, brake=1.0)
        assert math.hypot(tb.pos_x - ta.pos_x, tb.pos_z - ta.pos_z) * 8 >= 4.5 and tb.hit == "none"
    finally:
        for c in (a, b, other):
            c.close()


def test_a_world_lives_while_it_has_cars(fast_server):
    a = car(fast_server, "generated_road")
    road = fast_server.world("generated_road")
    b = car(fast_server, "generated_road")
    try:
        assert fast_server.world("generated_road") is road  # joined: same road
        a.exit_scene()
        a.wait_message((P.SceneSelectionReady,))
        assert fast_server.world("generated_road") is road and len(road.cars) == 1
        b.close()
        for _ in range(100):
            if fast_server.world("generated_road") is None:
                break
            time.sleep(0.02)
        assert fast_server.world("generated_road") is None
    finally:
        a.close()
        b.close()


# ----------------------------------------------------------------------------- modes
def test_step_mode_synchronous_and_pause_in_a_real_time_server():
    with DonkeySimServer(ServerConfig(port=0, fast=False)) as srv:
        client = car(srv)
        try:
            client.send(P.StepMode(step_mode="synchronous"))
            time.sleep(0.2)
            seq = client.telemetry_seq
            time.sleep(0.3)
            assert client.telemetry_seq == seq  # no wall-clock telemetry any more
            times = [step(client, 0.0, 0.2).time for _ in range(5)]
            assert np.allclose(np.diff(times), 0.05)
            client.send(P.Pause(is_pause=True))
            seq = client.telemetry_seq
            client.send(P.Control(0.0, 0.2, 0.0))
            time.sleep(0.3)
            assert client.telemetry_seq == seq  # paused: no step
            client.send(P.Pause(is_pause=False))
            assert step(client, 0.0, 0.2).time == pytest.approx(times[-1] + 0.05)
            client.send(P.StepMode(step_mode="asynchronous"))
            seq = client.telemetry_seq
            time.sleep(0.3)
            assert client.telemetry_seq > seq + 2  # back to 20 Hz
        finally:
            client.close()


def test_randomize_serves_a_new_seeded_look_each_episode():
    def frames(seed: int) -> list[np.ndarray]:
        with DonkeySimServer(ServerConfig(port=0, fast=True, seed=seed, randomize=True)) as srv:
            client = car(srv)
            try:
                out = [P.decode_image(step(client, brake=1).image)]
                client.send(P.ResetCar())
                out.append(P.decode_image(step(client, brake=1).image))
                return out
            finally:
                client.close()

    first, again = frames(3), frames(3)
    assert np.abs(first[0].astype(int) - first[1]).mean() > 5   # a new look after reset_car
    for a, b in zip(first, again):
        assert np.abs(a.astype(int) - b).mean() < 1.0             # same seed, same looks
    assert np.abs(frames(4)[0].astype(int) - first[0]).mean() > 5


def test_a_refused_client_is_told_the_server_may_be_full():
    cfg = ServerConfig(port=0, fast=True, track="generated_track", max_clients=1, handshake_timeout=0)
    with DonkeySimServer(cfg) as srv:
        first = SimClient(srv.host, srv.port, FAST_CLIENT).connect()
        second = SimClient(srv.host, srv.port, FAST_CLIENT).connect()
        try:
            with pytest.raises(SimDisconnected, match="before it sent anything.*max-clients"):
                second.load_scene("generated_track")
            assert first.load_scene("generated_track") == "scene"  # never evicted (timeout 0)
        finally:
            first.close()
            second.close()
