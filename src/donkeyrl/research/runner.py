"""Run one trial as a subprocess in its own process group, with a timeout and a PID file.

Why each piece:

- ``start_new_session=True``: the trial and everything it spawns (vector-env workers, a
  simulator) share one process group, so a timeout or Ctrl-C kills all of it with one
  ``killpg`` (SIGTERM, then SIGKILL after a grace period), and a Ctrl-C in the terminal reaches
  only the controller, which then stops the trials in order.
- On Linux the trial leader also gets ``PR_SET_PDEATHSIG`` (SIGTERM): if the controller dies
  abruptly, the trial does not keep training for nobody.
- PID file ``running/trial-<N>.json`` (written atomically after the launch, removed after the
  trial's record is in the journal): PID, process group, start time and command line, so the
  next controller can kill leftovers of a crashed one by identity, never by process name, and
  can record the trial as ``interrupted`` (or recover its result if it finished).
- Output goes live (unbuffered) to the trial's own log file, never through a pipe, so a chatty
  trial can never block on a full pipe.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import group_alive, kill_group, pid_alive, same_process, start_time
from .records import now_iso

__all__ = ["TrialSpec", "TrialProcess", "Finished", "read_pid_files", "reap_leftover",
           "write_json_atomic"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialSpec:
    """Everything needed to launch one trial."""

    trial: int
    """Trial number."""
    params: dict[str, Any]
    """Proposed hyperparameters (already rendered into ``argv``)."""
    argv: list[str]
    """Full command line."""
    result_file: Path
    """Where the trial writes its result JSON (deleted before launch)."""
    log_file: Path
    """The trial's own log (stdout + stderr)."""
    model_dir: Path
    """``--save-dir`` of the trial."""
    seed: int
    """Seed passed to the trainer."""
    timeout: float
    """Seconds before the whole process group is killed."""
    cwd: Path
    """Working directory of the trial (relative paths in its result file are resolved here)."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables."""


@dataclass(frozen=True)
class Finished:
    """How a trial process ended."""

    exit_code: int | None
    elapsed_sec: float
    killed: str | None = None
    """``timeout`` or ``interrupted`` when the controller killed it, else None."""
    kill_message: str = ""


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` via a temporary file + fsync + rename (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _load_prctl() -> Any:
    """libc's prctl, looked up once in the parent (nothing is loaded between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _pdeathsig() -> None:  # pragma: no cover - runs in the child between fork and exec
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class TrialProcess:
    """A launched trial; call ``poll()`` until it returns a ``Finished``."""

    def __init__(self, spec: TrialSpec, pid_dir: Path, *, kill_grace: float = 3.0) -> None:
        self.spec = spec
        self.kill_grace = kill_grace
        self.pid_file = pid_dir / f"trial-{spec.trial}.json"
        spec.result_file.unlink(missing_ok=True)
        spec.model_dir.mkdir(parents=True, exist_ok=True)
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        with open(spec.log_file, "ab") as fh:
            fh.write(f"# {now_iso()} trial {spec.trial}: {shlex.join(spec.argv)}\n".encode())
            fh.flush()
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                spec.argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                cwd=spec.cwd, env=env, start_new_session=True, close_fds=True,
                preexec_fn=_pdeathsig if _PRCTL is not None else None)
        self.pid = self.pgid = self.proc.pid
        info = {"trial": spec.trial, "pid": self.pid, "pgid": self.pgid,
                "start_time": start_time(self.pid), "argv": spec.argv, "params": spec.params,
                "seed": spec.seed, "started_at": now_iso(), "result_file": str(spec.result_file),
                "log_file": str(spec.log_file), "model_dir": str(spec.model_dir)}
        try:
            write_json_atomic(self.pid_file, info)
        except OSError:  # an untracked trial must not outlive this failure (e.g. disk full)
            self.kill("crashed", "cannot write the PID file")
            raise
        log.debug("trial %d started: pid %d, %s", spec.trial, self.pid, shlex.join(spec.argv))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def poll(self) -> Finished | None:
        """None while running; kills the group and reports ``timeout`` past the deadline."""
        code = self.proc.poll()
        if code is not None:
            # The leader exited; children it left in the group must not outlive the trial.
            if group_alive(self.pgid):
                log.warning("trial %d exited but left processes in its group: killing them",
                            self.spec.trial)
                kill_group(self.pgid, self.kill_grace)
            return Finished(code, self.elapsed)
        if self.elapsed > self.spec.timeout:
            return self.kill("timeout", f"killed after the {self.spec.timeout:g} s timeout")
        return None

    def kill(self, reason: str, message: str) -> Finished:
        """Kill the whole process group (SIGTERM, grace, SIGKILL) and reap the leader."""
        elapsed = self.elapsed
        gone = kill_group(self.pgid, self.kill_grace)
        try:
            code = self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            code = None
        if not gone:  # pragma: no cover
            log.error("trial %d: process group %d survived SIGKILL", self.spec.trial, self.pgid)
        return Finished(code, elapsed, reason, message)

    def remove_pid_file(self) -> None:
        self.pid_file.unlink(missing_ok=True)


def read_pid_files(pid_dir: Path) -> list[dict[str, Any]]:
    """PID files left by a previous controller (unreadable ones are reported and removed)."""
    out = []
    for path in sorted(pid_dir.glob("trial-*.json")):
        try:
            info = json.loads(path.read_text())
            int(info["trial"]), int(info["pid"]), int(info["pgid"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable PID file %s: %s", path, exc)
            path.unlink(missing_ok=True)
            continue
        info["_path"] = str(path)
        out.append(info)
    return out


def reap_leftover(info: dict[str, Any], grace: float = 3.0) -> str:
    """Kill what is left of a trial recorded in a PID file; returns what was done.

    The group is killed only if its leader is provably the recorded process (same PID and
    start time, see procs.same_process), or if the leader is gone but the group still has members (a
    process-group ID cannot be reused while the group exists).
    """
    pid, pgid = int(info["pid"]), int(info["pgid"])
    if same_process(pid, info.get("start_time"), info.get("argv")):
        kill_group(pgid, grace)
        return f"killed leftover trial {info['trial']} (process group {pgid})"
    if not pid_alive(pid) and group_alive(pgid):
        kill_group(pgid, grace)
        return f"killed leftover children of trial {info['trial']} (process group {pgid})"
    if pid_alive(pid):
        return f"pid {pid} of trial {info['trial']} now belongs to another process: left alone"
    return f"trial {info['trial']} (pid {pid}) is no longer running"
