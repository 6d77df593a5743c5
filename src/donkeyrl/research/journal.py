"""Append-only JSONL journal of trial records (``results.jsonl``).

Why this shape: the journal is the study's only durable state. Every other artefact (optimizer
state, champion, progress) is rebuilt from it, so it must survive a power cut at any instant:

- Writes: one ``os.write`` of one complete line on an ``O_APPEND`` descriptor, then ``fsync``.
  Nothing that was ever complete is rewritten. If the file does not end with a newline (a torn
  last line from an earlier crash) the newline goes in front of the record in the same write, so
  the torn fragment stays on its own line, untouched, and the new record is not glued to it.
- A failed append leaves no partial record: a write may store part of the line before the
  disk fills (ENOSPC, EDQUOT, EFBIG), or ``fsync`` may fail after the write, so on any error the
  file is truncated back to its size before the append. Only the bytes of this one failed
  append are removed; earlier records are never touched.
- Every record is parsed back with the reader's rules before it is written, so the journal never
  holds a line its own reader would skip.
- Reads: tolerant. A torn last line is reported (``kind="torn"``) and ignored; any other line
  that is not a valid record (not UTF-8, not JSON, nested too deep, wrong field types) is
  reported with its 1-based line number (``kind="corrupt"``) and skipped. Blank lines are
  ignored. A repeated trial number keeps the first record and reports the duplicate, so a
  record can never count twice.
- The path must be a regular file (or absent): a directory or FIFO there is a
  ``JournalReadError``/``JournalWriteError`` naming it, never a hang.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .files import NotRegularFileError, read_regular
from .records import TrialRecord

__all__ = ["Journal", "JournalRead", "JournalProblem", "JournalWriteError", "JournalReadError",
           "MAX_JOURNAL_BYTES"]

log = logging.getLogger(__name__)


MAX_JOURNAL_BYTES = 1 << 30
"""Largest journal (or warm-start file) read: 1 GiB is millions of records."""


class JournalWriteError(OSError):
    """The journal could not be written (disk full, read-only, permissions); nothing was lost."""


class JournalReadError(OSError):
    """The journal cannot be read at all (a directory or FIFO at its path, permissions)."""


@dataclass(frozen=True)
class JournalProblem:
    """A line of the journal that was not loaded."""

    line: int
    """1-based line number in the file."""
    kind: str
    """``torn`` (incomplete last line), ``corrupt`` (not a record) or ``duplicate``."""
    detail: str
    """The parse error and the start of the offending text."""

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.detail}"


@dataclass
class JournalRead:
    """Everything a read found."""

    records: list[TrialRecord] = field(default_factory=list)
    problems: list[JournalProblem] = field(default_factory=list)


class Journal:
    """The results journal at ``path`` (created on the first append)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def append(self, record: TrialRecord) -> None:
        """Durably append one record (flush + fsync); raises JournalWriteError on failure, with
        the file back at its size before the call (see the module docstring)."""
        obj = record.to_json()
        line = json.dumps(obj, allow_nan=False, default=str) + "\n"
        TrialRecord.from_json(json.loads(line))  # the reader must accept what is written
        data = line.encode()
        try:
            fd = self._open_append()
        except OSError as exc:
            raise self._error(exc, "open") from exc
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            try:
                self._write_all(fd, data)
                os.fsync(fd)
            except OSError as exc:
                self._roll_back(fd, size)
                raise self._error(exc, "write") from exc
        finally:
            os.close(fd)

    def _open_append(self) -> int:
        """An O_APPEND descriptor of the journal, checked to be a regular file (O_NONBLOCK: a
        FIFO never blocks the open)."""
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
                     | os.O_CLOEXEC, 0o644)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotRegularFileError(f"{self.path} is not a regular file")
        return fd

    def check_writable(self) -> None:
        """Open the journal for appending without writing (raises JournalWriteError): a
        read-only or misplaced journal is found before any trial runs."""
        try:
            os.close(self._open_append())
        except OSError as exc:
            raise self._error(exc, "open") from exc

    def _roll_back(self, fd: int, size: int) -> None:
        """Cut off whatever part of a failed append reached the file."""
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
                os.fsync(fd)
        except OSError as exc:  # pragma: no cover - truncating frees space; it does not fail
            log.error("cannot cut the failed append off %s: %s", self.path, exc)

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            if n == 0:  # pragma: no cover - a full disk raises instead on Linux
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[n:]

    def _error(self, exc: OSError, what: str) -> JournalWriteError:
        hint = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
                errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                errno.EDQUOT: "disk quota exceeded",
                errno.EFBIG: "the file size limit is reached (ulimit -f)"}
        reason = (str(exc) if isinstance(exc, NotRegularFileError)
                  else hint.get(exc.errno or 0, exc.strerror or str(exc)))
        return JournalWriteError(
            exc.errno or 0,
            f"cannot {what} the results journal {self.path}: {reason}. Records already in the "
            "file are intact (it is append-only); free space or fix permissions and re-run the "
            "same command to resume")

    def read(self) -> JournalRead:
        """All valid records in file order, plus every problem found (see module docstring)."""
        out = JournalRead()
        try:
            data = read_regular(self.path, MAX_JOURNAL_BYTES)
        except FileNotFoundError:
            return out
        except OSError as exc:
            raise JournalReadError(exc.errno or 0, f"cannot read the results journal "
                                   f"{self.path}: {exc.strerror or exc}") from exc
        lines = data.split(b"\n")
        torn_possible = not data.endswith(b"\n")
        seen: set[int] = set()
        for i, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            last = i == len(lines)
            try:
                rec = TrialRecord.from_json(json.loads(raw.decode("utf-8")))
            except (ValueError, RecursionError) as exc:  # JSON, UTF-8, RecordError, nesting
                kind = "torn" if (last and torn_possible) else "corrupt"
                text = raw[:80].decode("utf-8", "replace")
                out.problems.append(JournalProblem(i, kind, f"{exc} (text: {text!r})"))
                continue
            if rec.trial in seen:
                out.problems.append(JournalProblem(
                    i, "duplicate", f"trial {rec.trial} already recorded; this copy ignored"))
                continue
            seen.add(rec.trial)
            out.records.append(rec)
        for p in out.problems:
            log.warning("%s: %s", self.path, p)
        return out
