"""Launcher: own process group, free ports, readiness, stop on close/timeout/Ctrl-C, no zombies."""

from __future__ import annotations

import os
import socket
import stat
import sys
import time
from pathlib import Path

import pytest

from donkeyrl.donkey import protocol as P
from donkeyrl.donkey.client import ClientConfig, SimClient
from donkeyrl.donkey.launcher import LaunchError, SimLauncher, launch_many, port_accepts

pytestmark = pytest.mark.timeout(120)


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_sim(tmp_path: Path) -> Path:
    """A 'simulator executable': a script running the project's own protocol server."""
    return script(tmp_path, "fake_sim", f"""#!{sys.executable}
import sys
from donkeyrl.cli import main
sys.exit(main(["sim", "serve", *sys.argv[1:]]))
""")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_fake_simulator_serves_the_menu_and_stops_without_zombie(fake_sim):
    with SimLauncher(fake_sim, startup_timeout=60) as sim:
        assert sim.running and port_accepts(sim.host, sim.port)
        assert os.getpgid(sim.proc.pid) == sim.proc.pid  # its own process group
        with SimClient(sim.host, sim.port, ClientConfig(connect_timeout=5)) as client:
            client.wait_message((P.SceneSelectionReady,), 10)
            assert client.protocol_version() == "2"
        pid = sim.proc.pid
    assert sim.proc.returncode is not None  # reaped: no zombie
    assert sim.stop() == sim.proc.returncode  # idempotent
    assert gone(pid) and not port_accepts(sim.host, sim.port)


def test_several_simulators_on_distinct_ports(fake_sim):
    sims = launch_many(fake_sim, 2, startup_timeout=60)
    try:
        assert len({s.port for s in sims}) == 2
        assert all(port_accepts(s.host, s.port) for s in sims)
    finally:
        for s in sims:
            s.stop()
    assert all(s.proc.returncode is not None for s in sims)


def test_exit_before_ready_reports_output(tmp_path):
    bad = script(tmp_path, "bad_sim", "#!/bin/sh\necho 'no GPU found' >&2\nexit 3\n")
    with pytest.raises(LaunchError, match="(?s)exited with code 3.*no GPU found"):
        SimLauncher(bad, startup_timeout=10).start()


def test_startup_timeout_kills_the_whole_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    # Ignores SIGTERM and has a child: stop() must SIGKILL the group, child included.
    hang = script(tmp_path, "hang_sim", f"#!/bin/sh\ntrap '' TERM\nsleep 300 &\necho $! > {pidfile}\nwait\n")
    launcher = SimLauncher(hang, startup_timeout=1.0, stop_timeout=0.5)
    with pytest.raises(LaunchError, match="did not accept connections"):
        launcher.start()
    assert launcher.proc.returncode is not None
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(child)


def test_ctrl_c_stops_the_simulator(fake_sim):
    with pytest.raises(KeyboardInterrupt), SimLauncher(fake_sim, startup_timeout=60) as sim:
        raise KeyboardInterrupt
    assert sim.proc.returncode is not None and not sim.running


def test_busy_port_and_missing_executable_are_clear_errors(tmp_path, fake_sim):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(LaunchError, match=f"port {port} .* already in use"):
            SimLauncher(fake_sim, port=port).start()
    with pytest.raises(LaunchError, match="does not exist"):
        SimLauncher(tmp_path / "nope")
    plain = tmp_path / "plain"
    plain.write_text("x")
    with pytest.raises(LaunchError, match="not executable"):
        SimLauncher(plain)
