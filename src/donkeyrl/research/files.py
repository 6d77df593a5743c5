"""File helpers the study relies on to survive bad files and full disks.

Why they exist: everything a study reads may have been written by someone else (a trainer's
result file, a hand-edited journal, a warm-start file) and anything it writes may hit a full
disk. So every read checks that the path is a *regular* file before opening it for real (a FIFO
would block forever, a directory raises an unhelpful error), caps the size, and every write of a
whole file goes to a temporary file that is removed again when the write fails (a full disk must
not leave ``.name.tmp-PID`` files behind).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

__all__ = ["NotRegularFileError", "read_regular", "check_regular_or_absent", "write_json_atomic",
           "write_bytes_atomic",
           "copy_atomic", "json_depth", "MAX_JSON_DEPTH"]

MAX_JSON_DEPTH = 32
"""Deepest nesting accepted in a result file or a journal line (results nest 3-4 levels; the
limit keeps every recursive walk far from Python's recursion limit)."""


class NotRegularFileError(OSError):
    """A path that must be a regular file is a directory, FIFO, socket or device."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or special file"


def check_regular_or_absent(path: Path) -> None:
    """Raise NotRegularFileError if ``path`` exists and is not a regular file (links followed)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(f"{path} is {_kind(mode)}, not a regular file")


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``; never blocks on a FIFO.

    Raises FileNotFoundError, NotRegularFileError, or OSError (EFBIG) when the file is larger
    than ``max_bytes``.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError(f"{path} is {_kind(st.st_mode)}, not a regular file")
        if st.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"{path} is {st.st_size} bytes, more than the {max_bytes} "
                          "bytes accepted")
        chunks = []
        left = max_bytes + 1
        while left > 0:
            block = os.read(fd, min(left, 1 << 20))
            if not block:
                break
            chunks.append(block)
            left -= len(block)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise OSError(errno.EFBIG, f"{path} grew past the {max_bytes} bytes accepted")
        return data
    finally:
        os.close(fd)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` via a temporary file + fsync + rename (never half-written).

    On any failure (disk full, ``path`` is a directory) the temporary file is removed and the
    error re-raised; ``path`` keeps its old content.
    """
    write_bytes_atomic(path, json.dumps(obj, indent=1).encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file + fsync + rename (never half-written); on
    any failure the temporary file is removed, the error re-raised and ``path`` left as it was."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` via a temporary file, fsync and rename: never a half file, and
    no temporary file left when the copy fails."""
    tmp = _tmp_name(dst)
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def json_depth(obj: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), counted without recursion; stops
    counting at ``limit + 1``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((c, depth) for c in children)
    return deepest
