"""Process helpers: identity checks and process-group kills, never by process name.

A PID alone is not an identity (PIDs are reused), so records keep the PID together with the
process start time (``/proc/<pid>/stat`` field 22, clock ticks since boot) and the command line;
a process is "the same" only if its start time still matches (or, when the start time is
unknown, its command line). On systems without ``/proc`` only the PID can be checked.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

__all__ = ["start_time", "cmdline", "environ_value", "pid_alive", "same_process",
           "group_members", "session_members", "group_alive", "kill_group", "kill_pids"]

log = logging.getLogger(__name__)

_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state), or None."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if unknown / not running."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def cmdline(pid: int) -> list[str] | None:
    """Command line of ``pid`` or None."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def environ_value(pid: int, key: str) -> str | None:
    """The value of ``key`` in the environment ``pid`` was started with, or None (unknown,
    unset, or not readable)."""
    try:
        raw = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    prefix = key.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def pid_alive(pid: int) -> bool:
    """True if a process with this PID exists and is not a zombie."""
    fields = _stat_fields(pid)
    if fields is not None:
        return fields[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _PROC.is_dir()


def same_process(pid: int, started: int | None, argv: list[str] | None = None) -> bool:
    """True if ``pid`` is alive and still the process recorded with ``started`` / ``argv``.

    The start time decides when both are known (PID + start tick is unique in practice, and
    unlike the command line it does not change at ``exec`` or through wrapper scripts); the
    command line is compared only when the start time is unknown.
    """
    if not pid_alive(pid):
        return False
    now = start_time(pid)
    if started is not None and now is not None:
        return now == started
    if argv is not None:
        current = cmdline(pid)
        if current is not None and current != list(argv):
            return False
    return True


def _members(index: int, value: int) -> list[int]:
    """PIDs of live (non-zombie) processes whose stat field ``index`` is ``value``."""
    out = []
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and len(fields) > index and fields[0] != "Z" and int(fields[index]) == value:
                out.append(int(entry.name))
    return out


def group_members(pgid: int) -> list[int]:
    """PIDs of live (non-zombie) processes in process group ``pgid`` (needs /proc)."""
    return _members(2, pgid)


def session_members(sid: int) -> list[int]:
    """PIDs of live (non-zombie) processes in session ``sid`` (needs /proc).

    For programs that put their children in process groups of their own (Ray's worker
    processes do) but leave them in the session they were started in.
    """
    return _members(3, sid)


def group_alive(pgid: int) -> bool:
    """True if process group ``pgid`` has a live (non-zombie) member."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(group_members(pgid)) if _PROC.is_dir() else True


def kill_group(pgid: int, grace: float = 3.0, *, poll: float = 0.02) -> bool:
    """SIGTERM the whole group, wait up to ``grace`` seconds, then SIGKILL what is left.

    Returns True if the group is gone (zombies awaiting their parent count as gone).
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return True
        time.sleep(poll)
    log.warning("process group %d still alive %.1f s after SIGTERM: sending SIGKILL", pgid, grace)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return True
        time.sleep(poll)
    return False


def kill_pids(pids: list[int], grace: float = 3.0, *, poll: float = 0.02) -> bool:
    """SIGTERM each of ``pids`` (one by one, never a whole group), wait up to ``grace`` seconds,
    then SIGKILL the survivors. Returns True when all are gone."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not any(pid_alive(p) for p in pids):
                return True
            time.sleep(poll)
    return not any(pid_alive(p) for p in pids)
