"""Append-only JSONL journal of trial records (``results.jsonl``).

Why this shape: the journal is the study's only durable state. Every other artefact (optimizer
state, champion, progress) is rebuilt from it, so it must survive a power cut at any instant:

- Writes: one ``os.write`` of one complete line on an ``O_APPEND`` descriptor, then ``fsync``.
  Nothing is ever rewritten or truncated. If the file does not end with a newline (a torn last
  line from an earlier crash) a newline is appended first, so the torn fragment stays on its
  own line, untouched, and the new record is not glued to it.
- Reads: tolerant. A torn last line is reported (``kind="torn"``) and ignored; any other line
  that is not a valid record is reported with its 1-based line number (``kind="corrupt"``) and
  skipped. Blank lines are ignored. A repeated trial number keeps the first record and reports
  the duplicate, so a record can never count twice.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .records import RecordError, TrialRecord

__all__ = ["Journal", "JournalRead", "JournalProblem", "JournalWriteError"]

log = logging.getLogger(__name__)


class JournalWriteError(OSError):
    """The journal could not be written (disk full, read-only, permissions); nothing was lost."""


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
        """Durably append one record (flush + fsync); raises JournalWriteError on failure."""
        line = (json.dumps(record.to_json(), allow_nan=False, default=str) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._error(exc, "open") from exc
        try:
            if self._needs_newline(fd):
                self._write_all(fd, b"\n")
            self._write_all(fd, line)
            os.fsync(fd)
        except OSError as exc:
            raise self._error(exc, "write") from exc
        finally:
            os.close(fd)

    def _needs_newline(self, fd: int) -> bool:
        size = os.fstat(fd).st_size
        if size == 0:
            return False
        with open(self.path, "rb") as fh:
            fh.seek(size - 1)
            return fh.read(1) != b"\n"

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
                errno.EACCES: "permission denied", errno.EDQUOT: "disk quota exceeded"}
        reason = hint.get(exc.errno or 0, exc.strerror or str(exc))
        return JournalWriteError(
            exc.errno or 0,
            f"cannot {what} the results journal {self.path}: {reason}. Records already in the "
            "file are intact (it is append-only); free space or fix permissions and re-run the "
            "same command to resume")

    def read(self) -> JournalRead:
        """All valid records in file order, plus every problem found (see module docstring)."""
        out = JournalRead()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return out
        lines = data.split(b"\n")
        torn_possible = not data.endswith(b"\n")
        seen: set[int] = set()
        for i, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            last = i == len(lines)
            try:
                rec = TrialRecord.from_json(json.loads(raw.decode("utf-8")))
            except (ValueError, RecordError) as exc:  # JSONDecodeError, UnicodeDecodeError
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
