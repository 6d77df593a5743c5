"""Checkpoint scores during training: the progress file that early stopping reads.

Why: a study's trials run minutes each, and most of them are visibly hopeless long before the
end. The trainer races the model on the validation set at a few fractions of its training
budget and appends one line per checkpoint to ``<save dir>/progress.jsonl``, beside
``result.json``; the research controller reads that file (never the trainer's stdout) and
stops trials whose checkpoint score falls below the cut of their rung (research/pruning.py).

One line per checkpoint (JSON, appended, flushed and fsynced)::

    {"steps": 5000, "fraction": 0.25, "race_score": 23.4, "validation_lap_rate": 0.1,
     "time_sec": 41.2}

``steps``: environment steps trained when the checkpoint was taken; ``fraction``: the
checkpoint's nominal fraction of the training budget (one of :data:`CHECKPOINT_FRACTIONS`, so
that trials of different budgets meet at the same rungs); ``race_score`` and
``validation_lap_rate``: the validation race's mean score and lap rate (rl/race.py), exactly as
the final result reports them; ``time_sec``: wall-clock seconds since training started,
validation time included.

Checkpoints are taken only when asked for, and only when the trial runs the validation race
(``--validation``, the default): the environment variable :data:`FRACTIONS_ENV` names the
fractions (``"0.25,0.5,0.75"``; unset, ``""`` or ``"none"``: no checkpoints, no progress file).
The research controller sets it for every trial of a study with early stopping, to
:data:`CHECKPOINT_FRACTIONS` (1/4, 1/2, 3/4) unless configured otherwise; the end of training is
the final result itself. A plain ``donkeyrl train`` takes no checkpoints, so it pays nothing
for them (each costs one validation race, seconds to tens of seconds). At each checkpoint the
model is also saved (``model.zip``, atomically), so a trial stopped early keeps the model its
last score belongs to.

The file is rewritten empty when training starts (it belongs to the model saved beside it).
A reader tolerates a torn last line (a trial killed while writing).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["PROGRESS_NAME", "CHECKPOINT_FRACTIONS", "FRACTIONS_ENV", "VALUE_KEYS", "ProgressPoint",
           "checkpoint_fractions", "parse_fractions", "format_fractions", "checkpoint_steps", "append_progress",
           "read_progress", "parse_progress"]

PROGRESS_NAME = "progress.jsonl"
"""The progress file's name in the trial's save directory."""

CHECKPOINT_FRACTIONS: tuple[float, ...] = (0.25, 0.5, 0.75)
"""Fractions of the training budget at which a study with early stopping asks its trials for a
validation race (the rungs of research/pruning.py)."""

FRACTIONS_ENV = "DONKEYRL_CHECKPOINT_FRACTIONS"
"""Environment variable naming the checkpoint fractions of a trial (see the module docstring)."""

MAX_PROGRESS_BYTES = 1 << 20
"""Largest progress file read (a line is ~100 bytes; a handful of lines per trial)."""


@dataclass(frozen=True)
class ProgressPoint:
    """One checkpoint of one trial (the keys of a ``progress.jsonl`` line)."""

    steps: int
    fraction: float
    race_score: float | None
    validation_lap_rate: float | None
    time_sec: float

    def value_of(self, objective: str) -> float | None:
        """The checkpoint's value of ``objective`` (None when it does not report it)."""
        value = getattr(self, objective, None) if objective in VALUE_KEYS else None
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


VALUE_KEYS = ("race_score", "validation_lap_rate")
"""Objectives a checkpoint reports (result-file fields of the same name and meaning)."""


def parse_fractions(text: str) -> tuple[float, ...]:
    """``"0.25,0.5"`` -> (0.25, 0.5); ``"none"`` / ``""`` -> (); ValueError naming the bad value."""
    text = text.strip().lower()
    if text in ("", "none"):
        return ()
    out = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"checkpoint fraction {item!r} is not a number; give fractions in "
                             "(0, 1) separated by commas, or 'none'") from None
        if not 0.0 < value < 1.0:
            raise ValueError(f"checkpoint fraction {item!r} must be in (0, 1)")
        out.append(value)
    return tuple(sorted(set(out)))


def checkpoint_fractions(environ: Mapping[str, str] | None = None) -> tuple[float, ...]:
    """The fractions asked for by :data:`FRACTIONS_ENV` (() when unset: no checkpoints).

    A bad value is logged and taken as no checkpoints: the trial itself must not fail for it.
    """
    env = os.environ if environ is None else environ
    try:
        return parse_fractions(env.get(FRACTIONS_ENV, ""))
    except ValueError as exc:
        log.warning("%s: %s; no checkpoints taken", FRACTIONS_ENV, exc)
        return ()


def format_fractions(fractions: Sequence[float]) -> str:
    """The :data:`FRACTIONS_ENV` value for ``fractions`` ("none" for none)."""
    return ",".join(repr(float(f)) for f in fractions) or "none"


def checkpoint_steps(total_timesteps: int, fractions: Sequence[float]) -> list[tuple[int, float]]:
    """(step, fraction) of each checkpoint of a ``total_timesteps`` budget, in order.

    A checkpoint is taken at the first training step at or after ``round(fraction * total)``;
    fractions that round to no step or to the end of training (the final result covers it) are
    dropped, and so are duplicates of a very short budget.
    """
    out: list[tuple[int, float]] = []
    for f in sorted(fractions):
        step = int(round(f * total_timesteps))
        if 0 < step < total_timesteps and (not out or step > out[-1][0]):
            out.append((step, float(f)))
    return out


def append_progress(path: Path, point: ProgressPoint) -> None:
    """Append one line, flushed and fsynced (the controller may read it at any moment)."""
    line = json.dumps(point.to_dict(), allow_nan=False) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_progress(text: str) -> list[ProgressPoint]:
    """The points of a progress file's text; lines that are not complete points are skipped
    (a torn last line, or a file damaged by hand)."""
    out = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        steps, fraction, t = _num(obj.get("steps")), _num(obj.get("fraction")), _num(obj.get("time_sec"))
        if steps is None or fraction is None or not 0.0 < fraction <= 1.0:
            continue
        out.append(ProgressPoint(steps=int(steps), fraction=fraction,
                                 race_score=_num(obj.get("race_score")),
                                 validation_lap_rate=_num(obj.get("validation_lap_rate")),
                                 time_sec=t if t is not None else 0.0))
    return out


def read_progress(path: Path) -> list[ProgressPoint]:
    """The points of the progress file ``path`` ([] when missing, unreadable or not a regular
    file; never blocks on a FIFO)."""
    import stat
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_PROGRESS_BYTES:
            return []
        raw = os.read(fd, MAX_PROGRESS_BYTES)
    except OSError:
        return []
    finally:
        os.close(fd)
    return parse_progress(raw.decode("utf-8", "replace"))
