"""A study directory, read-only: the records, the search space, who proposed each trial, curves.

Why one loader: the HTML report and both exports (Optuna journal, ONNX) must read a study the
same way, and must never change it. Everything here only opens files for reading; a damaged
journal line is reported (by :class:`donkeyrl.research.journal.Journal`) and skipped, like the
controller does on resume.

Who proposed a trial (``TrialView.source``): ``confirmation`` for a confirmation run (record
field ``confirms``); a record's own ``proposal`` field when the journal carries one; otherwise
(today) it is read from the log, where the controller writes ``proposal for trial N: top
candidates ...`` to ``study.log`` for every model-based (GP+UCB) proposal, and nothing for a
random one. So a trial with that line is ``gp``; a trial numbered below the first such line is
``random`` (the optimizer's random phase comes first); any other trial is ``unknown`` (e.g. the
second proposal of a parallel batch, which shares the first one's line, or a study whose
``study.log`` is gone).
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from donkeyrl.bo import SearchSpace, SearchSpaceError
from donkeyrl.research.champion import ChampionRule, fold_champion
from donkeyrl.research.journal import Journal, JournalProblem
from donkeyrl.research.records import TrialRecord
from donkeyrl.research.study import StudyPaths
from donkeyrl.rl.train import CURVE_NAME

__all__ = ["StudyData", "StudyReadError", "TrialView", "CURVE_FILE", "HEAD_TO_HEAD_FILE",
           "load_study", "read_curve"]

log = logging.getLogger(__name__)

#: Learning curve the trainer writes beside its model: one JSON object per progress report.
CURVE_FILE = CURVE_NAME
#: Keys of a curve line (``steps`` is required, the others may be missing or null).
CURVE_KEYS = ("steps", "time_sec", "episodes", "mean_reward", "laps_total", "best_episode_laps")
#: The champion against the expert and a baseline on the test set, written at the end of a study.
HEAD_TO_HEAD_FILE = "head_to_head.json"

_GP_LINE = re.compile(r"proposal for trial (\d+): top candidates")


class StudyReadError(ValueError):
    """The directory is not a study (no journal) or cannot be read; the message says which."""


@dataclass
class TrialView:
    """One trial as the report shows it."""

    record: TrialRecord
    source: str
    """``random``, ``gp``, ``confirmation`` or ``unknown`` (see the module docstring)."""
    trial_dir: Path
    curve: list[dict[str, Any]] | None = None
    """The trial's learning curve (``curve.jsonl``), None when the trainer recorded none."""

    @property
    def trial(self) -> int:
        return self.record.trial


@dataclass
class StudyData:
    """Everything a report or an export reads from one study directory."""

    root: Path
    trials: list[TrialView]
    problems: list[JournalProblem]
    info: dict[str, Any]
    """``study.json`` (empty when missing or unreadable)."""
    space: SearchSpace | None
    """The study's search space from ``study.json`` (None when it is missing or invalid)."""
    objective: str
    champion: TrialRecord | None
    head_to_head: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    """Things the reader should know (unreadable files, an invalid search space...)."""

    @property
    def name(self) -> str:
        return self.root.resolve().name

    @property
    def records(self) -> list[TrialRecord]:
        return [t.record for t in self.trials]

    @property
    def paths(self) -> StudyPaths:
        return StudyPaths(self.root)

    def crownings(self) -> list[tuple[TrialRecord, TrialRecord]]:
        """(record whose append crowned, the crowned trial's record) in journal order.

        With confirmation runs the crowned model is not always the record that completed the
        confirmation (the configuration's best run is installed), so readers must not take
        ``record.champion`` as "this trial's model became champion"."""
        by_trial = {r.trial: r for r in self.records}
        return [(r, by_trial[r.crowned_trial]) for r in self.records
                if r.crowned_trial is not None and r.crowned_trial in by_trial]

    def crowned_trials(self) -> set[int]:
        """Trials whose model was champion at some point."""
        return {crowned.trial for _, crowned in self.crownings()}

    def champion_dir(self) -> Path:
        """``models/champion`` (its model.zip and trial_config.json rebuild the champion's env)."""
        return self.paths.models / "champion"


def load_study(root: str | Path) -> StudyData:
    """Reads the study at ``root``; StudyReadError when it holds no journal."""
    paths = StudyPaths(Path(root))
    if not paths.root.is_dir():
        raise StudyReadError(f"study directory {paths.root} does not exist")
    if not paths.journal.is_file():
        raise StudyReadError(f"{paths.root} is not a study directory: it has no "
                             f"{paths.journal.name} (the journal `donkeyrl research` writes)")
    read = Journal(paths.journal).read()
    notes: list[str] = []
    info = _read_json(paths.study_json, notes) or {}
    space = None
    if isinstance(info.get("space"), dict):
        try:
            space = SearchSpace.from_dict(info["space"])
        except SearchSpaceError as exc:
            notes.append(f"{paths.study_json.name}: invalid search space ({exc})")
    else:
        notes.append(f"{paths.study_json.name} holds no search space: parameter importance, "
                     "slices and the GP posterior are not shown")
    objective = str(info.get("objective") or
                    (read.records[0].objective_name if read.records else "objective"))
    sources = proposal_sources(paths.study_log, [r.trial for r in read.records])
    trials = [TrialView(rec, _recorded_source(rec) or sources[rec.trial], paths.trial_dir(rec.trial),
                        read_curve(_model_dir(paths, rec) / CURVE_FILE))
              for rec in read.records]
    h2h = _read_json(paths.root / HEAD_TO_HEAD_FILE, notes)
    return StudyData(root=paths.root, trials=trials, problems=read.problems, info=info, space=space,
                     objective=objective,
                     champion=fold_champion(read.records, ChampionRule.from_study(info)),
                     head_to_head=h2h if isinstance(h2h, dict) else None, notes=notes)


def _recorded_source(rec: TrialRecord) -> str | None:
    """``confirmation`` for a confirmation run (its record names the trial it confirms); else the
    record's own ``proposal`` field, should the journal carry one (preferred to the log)."""
    if rec.confirms is not None:
        return "confirmation"
    value = getattr(rec, "proposal", None)
    return value if isinstance(value, str) and value else None


def _model_dir(paths: StudyPaths, rec: TrialRecord) -> Path:
    """The directory of a trial's model (its curve sits beside it), else its trial directory."""
    if rec.model_path:
        p = Path(rec.model_path)
        p = p if p.is_absolute() else paths.root / p
        return p.parent
    return paths.trial_dir(rec.trial)


def _read_json(path: Path, notes: list[str]) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"cannot read {path.name}: {exc}")
        return None


def proposal_sources(study_log: Path, trials: list[int]) -> dict[int, str]:
    """``random`` / ``gp`` / ``unknown`` for each trial number (see the module docstring)."""
    gp: set[int] = set()
    try:
        with open(study_log, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                m = _GP_LINE.search(line)
                if m:
                    gp.add(int(m.group(1)))
    except OSError:
        return dict.fromkeys(trials, "unknown")
    first_gp = min(gp) if gp else math.inf
    out = {}
    for t in trials:
        out[t] = "gp" if t in gp else "random" if t < first_gp else "unknown"
    return out


def read_curve(path: Path) -> list[dict[str, Any]] | None:
    """The learning curve at ``path`` as a list of points sorted by steps; None if absent.

    Lines that are not JSON objects with an integer ``steps`` (a torn last line of a killed
    trainer, say) are skipped; non-numeric values become None.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    points = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict) or not _is_number(obj.get("steps")):
            continue
        points.append({k: (float(obj[k]) if _is_number(obj.get(k)) else None) for k in CURVE_KEYS})
    points.sort(key=lambda p: float(p["steps"] or 0.0))
    return points


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
