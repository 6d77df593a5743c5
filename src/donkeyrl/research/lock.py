"""A lock file so that only one controller works on a study directory at a time.

Two mechanisms, because either alone has a hole: an ``flock`` on ``controller.lock`` (released by
the kernel when the holder dies, even by SIGKILL) and the holder's PID + start time written in
the file (for the error message, and as a fallback on file systems where flock is a no-op:
a lock whose recorded process is no longer running is stale and taken over with a warning).
The file itself is never deleted (deleting a locked file lets a third process lock a new inode).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from .procs import same_process, start_time
from .records import now_iso

__all__ = ["StudyLock", "StudyLockedError"]

log = logging.getLogger(__name__)


class StudyLockedError(RuntimeError):
    """Another live controller holds the study directory."""


class StudyLock:
    """Exclusive lock of a study directory; use as a context manager."""

    def __init__(self, study_dir: str | os.PathLike[str]) -> None:
        self.path = Path(study_dir) / "controller.lock"
        self._fd: int | None = None

    def _holder(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}

    def _refuse(self, holder: dict[str, Any]) -> StudyLockedError:
        who = (f"controller pid {holder.get('pid')} on {holder.get('host')} "
               f"(started {holder.get('started_at', '?')})") if holder else "another controller"
        return StudyLockedError(
            f"study directory {self.path.parent} is in use by {who}; stop it first or choose "
            f"another --study-dir (lock file: {self.path})")

    def acquire(self) -> None:
        """Take the lock or raise StudyLockedError naming the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._refuse(self._holder()) from None
        holder = self._holder()
        pid = holder.get("pid")
        if isinstance(pid, int) and pid != os.getpid() and holder.get("host") == socket.gethostname():
            if same_process(pid, holder.get("start_time")):
                os.close(fd)
                raise self._refuse(holder)
            log.warning("taking over stale lock %s of controller pid %s (no longer running)",
                        self.path, pid)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "start_time": start_time(os.getpid()), "started_at": now_iso()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode() + b"\n", 0)
            os.fsync(fd)
        except OSError:  # e.g. a full disk: drop the lock again, the caller reports the error
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Clear the holder record and drop the flock (idempotent)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:  # pragma: no cover - e.g. disk errors at shutdown
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
