"""Run one trial as a subprocess in its own process group, with a timeout and a PID file.

Why each piece:

- The controller starts the trial leader (leader.py), which runs the trial command. The leader
  gets ``start_new_session=True``: the trial and everything it spawns (vector-env workers, a
  simulator) share one process group, so a timeout or Ctrl-C kills all of it with one
  ``killpg`` (SIGTERM, then SIGKILL after a grace period), and a Ctrl-C in the terminal reaches
  only the controller, which then stops the trials in order.
- The leader asks for the parent-death signal and is a child subreaper: if the controller dies
  abruptly (SIGKILL, OOM killer), the leader kills the whole trial, workers and wrapped commands
  included, within the kill grace period (see leader.py).
- Every trial process carries ``DONKEYRL_TRIAL_TOKEN=<random>`` in its environment, recorded in
  the PID file: the proof of identity used before killing anything a crashed controller left
  behind when the leader itself is gone (a process-group ID alone can be reused).
- ``TMPDIR`` of the trial is ``<trial dir>/.tmp``, removed after the trial is recorded, so
  temporary files of killed trials (and libraries' empty ``SB3-*`` log folders) never pile up in
  the system's /tmp.
- ``launch.json`` in the trial directory (written before the launch): the trial's params, seed
  and command, so that a trial whose record was lost (torn journal line) can be recovered with
  its params and its number is never reused (study.py).
- PID file ``running/trial-<N>.json`` (written atomically after the launch, removed after the
  trial's record is in the journal): PID, process group, start time, token and command line, so
  the next controller can kill leftovers of a crashed one by identity, never by process name,
  and can record the trial as ``interrupted`` (or recover its result if it finished).
- A launch that fails (disk full while writing launch.json, the log or the PID file) is rolled
  back: the process (if started) is killed and the files written for it are removed, and the
  error goes to the controller, which stops the study without recording a trial.
- Output goes live (unbuffered) to the trial's own log file, never through a pipe, so a chatty
  trial can never block on a full pipe.

``TrialProcess`` is the trial handle of the local executor (executors/local.py) and, on each
node of a Ray cluster, what a trial's actor runs (executors/ray_executor.py). PID files of
trials run by another executor carry its name under ``executor`` (executors/base.py) and no
PID: ``read_pid_files`` returns them, ``reap_leftover`` is for local ones only.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from donkeyrl.rl.checkpoints import PROGRESS_NAME, ProgressPoint, read_progress

from .files import write_json_atomic
from .procs import (environ_value, group_alive, group_members, kill_group, kill_pids, pid_alive,
                    same_process, start_time)
from .records import now_iso

__all__ = ["TrialSpec", "TrialProcess", "Finished", "read_pid_files", "reap_leftover",
           "write_json_atomic", "leader_argv", "LEADER", "TOKEN_ENV", "LAUNCH_FILE",
           "trial_tmpdir", "remove_trial_tmp", "is_local", "progress_file"]

LEADER = Path(__file__).with_name("leader.py")
"""The trial leader script (run by path, standard library only)."""

TOKEN_ENV = "DONKEYRL_TRIAL_TOKEN"
"""Environment variable carrying a trial's identity token to all its processes."""

LAUNCH_FILE = "launch.json"
"""Written into the trial directory before the launch (params, seed, command)."""

LEADER_MARGIN = 1.0
"""Extra seconds the controller waits for the leader's own clean-up before its SIGKILL."""

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
    rerun_of: int | None = None
    """The interrupted trial this one re-runs (same params and seed), or None."""

    @property
    def progress_file(self) -> Path:
        """Where the trial reports its checkpoint scores (rl/checkpoints.py)."""
        return progress_file(self.model_dir)


def progress_file(model_dir: Path) -> Path:
    """The progress file of the trial whose ``--save-dir`` is ``model_dir``."""
    return Path(model_dir) / PROGRESS_NAME


@dataclass(frozen=True)
class Finished:
    """How a trial process ended."""

    exit_code: int | None
    elapsed_sec: float
    killed: str | None = None
    """``timeout`` or ``interrupted`` when the controller killed it, else None."""
    kill_message: str = ""


def is_local(info: dict[str, Any]) -> bool:
    """True for a PID file of a local process group (no ``executor`` key, or ``local``)."""
    return info.get("executor", "local") == "local"


def leader_argv(argv: list[str], grace: float) -> list[str]:
    """The command line that runs ``argv`` under the trial leader (see leader.py)."""
    return [sys.executable, "-I", "-S", str(LEADER), "--parent", str(os.getpid()),
            "--grace", repr(float(grace)), "--", *argv]


def trial_tmpdir(model_dir: Path) -> Path:
    """The trial's private TMPDIR (removed after the trial)."""
    return model_dir / ".tmp"


class TrialProcess:
    """A launched trial; call ``poll()`` until it returns a ``Finished``."""

    def __init__(self, spec: TrialSpec, pid_dir: Path, *, kill_grace: float = 3.0) -> None:
        self.spec = spec
        self.kill_grace = kill_grace
        self.pid_file = pid_dir / f"trial-{spec.trial}.json"
        self.token = uuid.uuid4().hex
        self.proc: subprocess.Popen[bytes] | None = None
        made_dir = not spec.model_dir.exists()
        try:
            self._launch(made_dir)
        except BaseException:
            self._roll_back(made_dir)
            raise
        log.debug("trial %d started: pid %d, %s", spec.trial, self.pid, shlex.join(spec.argv))

    def _launch(self, made_dir: bool) -> None:
        spec = self.spec
        spec.result_file.unlink(missing_ok=True)
        spec.model_dir.mkdir(parents=True, exist_ok=True)
        tmp = trial_tmpdir(spec.model_dir)
        tmp.mkdir(exist_ok=True)
        write_json_atomic(spec.model_dir / LAUNCH_FILE, {
            "trial": spec.trial, "params": spec.params, "seed": spec.seed,
            "rerun_of": spec.rerun_of, "argv": spec.argv, "started_at": now_iso()})
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp),
               TOKEN_ENV: self.token, **spec.env}
        argv = leader_argv(spec.argv, self.kill_grace)
        with open(spec.log_file, "ab") as fh:
            fh.write(f"# {now_iso()} trial {spec.trial}: {shlex.join(spec.argv)}\n".encode())
            fh.flush()
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                cwd=spec.cwd, env=env, start_new_session=True, close_fds=True)
        self.pid = self.pgid = self.proc.pid
        info = {"trial": spec.trial, "executor": "local", "pid": self.pid, "pgid": self.pgid,
                "start_time": start_time(self.pid), "argv": argv, "trial_argv": spec.argv,
                "token": self.token, "params": spec.params, "seed": spec.seed,
                "rerun_of": spec.rerun_of, "started_at": now_iso(),
                "result_file": str(spec.result_file), "log_file": str(spec.log_file),
                "model_dir": str(spec.model_dir)}
        write_json_atomic(self.pid_file, info)

    def _roll_back(self, made_dir: bool) -> None:
        """Undo a failed launch: no process and no file of it may stay behind."""
        if self.proc is not None:
            kill_group(self.proc.pid, self.kill_grace)
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
                pass
        self.pid_file.unlink(missing_ok=True)
        remove_trial_tmp(self.spec.model_dir)
        if made_dir:
            (self.spec.model_dir / LAUNCH_FILE).unlink(missing_ok=True)
            self.spec.result_file.unlink(missing_ok=True)
            try:
                self.spec.model_dir.rmdir()
            except OSError:
                pass

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def poll(self) -> Finished | None:
        """None while running; kills the group and reports ``timeout`` past the deadline."""
        assert self.proc is not None
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
        assert self.proc is not None
        elapsed = self.elapsed
        gone = kill_group(self.pgid, self.kill_grace + LEADER_MARGIN)
        try:
            code = self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            code = None
        if not gone:  # pragma: no cover
            log.error("trial %d: process group %d survived SIGKILL", self.spec.trial, self.pgid)
        return Finished(code, elapsed, reason, message)

    def remove_pid_file(self) -> None:
        self.pid_file.unlink(missing_ok=True)

    # --- the trial-handle interface of the executors (executors/base.py) -------------------
    def cancel(self, reason: str, message: str) -> Finished:
        """``kill``: the whole process group, SIGTERM then SIGKILL after the grace period;
        a trial that already ended on its own (or just timed out) is reported as it ended."""
        fin = self.poll()
        return fin if fin is not None else self.kill(reason, message)

    def progress(self) -> list[ProgressPoint]:
        """The checkpoint scores the trial reported so far."""
        return read_progress(self.spec.progress_file)

    def release(self) -> None:
        """Forget the trial (its record is in the journal): the PID file goes."""
        self.remove_pid_file()


def remove_trial_tmp(model_dir: Path) -> None:
    """Remove the trial's private TMPDIR (a symlink there is unlinked, never followed)."""
    tmp = trial_tmpdir(model_dir)
    if tmp.is_symlink():
        tmp.unlink(missing_ok=True)
    elif tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)


def read_pid_files(pid_dir: Path) -> list[dict[str, Any]]:
    """PID files left by a previous controller (unreadable ones are reported and removed).

    Files of another executor (``executor`` other than ``local``) need no PID.
    """
    out = []
    for path in sorted(pid_dir.glob("trial-*.json")):
        try:
            info = json.loads(path.read_text())
            int(info["trial"])
            if not isinstance(info.get("executor", "local"), str):
                raise TypeError(f"executor is {info.get('executor')!r}")
            if is_local(info):
                int(info["pid"]), int(info["pgid"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable PID file %s: %s", path, exc)
            path.unlink(missing_ok=True)
            continue
        info["_path"] = str(path)
        out.append(info)
    return out


def reap_leftover(info: dict[str, Any], grace: float = 3.0) -> str:
    """Kill what is left of a trial recorded in a PID file; returns what was done.

    The whole group is killed only if its leader is provably the recorded process (same PID and
    start time, see procs.same_process). When the leader is gone but processes with its group
    ID live on, a group ID may have been reused by unrelated processes, so only the members
    that prove to be the trial's are killed, one by one: they carry the trial's token in their
    environment (runner.TOKEN_ENV) and started no earlier than the recorded leader. Members
    that do not prove it are left alone and reported. Only for local trials (``is_local``).
    """
    if not is_local(info):
        raise ValueError(f"trial {info.get('trial')} ran on executor {info.get('executor')!r}, "
                         "not as a local process group")
    pid, pgid = int(info["pid"]), int(info["pgid"])
    if same_process(pid, info.get("start_time"), info.get("argv")):
        kill_group(pgid, grace + LEADER_MARGIN)
        return f"killed leftover trial {info['trial']} (process group {pgid})"
    if pid_alive(pid):
        return f"pid {pid} of trial {info['trial']} now belongs to another process: left alone"
    members = group_members(pgid)
    if not members:
        return f"trial {info['trial']} (pid {pid}) is no longer running"
    token, started = info.get("token"), info.get("start_time")
    ours = [m for m in members if token and environ_value(m, TOKEN_ENV) == token
            and (not isinstance(started, int) or (start_time(m) or 0) >= started)]
    strangers = len(members) - len(ours)
    if ours:
        kill_pids(ours, grace)
    note = f"; {strangers} unrelated process(es) in group {pgid} left alone" if strangers else ""
    if ours:
        return f"killed {len(ours)} leftover process(es) of trial {info['trial']}{note}"
    return f"trial {info['trial']} (pid {pid}) is no longer running{note}"
