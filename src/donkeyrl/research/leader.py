"""The trial leader: the one process the controller starts per trial; it runs the trial command
and makes sure nothing the trial started outlives the trial or the controller.

Usage (the controller builds this line; see runner.py)::

    python -I -S leader.py --parent PID --grace SEC -- COMMAND [ARG ...]

Why a leader process instead of starting the trial command directly: a SIGKILLed controller
cannot clean up, and the trial command may be anything (``donkeyrl train`` with ``--vec-env
subproc`` workers, a shell wrapper around it, a trainer that starts a simulator in a session of
its own). The parent-death signal (``PR_SET_PDEATHSIG``) reaches only the process that asked for
it, so the leader asks for it and then takes responsibility for everything below it:

- It is the leader of the trial's process group (the controller starts it with
  ``start_new_session``) and runs the command in that group, so ``killpg`` reaches the command
  and every descendant that stays in the group.
- It is a child subreaper (``PR_SET_CHILD_SUBREAPER``): descendants orphaned by their parent
  (workers of a killed trainer, a daemonised simulator that left the group) are re-parented to
  the leader instead of init, so it can still find and kill them.
- On SIGTERM, SIGINT or SIGHUP (the controller stopping the trial, or the parent-death signal
  when the controller dies; SIGHUP only when not ignored, as under nohup) and also when the
  command exits on its own, it sends SIGTERM to the
  group and to every adopted orphan, waits up to ``--grace`` seconds, SIGKILLs whatever is left
  and reaps everything. Then it exits with the command's status (dying by the same signal when
  the command was killed by one), so the controller records the trial's own exit code.
- If the controller is already gone when the leader starts (it died between fork and the
  ``prctl``), the leader exits without running the command.

This file is run by path with ``python -I -S`` and imports only the standard library, so a trial
pays a few milliseconds for it, not the start-up of the donkeyrl package. Linux only (``prctl``
and ``/proc``); elsewhere it still runs the command and cleans up its process group.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
RESTORED = tuple(getattr(signal, n) for n in ("SIGPIPE", "SIGXFSZ", "SIGXFZ") if hasattr(signal, n))
"""Signals Python ignores at start-up; the command gets their default action back (like
``subprocess``'s ``restore_signals``)."""


class _State:
    status: int | None = None
    """Wait status of the command once reaped."""
    child = -1


def _prctl(option: int, value: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover
        pass


def _others(pgid: int) -> list[tuple[int, int]]:
    """(pid, pgid) of live processes in our group or adopted by us, ourselves excluded."""
    me = os.getpid()
    out = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - no /proc: only the group is known
        return [(-1, pgid)]
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                text = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        if len(fields) < 3 or fields[0] in ("Z", "X"):
            continue
        ppid, pgrp = int(fields[1]), int(fields[2])
        if pgrp == pgid or ppid == me:
            out.append((int(entry), pgrp))
    return out


def _reap() -> None:
    """Collect every exited child without blocking; remembers the command's status."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid == _State.child:
            _State.status = status


def _signal_all(pgid: int, sig: int, procs: list[tuple[int, int]]) -> None:
    if sig != signal.SIGKILL:
        try:
            os.killpg(pgid, sig)  # reaches us too: the handler only notes it now
        except OSError:
            pass
    for pid, pgrp in procs:
        try:
            if pid == -1:
                continue
            if pgrp != pgid and pgrp == pid:
                os.killpg(pgrp, sig)  # an orphan that leads a group of its own
            else:
                os.kill(pid, sig)
        except OSError:
            pass


def _wait_gone(pgid: int, seconds: float) -> list[tuple[int, int]]:
    deadline = time.monotonic() + seconds
    while True:
        _reap()
        left = _others(pgid)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)


def _clean_up(pgid: int, grace: float) -> None:
    """SIGTERM everything below us, wait ``grace`` seconds, SIGKILL the rest, reap all."""
    left = _others(pgid)
    if left:
        _signal_all(pgid, signal.SIGTERM, left)
        left = _wait_gone(pgid, grace)
    for _ in range(100):
        if not left:
            break
        _signal_all(pgid, signal.SIGKILL, left)
        left = _wait_gone(pgid, 0.05)
    if _State.status is None and _State.child > 0:
        try:
            pid, status = os.waitpid(_State.child, 0)
            _State.status = status
        except ChildProcessError:
            pass
    _reap()


def _exit_like_the_command() -> None:
    status = _State.status
    if status is None:
        sys.exit(1)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        sys.stdout.flush()
        sys.stderr.flush()
        if -code != signal.SIGKILL:
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {-code})  # delivered now: we end here
        time.sleep(1.0)  # pragma: no cover - the signal ends us first
        sys.exit(128 - code)
    sys.exit(code)


def main(argv: list[str]) -> None:
    try:
        sep = argv.index("--")
        opts = dict(zip(argv[:sep:2], argv[1:sep:2]))
        parent, grace, command = int(opts["--parent"]), float(opts["--grace"]), argv[sep + 1:]
    except (ValueError, KeyError):
        sys.stderr.write("usage: leader.py --parent PID --grace SEC -- COMMAND [ARG ...]\n")
        sys.exit(2)
    if not command:
        sys.stderr.write("leader.py: no command given\n")
        sys.exit(2)
    # Every signal we act on stays blocked and is taken with sigtimedwait: no handler can run
    # between a waitpid and its bookkeeping, so no exit status is ever lost.
    stops = {s for s in STOP_SIGNALS if signal.getsignal(s) != signal.SIG_IGN}
    wake = {signal.SIGCHLD, *stops}
    signal.pthread_sigmask(signal.SIG_BLOCK, wake)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    pgid = os.getpgid(0)
    if os.getppid() != parent:
        sys.stderr.write("donkeyrl trial leader: the controller is gone; trial not started\n")
        sys.exit(1)
    try:
        _State.child = os.posix_spawnp(command[0], command, dict(os.environ),
                                       setsigdef=RESTORED, setsigmask=())
    except OSError as exc:
        sys.stderr.write(f"donkeyrl trial leader: cannot run {command[0]!r}: "
                         f"{exc.strerror or exc}\n")
        sys.exit(126 if isinstance(exc, PermissionError) else 127)
    while True:
        got = signal.sigtimedwait(wake, 1.0)
        _reap()
        if _State.status is not None:  # the command ended on its own
            break
        if got is not None and got.si_signo in stops:  # stopped by the controller
            break
        if os.getppid() != parent:  # the controller died (without a parent-death signal)
            break
    _clean_up(pgid, grace)
    _exit_like_the_command()


if __name__ == "__main__":
    main(sys.argv[1:])
