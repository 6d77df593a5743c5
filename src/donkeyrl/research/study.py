"""Study directory layout, the human-readable study log, and start-up recovery.

Layout of a study directory::

    results.jsonl            the journal: one record per trial (append-only, the source of truth)
    study.log                one human-readable line per event (trial ends, proposals, restarts)
    study.json               the configuration the study was created with (informational)
    logs/trial-<N>.log       live stdout + stderr of trial N
    models/trial-<N>/        --save-dir of trial N (model.zip, result.json, launch.json, and
                             confirm.json for a confirmation run)
    models/champion/         model.zip + manifest.json of the champion (see champion.py)
    running/trial-<N>.json   PID files of running trials (removed once recorded)
    controller.lock          held while a controller runs (see lock.py)

Trial numbers are never reused: the next trial is one past the highest number the journal, a
PID file or a ``models/trial-<N>`` directory has used. A trial directory without a record (its
journal line was torn, or its record was lost with a crash during recovery) is recovered at
start like a trial left running: recorded from its ``result.json`` when that is complete, else as
``interrupted``, with the params and seed from its ``launch.json`` and, for a confirmation run,
``confirms`` from its ``confirm.json`` (written before the launch).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from donkeyrl.bo import Optimizer, SearchSpaceError

from .executors import Executor, TrialHandle
from .files import check_regular_or_absent, read_regular, write_json_atomic
from .records import NOT_RUN, TrialRecord, implausible, now_iso
from .result import parse_outcome
from .runner import LAUNCH_FILE, read_pid_files, remove_trial_tmp

__all__ = ["StudyPaths", "StudyLog", "recover_running", "recover_unrecorded", "tell_records",
           "write_study_json", "check_study_files", "used_trial_numbers", "remove_stale_temp_files",
           "CONFIRM_FILE", "write_confirm_file", "read_confirm_file", "CHANGE_WARNED"]

CONFIRM_FILE = "confirm.json"
"""Written into a confirmation run's trial directory before its launch: ``{"confirms": N}``."""

CHANGE_WARNED = ("objective", "space", "agent", "confirm_seeds", "n_initial", "init_model")
"""study.json keys whose change on resume is warned about: the champion is re-folded with the
current rule, so a changed objective or confirmation rule can change the champion."""

_TRIAL_DIR = re.compile(r"^trial-(\d+)$")
_TEMP_FILE = re.compile(r"^\..+\.tmp-\d+$|^\.write-test-\d+$")
"""Temporary files of files.write_json_atomic / copy_atomic and ensure_writable."""

log = logging.getLogger(__name__)


class StudyPaths:
    """Paths inside a study directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.journal = self.root / "results.jsonl"
        self.study_log = self.root / "study.log"
        self.study_json = self.root / "study.json"
        self.logs = self.root / "logs"
        self.models = self.root / "models"
        self.running = self.root / "running"

    def trial_dir(self, trial: int) -> Path:
        return self.models / f"trial-{trial}"

    def result_file(self, trial: int) -> Path:
        return self.trial_dir(trial) / "result.json"

    def trial_log(self, trial: int) -> Path:
        return self.logs / f"trial-{trial}.log"

    def create(self) -> None:
        """Create the directories (raises OSError with the offending path)."""
        for d in (self.root, self.logs, self.models, self.running):
            d.mkdir(parents=True, exist_ok=True)

    def files(self) -> tuple[Path, ...]:
        """The study's own files, each of which must be a regular file when it exists."""
        return (self.journal, self.study_log, self.study_json, self.root / "controller.lock")

    def trial_dirs(self) -> dict[int, Path]:
        """Every ``models/trial-<N>`` directory by trial number."""
        out = {}
        try:
            entries = list(self.models.iterdir())
        except OSError:
            return {}
        for entry in entries:
            m = _TRIAL_DIR.match(entry.name)
            if m and entry.is_dir():
                out[int(m.group(1))] = entry
        return out

    def rel(self, path: Path | None) -> str | None:
        """``path`` relative to the study dir when inside it, else absolute."""
        if path is None:
            return None
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


class StudyLog:
    """Append-only human-readable log (``study.log``), flushed after every line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def line(self, text: str) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(f"{now_iso()[:19]} {text}\n")
                fh.flush()
        except OSError as exc:  # the journal is what matters; a log failure is only logged
            log.error("cannot write %s: %s", self.path, exc)


def write_study_json(paths: StudyPaths, info: dict[str, Any],
                     warm_start: list[str]) -> tuple[list[str], list[str]]:
    """Create or update study.json; returns (warnings about changed settings, warm starts).

    Warm-start files are remembered, so a resumed study learns from them even when the
    command line no longer names them: the returned list is the union of both, in order.
    """
    old: dict[str, Any] = {}
    warnings: list[str] = []
    if paths.study_json.exists():
        try:
            loaded = json.loads(read_regular(paths.study_json, 16 << 20).decode("utf-8"))
            old = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError, RecursionError) as exc:
            warnings.append(f"cannot read {paths.study_json}: {exc}")
        if not isinstance(old.get("warm_start", []), list):
            old["warm_start"] = []
    warnings += [f"{key} changed since the study was created: was {old.get(key)!r}, now "
                 f"{info[key]!r}" for key in CHANGE_WARNED
                 if key in old and key in info and old[key] != info[key]]
    if old:
        warnings += [f"study.json has no {key!r} (the study was created by an older version): "
                     f"the journal is now folded with {key}={info[key]!r}"
                     for key in ("confirm_seeds",) if key in info and key not in old]
    files = list(dict.fromkeys([*(str(f) for f in old.get("warm_start", [])), *warm_start]))
    if not old or files != old.get("warm_start", []):
        base = old or {"created_at": now_iso(), **info}
        write_json_atomic(paths.study_json, {**base, "warm_start": files})
    return warnings, files


def recover_running(paths: StudyPaths, executor: Executor, known: set[int], *, objective: str,
                    cwd: Path) -> tuple[list[TrialRecord], list[TrialHandle]]:
    """Deal with every trial a previous controller left running; each is recorded exactly once.

    The executor (research/executors) decides what is left of each: a trial that still runs
    (on a Ray cluster: its detached actor) is *adopted*: returned as a handle, its PID file
    kept, its number added to ``known``; the controller waits for it like for its own. Local
    leftovers are reaped by identity. For a trial that is not adopted: already in the journal,
    it only loses its PID file; otherwise, if its result file is complete the real result is
    recorded (the controller died after the trial finished), if not an ``interrupted`` record
    is written (``lost`` when its Ray actor vanished). The PID file goes last, so a crash during
    recovery is itself recovered on the next start.
    """
    out: list[TrialRecord] = []
    adopted: list[TrialHandle] = []
    for found in executor.recover(paths.running, set(known)):
        trial = found.trial
        if found.handle is not None:
            log.warning("previous controller left trial %d: %s", trial, found.note)
            adopted.append(found.handle)
            known.add(trial)
            continue
        log.warning("previous controller left trial %d: %s", trial, found.note)
        if trial not in known:
            why = ("the controller stopped while the trial ran" if found.status == "interrupted"
                   else found.note)
            out.append(_recovered(paths, trial, found.info, objective=objective, cwd=cwd,
                                  why=why, status=found.status))
            known.add(trial)
        remove_trial_tmp(paths.trial_dir(trial))
        Path(found.info["_path"]).unlink(missing_ok=True)
    return out, adopted


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _recovered(paths: StudyPaths, trial: int, info: dict[str, Any], *, objective: str, cwd: Path,
               why: str, status: str = "interrupted") -> TrialRecord:
    """The record of a trial found at start-up without one: its real result if complete,
    else ``status`` (``interrupted``, or ``lost`` for a Ray trial whose actor vanished).
    ``info`` holds params/seed/log_file (PID file or launch.json)."""
    raw = info.get("params")
    params: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
    seed, rerun_of = _int_or_none(info.get("seed")), _int_or_none(info.get("rerun_of"))
    confirms = read_confirm_file(paths.trial_dir(trial))
    log_path = paths.rel(Path(info.get("log_file") or paths.trial_log(trial)))
    result_file = paths.result_file(trial)
    parsed = parse_outcome(result_file, 0, objective=objective, cwd=cwd,
                           trial_dir=paths.trial_dir(trial))
    if parsed.run_status in ("no_result", "bad_result") and not result_file.exists():
        return TrialRecord(trial, dict(params), status, f"{why} (found at restart)",
                           objective_name=objective, seed=seed, log_path=log_path,
                           rerun_of=rerun_of, confirms=confirms)
    return TrialRecord(
        trial, dict(params), parsed.run_status,
        ("recovered at restart: " + parsed.message).strip(": "),
        objective_name=objective, objective=parsed.objective,
        mean_reward=parsed.mean_reward, std_reward=parsed.std_reward,
        episode_rewards=parsed.episode_rewards, driving_score=parsed.driving_score,
        metrics=parsed.metrics, used_params=parsed.used_params, noise=parsed.noise,
        reward_hacking=parsed.reward_hacking, model_path=paths.rel(parsed.model_path),
        seed=seed, log_path=log_path, rerun_of=rerun_of, confirms=confirms,
        objectives=parsed.objectives)


def write_confirm_file(trial_dir: Path, confirms: int) -> None:
    """Mark ``trial_dir`` as a confirmation run of trial ``confirms`` (before its launch)."""
    write_json_atomic(trial_dir / CONFIRM_FILE, {"confirms": confirms})


def read_confirm_file(trial_dir: Path) -> int | None:
    """The trial a confirmation run confirms, from its ``confirm.json``; None otherwise."""
    try:
        data = json.loads(read_regular(trial_dir / CONFIRM_FILE, 1 << 16).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return _int_or_none(data.get("confirms")) if isinstance(data, dict) else None


def _launch_info(trial_dir: Path) -> dict[str, Any]:
    """launch.json of a trial directory, or {} when missing or unreadable."""
    try:
        data = json.loads(read_regular(trial_dir / LAUNCH_FILE, 1 << 20).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def recover_unrecorded(paths: StudyPaths, known: set[int], *, objective: str,
                       cwd: Path) -> list[TrialRecord]:
    """Records for trial directories that have none (see the module docstring).

    Called after ``recover_running``, so no trial of these is running. A directory without
    launch.json and without result.json holds nothing of a trial (a launch that failed before
    writing anything) and is left alone; its number is still never reused.
    """
    out = []
    for trial, trial_dir in sorted(paths.trial_dirs().items()):
        if trial in known:
            continue
        info = _launch_info(trial_dir)
        if not info and not (trial_dir / "result.json").exists():
            continue
        out.append(_recovered(paths, trial, info, objective=objective, cwd=cwd,
                              why="no record in the journal (a torn or lost line)"))
        known.add(trial)
        remove_trial_tmp(trial_dir)
    return out


def used_trial_numbers(paths: StudyPaths, records: list[TrialRecord]) -> int:
    """The highest trial number used by a record, a PID file or a trial directory (0: none)."""
    highest = max((r.trial for r in records), default=0)
    highest = max([highest, *paths.trial_dirs()])
    for info in read_pid_files(paths.running):
        highest = max(highest, int(info["trial"]))
    return highest


def remove_stale_temp_files(paths: StudyPaths) -> list[Path]:
    """Remove temporary files a killed controller left (it died between writing and renaming).

    Called at start-up while holding the lock and before any trial runs, so none of them can
    belong to a live writer. Returns what was removed.
    """
    removed = []
    dirs = [paths.root, paths.running, paths.models / "champion", *paths.trial_dirs().values()]
    for d in dirs:
        try:
            entries = list(d.iterdir())
        except OSError:
            continue
        for entry in entries:
            if _TEMP_FILE.match(entry.name) and entry.is_file() and not entry.is_symlink():
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


def check_study_files(paths: StudyPaths) -> None:
    """Raise NotRegularFileError when one of the study's files is a directory, FIFO, ..."""
    for path in paths.files():
        check_regular_or_absent(path)


def tell_records(opt: Optimizer, records: list[TrialRecord], objective: str,
                 source: str) -> tuple[int, int]:
    """Tell the optimizer every record it should learn from; returns (told, skipped).

    ``interrupted`` and ``lost`` records tell nothing (the point was never evaluated) and
    reward-hacking trials are kept out of the surrogate. Failures are told as failures (see
    donkeyrl.bo), and so are ``pruned`` trials: their objective is a partial-budget checkpoint
    score, not comparable with finished trials' (docs/cluster.md, "Early stopping"), so the
    optimizer learns only "not worth finishing": never proposed again, imputed at the worst
    successful value once the GP exists. Records whose params do not fit the current space are
    skipped with a warning.
    """
    told = skipped = 0
    for rec in records:
        if rec.run_status in NOT_RUN or rec.reward_hacking:
            continue
        value, status = None, rec.run_status
        if status == "ok":
            value = rec.value_of(objective)
            if value is None:
                log.warning("%s trial %d has no %r: skipped", source, rec.trial, objective)
                skipped += 1
                continue
            if implausible(objective, value):
                log.warning("%s trial %d: %s: skipped", source, rec.trial,
                            implausible(objective, value))
                skipped += 1
                continue
        noise = rec.noise if rec.objective_name == objective else None
        try:
            opt.tell(rec.params, value, noise=noise, status=status)
        except (SearchSpaceError, ValueError, TypeError, OverflowError) as exc:
            log.warning("%s trial %d does not fit the search space: %s", source, rec.trial, exc)
            skipped += 1
            continue
        told += 1
    return told, skipped


def ensure_writable(root: Path) -> None:
    """Raise OSError if files cannot be created in ``root`` (checked before any trial runs)."""
    probe = root / f".write-test-{os.getpid()}"
    try:
        with open(probe, "w") as fh:
            fh.write("ok")
    finally:
        probe.unlink(missing_ok=True)
