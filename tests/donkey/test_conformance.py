"""Conformance: ``donkeyrl sim serve`` driven by a client written from the protocol document alone.

The client below uses nothing of the project (no codec, no client): a socket, ``json`` and PIL.
It speaks as the reference client does (protocol reference sections 1-4): flat JSON objects with
every value a string, sent back to back with no newline; it reads newline-terminated objects with
JSON numbers. The server runs in its own process in real time (20 Hz), like the Unity simulator.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: The menu of the protocol reference, section 3.
DOC_SCENES = ["generated_road", "warehouse", "sparkfun_avc", "generated_track", "roboracingleague_1",
              "waveshare", "mini_monaco", "warren", "circuit_launch", "mountain_track"]
#: Telemetry fields of section 3 (extended telemetry on).
DOC_TELEMETRY = ["steering_angle", "throttle", "speed", "image", "hit", "time", "accel_x", "accel_y",
                 "accel_z", "gyro_x", "gyro_y", "gyro_z", "pitch", "yaw", "roll", "activeNode",
                 "totalNodes", "cte", "pos_x", "pos_y", "pos_z", "vel_x", "vel_y", "vel_z"]


class WireClient:
    """A DonkeyCar client from the document: string values, no newline, flat objects."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        self.inbox: queue.Queue[dict] = queue.Queue()
        self.telemetry: list[dict] = []
        self.crossings: list[dict] = []
        self.cond = threading.Condition()
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                msg = json.loads(line)
                if msg["msg_type"] == "telemetry":
                    with self.cond:
                        self.telemetry.append(msg)
                        self.cond.notify_all()
                else:
                    self.inbox.put(msg)

    def send(self, msg_type: str, **fields: object) -> None:
        self.sock.sendall(self.encode(msg_type, **fields))

    @staticmethod
    def encode(msg_type: str, **fields: object) -> bytes:
        return json.dumps({"msg_type": msg_type, **{k: str(v) for k, v in fields.items()}}).encode()

    def expect(self, msg_type: str, timeout: float = 10.0) -> dict:
        """The next non-telemetry message, which must be of ``msg_type`` (start-line crossings,
        which come whenever the car crosses the line, are set aside in ``crossings``)."""
        while True:
            msg = self.inbox.get(timeout=timeout)
            if msg["msg_type"] != "collision_with_starting_line" or msg_type == msg["msg_type"]:
                break
            self.crossings.append(msg)
        assert msg["msg_type"] == msg_type, msg
        return msg

    def next_telemetry(self, timeout: float = 5.0) -> dict:
        """The first telemetry that arrives from now on."""
        with self.cond:
            n = len(self.telemetry)
            assert self.cond.wait_for(lambda: len(self.telemetry) > n or self.closed, timeout)
            assert not self.closed
            return self.telemetry[-1]

    def drive(self, steering: float, throttle: float, brake: float, frames: int) -> dict:
        """Hold a control for ``frames`` telemetry frames; the last frame."""
        self.send("control", steering=steering, throttle=throttle, brake=brake)
        for _ in range(frames):
            tel = self.next_telemetry()
        return tel

    def node(self, index: int) -> dict:
        self.send("node_position", index=index)
        return self.expect("node_position")

    def close(self) -> None:
        self.sock.close()


def image(tel: dict, key: str = "image") -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(tel[key]))) as im:
        return np.asarray(im)


@pytest.fixture(scope="module")
def sim_serve():
    """``donkeyrl sim serve`` (real time, menu) in its own process group; yields its port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = "import sys; from donkeyrl.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "sim", "serve", "--port", str(port), "--seed", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert f"serving on 127.0.0.1:{port}" in line, line
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def enter(port: int, scene: str) -> WireClient:
    """Connect and load ``scene`` the way the reference client does (section 4)."""
    c = WireClient(port)
    ready = c.expect("scene_selection_ready")
    assert ready["loaded"] == "1"
    c.send("get_scene_names")
    names = c.expect("scene_names")["scene_names"]
    assert all(name in names for name in DOC_SCENES)
    c.send("load_scene", scene_name=scene)
    c.expect("car_loaded")
    c.send("control", steering=0.0, throttle=0.0, brake=1.0)
    return c


def test_handshake_control_telemetry_and_reset(sim_serve):
    c = enter(sim_serve, "generated_track")
    try:
        c.send("get_protocol_version")
        assert c.expect("protocol_version") == {"msg_type": "protocol_version", "version": "2"}
        start = c.next_telemetry()
        assert all(k in start for k in DOC_TELEMETRY)
        assert isinstance(start["hit"], str) and start["hit"] == "none"
        for k in DOC_TELEMETRY:
            if k not in ("image", "hit"):
                assert isinstance(start[k], (int, float)) and not isinstance(start[k], bool), k
        assert image(start).shape == (120, 160, 3)
        assert 0 <= start["yaw"] < 360 and start["totalNodes"] > 50 and abs(start["cte"]) < 1.0
        # 20 Hz of simulated time
        t1, t2 = c.next_telemetry()["time"], c.next_telemetry()["time"]
        assert t2 - t1 == pytest.approx(0.05, abs=1e-6)
        moving = c.drive(0.0, 0.5, 0.0, 30)
        assert moving["speed"] > 0.2 and moving["throttle"] == pytest.approx(0.5)
        turned = c.drive(1.0, 0.5, 0.0, 15)
        assert turned["steering_angle"] == pytest.approx(1.0)
        assert abs((turned["yaw"] - moving["yaw"] + 180) % 360 - 180) > 5
        # several messages in one write, no newline between them
        c.sock.sendall(c.encode("control", steering=0, throttle=0, brake=1) + c.encode("get_protocol_version"))
        c.expect("protocol_version")
        (crossing,) = c.crossings  # the car spawns behind the start line and drove over it
        assert crossing["starting_line_index"] == 0 and 0 < crossing["timeStamp"] < moving["time"] + 1
        # reset as the reference client does it
        c.send("control", steering=0, throttle=0, brake=1)
        c.send("reset_car")
        time.sleep(1.0)
        c.send("control", steering=0, throttle=0, brake=1)
        back = c.next_telemetry()
        assert math.hypot(back["pos_x"] - start["pos_x"], back["pos_z"] - start["pos_z"]) < 0.1
        assert back["speed"] < 0.05 and abs(back["cte"]) < 1.0
    finally:
        c.close()


def test_camera_configs(sim_serve):
    c = enter(sim_serve, "generated_track")
    try:
        # gym-donkeycar's cam_config when the user sets only the size: "img_enc": "0"
        c.send("cam_config", fov=0, fish_eye_x=0.0, fish_eye_y=0.0, img_w=320, img_h=240, img_d=0,
               img_enc=0, offset_x=0.0, offset_y=0.0, offset_z=0.0, rot_x=0.0, rot_y=0.0, rot_z=0.0)
        assert image(c.drive(0, 0, 1, 3)).shape == (240, 320, 3)
        c.send("cam_config", fov=0, fish_eye_x=0, fish_eye_y=0, img_w=0, img_h=0, img_d=1,
               img_enc="PNG", offset_x=0, offset_y=0, offset_z=0, rot_x=0)
        grey = image(c.drive(0, 0, 1, 3))
        assert grey.shape == (240, 320, 3) and np.array_equal(grey[..., 0], grey[..., 2])
        c.send("cam_config_b", fov=0, fish_eye_x=0, fish_eye_y=0, img_w=80, img_h=60, img_d=0,
               img_enc="JPG", offset_x=0, offset_y=0, offset_z=0, rot_x=0)
        tel = c.drive(0, 0, 1, 3)
        assert image(tel, "imageb").shape == (60, 80, 3)
    finally:
        c.close()


def test_lidar(sim_serve):
    c = enter(sim_serve, "generated_track")
    try:
        assert "lidar" not in c.next_telemetry()
        c.send("lidar_config", degPerSweepInc=2.0, degAngDown=25, degAngDelta=-1.0, numSweepsLevels=3,
               maxRange=50.0, noise=0.2, offset_x=0.0, offset_y=1.0, offset_z=1.0, rot_x=0.0)
        lidar = c.drive(0, 0, 1, 3)["lidar"]
        assert len(lidar) == 180 * 3  # every downward ray hits the ground within range
        assert all(set(p) == {"d", "rx", "ry"} for p in lidar)
        assert {p["ry"] for p in lidar} == {0.0, -1.0, -2.0}
        first = [p for p in lidar if p["ry"] == 0.0]
        # the lidar is 1.0 above the car's origin, which stands a little above the road
        down = math.sin(math.radians(25))
        assert first[0]["rx"] == 0.0 and 1.0 / down < first[0]["d"] < 1.5 / down
    finally:
        c.close()


def test_regen_road_and_node_position(sim_serve):
    c = enter(sim_serve, "generated_road")
    try:
        total = c.next_telemetry()["totalNodes"]
        assert total > 500

        def path(n: int = 40) -> np.ndarray:
            return np.array([[c.node(i)["pos_x"], c.node(i)["pos_z"]] for i in range(0, n * 10, 10)])

        node = c.node(0)
        assert set(node) == {"msg_type", "index", "pos_x", "pos_y", "pos_z", "Qx", "Qy", "Qz", "Qw"}
        loaded = path()
        c.send("node_position", index=total + 5)  # out of range: no answer, nothing breaks
        c.send("regen_road", road_style=1, rand_seed=42, turn_increment=0.0)
        c.drive(0, 0, 1, 2)
        regen = path()
        assert np.abs(regen - loaded).max() > 1.0
        c.send("regen_road", road_style=1, rand_seed=42, turn_increment=0.0)
        c.drive(0, 0, 1, 2)
        assert np.allclose(path(), regen)
        # back to the menu and in again: a new random road
        c.send("exit_scene")
        c.expect("scene_selection_ready")
        c.send("load_scene", scene_name="generated_road")
        c.expect("car_loaded")
        assert np.abs(path() - regen).max() > 1.0
    finally:
        c.close()


def test_two_cars_share_the_scene(sim_serve):
    a = enter(sim_serve, "generated_track")
    b = enter(sim_serve, "generated_track")
    try:
        a.send("car_config", body_style="donkey", body_r=255, body_g=0, body_b=0, car_name="red", font_size=50)
        b.send("car_config", body_style="car01", body_r=0, body_g=0, body_b=255, car_name="blue", font_size=50)
        ta, tb = a.next_telemetry(), b.next_telemetry()
        assert math.hypot(ta["pos_x"] - tb["pos_x"], ta["pos_z"] - tb["pos_z"]) * 8 >= 4.4
        # b placed right behind a, facing the same way, then driven into it
        yaw = math.radians(ta["yaw"])
        x, z = ta["pos_x"] * 8 - 4 * math.sin(yaw), ta["pos_z"] * 8 - 4 * math.cos(yaw)
        b.send("set_position", pos_x=x, pos_y=0.5, pos_z=z, Qx=0, Qy=math.sin(yaw / 2), Qz=0, Qw=math.cos(yaw / 2))
        b.send("control", steering=0, throttle=0.8, brake=0)
        hits_b = [b.next_telemetry()["hit"] for _ in range(40)]
        assert "red" in hits_b
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(t["hit"] != "none" for t in a.telemetry):
            time.sleep(0.05)
        assert any(t["hit"] == "blue" for t in a.telemetry)
    finally:
        a.close()
        b.close()
