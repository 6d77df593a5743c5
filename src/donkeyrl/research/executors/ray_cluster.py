"""A real Ray cluster of separate processes on this machine: a head and worker nodes.

For trying the Ray executor out, for the tests and for the benchmarks; a production cluster is
started with Ray's own tools (docs/cluster.md). Each node is ``ray start --block`` in a session
of its own, so the cluster is stopped by killing exactly those sessions' processes (Ray puts its
worker processes in process groups of their own, but they stay in the session), never with
``ray stop``, which stops every Ray process of the machine, other users' included.

Address: the nodes bind to a loopback address so nothing is reachable from the network. Not
127.0.0.1: Ray replaces 127.0.0.1 and ``localhost`` by the machine's network address whenever
multi-node clusters are enabled (as they are on Linux), so the default is 127.0.0.2, which is
loopback too on Linux (the whole 127.0.0.0/8 is) and which Ray takes as given. Some of Ray's
internal ports listen on all interfaces whatever the node address; use a firewall, or a
machine without untrusted neighbours, for anything but tests.

Usage::

    with LocalCluster(tmp_dir, worker_cpus=(1, 1)) as cluster:
        ... RayExecutor(study_dir, address=cluster.address) ...
        cluster.kill_worker(0)   # a node that dies
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ..procs import kill_pids, session_members

__all__ = ["LocalCluster", "LOOPBACK", "RAY_ENV"]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.2"
"""The nodes' address (see the module docstring for why not 127.0.0.1)."""

RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    # a dead node is noticed within ~2 s instead of Ray's default ~30 s
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
"""Environment of the nodes."""


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ray_cli() -> list[str]:
    """The ``ray`` command of this interpreter's environment."""
    exe = Path(sys.executable).with_name("ray")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.exit(main())"]


@dataclass
class _Node:
    proc: subprocess.Popen[bytes]
    log: Path


class LocalCluster:
    """A head (``head_cpus`` CPUs) and one worker node per item of ``worker_cpus``."""

    def __init__(self, temp_dir: Path, *, worker_cpus: tuple[float, ...] = (1.0,),
                 head_cpus: float = 0.0, host: str = LOOPBACK, start_timeout: float = 120.0) -> None:
        self.temp_dir = Path(temp_dir)
        self.host = host
        self.head_cpus = head_cpus
        self.worker_cpus = worker_cpus
        self.start_timeout = start_timeout
        self.port = 0
        self.head: _Node | None = None
        self.workers: list[_Node] = []
        self.env = {**os.environ, **RAY_ENV}

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _spawn(self, args: list[str], name: str) -> _Node:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        path = self.temp_dir / f"{name}.log"
        with open(path, "ab") as fh:
            proc = subprocess.Popen([*_ray_cli(), "start", "--block", *args], env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        return _Node(proc, path)

    def _wait_port(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            assert self.head is not None
            if self.head.proc.poll() is not None:
                raise RuntimeError(f"the Ray head exited ({self.head.proc.returncode}): "
                                   f"{self.head.log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Ray head did not listen on {self.address} within "
                                       f"{self.start_timeout:g} s") from None
                time.sleep(0.2)

    def start(self) -> LocalCluster:
        self.port = _free_port(self.host)
        ports = [str(_free_port(self.host)) for _ in range(3)]
        self.head = self._spawn(
            ["--head", "--node-ip-address", self.host, "--port", str(self.port),
             "--num-cpus", repr(float(self.head_cpus)).rstrip("0").rstrip("."),
             "--temp-dir", str(self.temp_dir / "ray"), "--include-dashboard", "false",
             "--disable-usage-stats", "--include-log-monitor", "false",
             "--ray-client-server-port", ports[0], "--dashboard-agent-listen-port", ports[1],
             "--metrics-export-port", ports[2]], "head")
        try:
            self._wait_port()
            for cpus in self.worker_cpus:
                self.add_worker(cpus)
        except BaseException:
            self.stop()
            raise
        return self

    def add_worker(self, cpus: float = 1.0) -> int:
        """Start one more worker node; returns its index (it joins within seconds)."""
        ports = [str(_free_port(self.host)) for _ in range(2)]
        self.workers.append(self._spawn(
            ["--address", self.address, "--node-ip-address", self.host,
             "--num-cpus", str(int(cpus)) if float(cpus).is_integer() else str(cpus),
             "--include-log-monitor", "false", "--dashboard-agent-listen-port", ports[0],
             "--metrics-export-port", ports[1]], f"worker-{len(self.workers)}"))
        return len(self.workers) - 1

    def kill_worker(self, index: int) -> None:
        """SIGKILL every process of worker node ``index`` at once: a node that dies."""
        node = self.workers[index]
        pids = session_members(node.proc.pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.proc.wait(timeout=10)

    def stop(self, grace: float = 2.0) -> None:
        """Stop every node: SIGTERM to each node's session, SIGKILL after ``grace`` seconds."""
        nodes = [*self.workers, *([self.head] if self.head else [])]
        pids = [p for n in nodes for p in session_members(n.proc.pid)]
        if pids:
            kill_pids(pids, grace)
        for n in nodes:
            try:
                n.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
                log.error("ray node %d did not exit", n.proc.pid)
        left = [p for n in nodes for p in session_members(n.proc.pid)]
        if left:  # pragma: no cover
            log.error("processes of the Ray cluster survived SIGKILL: %s", left)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
