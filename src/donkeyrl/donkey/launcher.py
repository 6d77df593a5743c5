"""Start and stop a simulator executable without ever leaving a zombie simulator behind.

Why: the reference stack starts the Unity simulator with a bare ``Popen`` and a fixed sleep; a
crashed Python process then leaves the simulator holding its port, and parallel workers collide on
9091. Here each simulator gets its own process group (so its whole tree can be signalled), a free
port, a readiness check (the port accepts connections), and is stopped on ``close()``, on a
startup timeout, on Ctrl-C (context manager / ``atexit``) and, on Linux, when the parent dies
(``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_LIVE: weakref.WeakSet[SimLauncher] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


class LaunchError(RuntimeError):
    """The simulator executable could not be started or never accepted connections."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to (host, port) succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM the child when the parent thread dies (no orphan simulators)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


class SimLauncher:
    """One simulator process: ``start()`` it, use ``host``/``port``, ``stop()`` it (idempotent).

    The command run is ``[sim_path, "--port", PORT, "--host", HOST, *extra_args]``, the command
    line of the DonkeyCar simulator builds (and of ``donkeyrl sim serve``). Use as a context
    manager so Ctrl-C stops the simulator too.
    """

    def __init__(self, sim_path: str | os.PathLike[str], *, port: int | None = None,
                 host: str = "127.0.0.1", extra_args: Sequence[str] = (),
                 startup_timeout: float = 60.0, stop_timeout: float = 5.0,
                 pass_host: bool = True) -> None:
        """
        Args:
            sim_path: the simulator executable (must exist and be executable).
            port: TCP port; None or 0 picks a free one. A busy port is refused with a clear error.
            host: where the simulator listens and where readiness is checked.
            extra_args: appended to the command line (e.g. ``("--fast",)``, ``("-batchmode",)``).
            startup_timeout: seconds to wait for the port to accept connections.
            stop_timeout: seconds between SIGTERM and SIGKILL when stopping.
            pass_host: add ``--host HOST`` (older simulator builds only know ``--port``).
        """
        path = Path(sim_path).expanduser()
        if not path.is_file():
            raise LaunchError(f"simulator executable {str(path)!r} does not exist")
        if not os.access(path, os.X_OK):
            raise LaunchError(f"simulator executable {str(path)!r} is not executable (chmod +x it)")
        if startup_timeout <= 0 or stop_timeout <= 0:
            raise ValueError("startup_timeout and stop_timeout must be > 0")
        self.sim_path = path
        self.host = host
        self.port = int(port) if port else free_port(host)
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.pass_host = pass_host
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self.log_path: Path | None = None

    @property
    def command(self) -> list[str]:
        """The command line this launcher runs."""
        cmd = [str(self.sim_path), "--port", str(self.port)]
        if self.pass_host:
            cmd += ["--host", self.host]
        return cmd + list(self.extra_args)

    @property
    def running(self) -> bool:
        """True while the simulator process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> SimLauncher:
        """Start the simulator and wait until its port accepts connections."""
        if self.proc is not None:
            raise LaunchError("this launcher was already started")
        if port_accepts(self.host, self.port, timeout=0.2):
            raise LaunchError(f"port {self.port} on {self.host} is already in use by another process")
        fd, name = tempfile.mkstemp(prefix=f"donkeysim-{self.port}-", suffix=".log")
        self.log_path = Path(name)
        log.info("starting simulator: %s (log %s)", " ".join(self.command), name)
        try:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=fd,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        except OSError as exc:
            raise LaunchError(f"cannot run {str(self.sim_path)!r}: {exc}") from exc
        finally:
            os.close(fd)
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.info("simulator pid %d ready on %s:%d", self.proc.pid, self.host, self.port)
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise LaunchError(f"simulator {str(self.sim_path)!r} exited with code {code} before "
                                  f"accepting connections; its output ends with:\n{self.log_tail()}")
            if port_accepts(self.host, self.port, timeout=0.5):
                return
            time.sleep(0.1)
        raise LaunchError(f"simulator {str(self.sim_path)!r} did not accept connections on "
                          f"{self.host}:{self.port} within {self.startup_timeout:g} s; output:\n"
                          f"{self.log_tail()}")

    def log_tail(self, n_bytes: int = 2000) -> str:
        """The last bytes of the simulator's combined stdout/stderr."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()[-n_bytes:]
        return data.decode("utf-8", "replace")

    def stop(self) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``stop_timeout``, reap. Returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if self._stopped:  # signal a process group once only: its id may be reused afterwards
            return proc.returncode
        self._stopped = True
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("simulator pid %d ignored SIGTERM; killing it", proc.pid)
                self._signal(proc, signal.SIGKILL)
                proc.wait(timeout=self.stop_timeout)
        else:
            self._signal(proc, signal.SIGKILL)  # children of a dead leader may still run
        if self.log_path is not None:
            try:
                self.log_path.unlink()
            except OSError:
                pass
        return proc.returncode

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)  # the group id is the child's pid (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass

    close = stop

    def __enter__(self) -> SimLauncher:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort; close() is the real API
        try:
            if self.running:
                self.stop()
        except Exception:
            pass


def launch_many(sim_path: str | os.PathLike[str], n: int, **kwargs: object) -> list[SimLauncher]:
    """Start ``n`` simulators on distinct free ports (for parallel workers); all or none."""
    started: list[SimLauncher] = []
    try:
        for _ in range(n):
            started.append(SimLauncher(sim_path, **kwargs).start())  # type: ignore[arg-type]
    except BaseException:
        for launcher in started:
            launcher.stop()
        raise
    return started


@atexit.register
def _stop_all() -> None:
    """Stop every simulator still running when the interpreter exits (e.g. after Ctrl-C)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for launcher in live:
        launcher.stop()
