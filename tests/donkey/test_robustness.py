"""Failure paths: simulator killed mid-episode, slow simulator, hostile input, the serve CLI."""

from __future__ import annotations

import os
import signal
import socket
import stat
import sys
import threading

import numpy as np
import pytest

from donkeyrl.donkey import protocol as P
from donkeyrl.donkey.client import SimClient, SimDisconnected, SimTimeout

from .conftest import FAST_CLIENT, car, step

pytestmark = pytest.mark.timeout(180)


def test_simulator_killed_mid_episode_raises_sim_disconnected(tmp_path):
    from donkeyrl.envs.unity import make_donkey_env

    exe = tmp_path / "sim"
    exe.write_text(f"#!{sys.executable}\nimport sys\nfrom donkeyrl.cli import main\n"
                   "sys.exit(main(['sim', 'serve', '--fast', *sys.argv[1:]]))\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    env = make_donkey_env("waveshare", sim_path=str(exe), port=0, client_config=FAST_CLIENT)
    launcher = env.launcher
    try:
        _, info = env.reset()
        for _ in range(5):
            env.step(np.array([0.0, 0.3]))
        os.killpg(launcher.proc.pid, signal.SIGKILL)
        with pytest.raises(SimDisconnected, match="lost"):
            for _ in range(100):
                env.step(np.array([0.0, 0.3]))
        with pytest.raises(SimDisconnected):
            env.reset()
    finally:
        env.close()
    assert launcher.proc.returncode is not None and env.launcher is None


class SilentSim:
    """A simulator that loads a car, answers ``answers`` controls with telemetry, then goes mute."""

    def __init__(self, answers: int) -> None:
        self.answers = answers
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        conn.sendall(P.encode_sim(P.CarLoaded()))
        decoder = P.ClientStreamDecoder()
        t = 0.0
        while True:
            data = conn.recv(4096)
            if not data:
                return
            for msg in decoder.feed(data):
                if isinstance(msg, P.Control) and self.answers > 0:
                    self.answers -= 1
                    t += 0.05
                    conn.sendall(P.encode_sim(P.Telemetry(time=t, extended=True)))


def test_slow_simulator_gives_a_step_timeout():
    from donkeyrl.envs.unity import make_donkey_env

    sim = SilentSim(answers=4)  # the first exchange + the reset settle, then silence
    env = make_donkey_env("generated_track", port=sim.port, client_config=FAST_CLIENT,
                          step_timeout=0.5)
    try:
        env.reset()
        with pytest.raises(SimTimeout, match="no telemetry .* within 0.5 s"):
            for _ in range(5):
                env.step(np.array([0.0, 0.5]))
    finally:
        env.close()


def _hostile(port: int, payload: bytes, *, linger_reset: bool = False) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        if linger_reset:  # close with RST instead of FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        try:
            s.sendall(payload)
        except OSError:
            pass  # the server may drop us first: that is allowed


def test_fuzzing_the_server_leaves_other_clients_unaffected(fast_server):
    driver = car(fast_server, "generated_track")  # the attackers use other scenes
    rng = np.random.default_rng(0)
    attacks = [
        rng.bytes(20000),                                         # random bytes
        b"{" + b"A" * 300_000,                                    # huge unterminated object
        b'{"msg_type":"control","steering":"nan"}' * 200,         # invalid values (dropped at 100)
        b'{"msg_type":"load_scene","scene_name":"x' + b"}" * 50,  # broken json
        b'{"msg_type":"cam_config","img_w":"100000"}',            # hostile camera size
        b'{"msg_type":"node_position","index":"-5"}{"msg_type":"regen_road","rand_seed":"x"}',
        b'{"msg_type":"lidar_config","degPerSweepInc":"0.0001","numSweepsLevels":"1000"}' * 50,
        b'{"msg_type":"get_scene_names"}' * 2000,                 # flood, never read
        b'{"msg_type":"load_scene","scene_name":"waveshare"}' + b'{"msg_type":"control","throttle":"1"}' * 3000,
        b"\xff\xfe\x00" * 1000,
        b'{"msg_type":"con',                                      # abrupt disconnect mid-message
    ]
    errors: list[BaseException] = []

    def attack() -> None:
        try:
            for i, payload in enumerate(attacks):
                _hostile(fast_server.port, payload, linger_reset=bool(i % 2))
        except BaseException as exc:
            errors.append(exc)

    try:
        thread = threading.Thread(target=attack)
        thread.start()
        steps, last_time = 0, -1.0
        while thread.is_alive() or steps < 200:
            if steps % 50 == 0:
                driver.send(P.ResetCar())
                last_time = -1.0
            tel = step(driver, 0.0, 0.3)
            assert tel.hit == "none" and tel.time > last_time and abs(tel.cte) < 3.0
            last_time = tel.time
            steps += 1
            assert steps < 20000
        thread.join()
        assert not errors
        assert P.decode_image(tel.image).shape == (120, 160, 3)
        # the server still accepts and serves new clients
        with SimClient(fast_server.host, fast_server.port, FAST_CLIENT) as other:
            other.load_scene("generated_track")
            assert other.protocol_version() == "2"
    finally:
        driver.close()


def test_cli_sim_serve_help_and_bad_track(capsys):
    from donkeyrl.cli import main

    with pytest.raises(SystemExit):
        main(["sim", "serve", "--help"])
    out = capsys.readouterr().out
    for opt in ("--host", "--port", "--track", "--fast", "--jpeg-quality", "--max-clients",
                "--handshake-timeout", "--idle-timeout", "--randomize", "--no-quit", "--seed"):
        assert opt in out
    assert main(["sim", "serve", "--port", "0", "--track", "nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_quit_app_stops_the_server():
    from donkeyrl.donkey.server import DonkeySimServer, ServerConfig

    srv = DonkeySimServer(ServerConfig(port=0, fast=True)).start()
    with SimClient(srv.host, srv.port, FAST_CLIENT) as client:
        client.wait_message((P.SceneSelectionReady,))
        client.send(P.QuitApp())
        srv._thread.join(timeout=10)
    assert not srv._thread.is_alive()


def test_connect_retries_until_the_simulator_comes_up():
    from donkeyrl.donkey.client import ClientConfig
    from donkeyrl.donkey.launcher import free_port
    from donkeyrl.donkey.server import DonkeySimServer, ServerConfig

    port = free_port()
    servers: list[DonkeySimServer] = []
    timer = threading.Timer(0.8, lambda: servers.append(
        DonkeySimServer(ServerConfig(port=port, fast=True)).start()))
    timer.start()
    try:
        client = SimClient("127.0.0.1", port, ClientConfig(connect_timeout=30, retry_interval=0.1))
        with client.connect():
            client.wait_message((P.SceneSelectionReady,), 10)
    finally:
        timer.join()
        for srv in servers:
            srv.close()


def test_car_loaded_timeout_is_a_clear_error():
    from donkeyrl.donkey.client import ClientConfig

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def menu_without_cars() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(P.encode_sim(P.SceneSelectionReady()))
            decoder = P.ClientStreamDecoder()
            while data := conn.recv(4096):
                for msg in decoder.feed(data):
                    if isinstance(msg, P.GetSceneNames):
                        conn.sendall(P.encode_sim(P.SceneNames(("generated_track",))))

    thread = threading.Thread(target=menu_without_cars, daemon=True)
    thread.start()
    client = SimClient("127.0.0.1", port, ClientConfig(load_timeout=0.5, config_delay=0))
    with client.connect(), pytest.raises(SimTimeout, match="no car_loaded within 0.5 s"):
        client.load_scene("generated_track")
    listener.close()
