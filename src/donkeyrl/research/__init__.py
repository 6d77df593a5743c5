"""Autoresearch: the GP+UCB study controller and everything that keeps it safe overnight.

Public API: ``Controller`` + ``StudyConfig`` (run a study), ``Journal`` / ``TrialRecord`` (read
and write the results journal), ``fold_champion`` / ``ChampionRule`` / ``ChampionStore`` /
``recorded_champion`` (the champion, confirmed on fresh seeds), ``default_space`` /
``load_space`` (search spaces), ``PublishConfig`` (git publishing), ``PreflightError`` (a setup
error found before the first trial), ``run_final_test`` / ``FinalConfig`` (the champion on the
test set against the baseline and the expert, at the end of a study).
Modules: records, journal, files, space, trialcmd, procs, leader, runner, result, champion,
pareto (ParEGO proposals), initmodel (fine-tuning studies), publish, lock, study, preflight,
limits, config, controller, final.

Names are imported on first use (PEP 562), so that ``import donkeyrl.research.limits`` (the CLI
at start-up) does not pay for numpy and scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Controller": "controller", "StudyError": "controller", "StudySummary": "controller",
    "StudyConfig": "config", "Reporter": "config", "LogReporter": "config", "Progress": "config",
    "Journal": "journal", "JournalRead": "journal", "JournalProblem": "journal",
    "JournalWriteError": "journal", "JournalReadError": "journal",
    "TrialRecord": "records", "STATUSES": "records",
    "fold_champion": "champion", "ChampionStore": "champion", "ChampionRule": "champion",
    "recorded_champion": "champion", "run_final_test": "final", "FinalConfig": "final",
    "StudyLock": "lock", "StudyLockedError": "lock",
    "PublishConfig": "publish", "Publisher": "publish",
    "AGENTS": "space", "default_space": "space", "load_space": "space",
    "PreflightError": "preflight",
}

__all__ = ["Controller", "StudyError", "StudySummary", "StudyConfig", "Reporter", "LogReporter",
           "Progress", "Journal", "JournalRead", "JournalProblem", "JournalWriteError",
           "JournalReadError", "TrialRecord", "STATUSES", "fold_champion", "ChampionStore",
           "ChampionRule", "recorded_champion", "run_final_test", "FinalConfig",
           "StudyLock", "StudyLockedError", "PublishConfig", "Publisher", "AGENTS",
           "default_space", "load_space", "PreflightError"]

if TYPE_CHECKING:
    from .champion import ChampionRule, ChampionStore, fold_champion, recorded_champion
    from .final import FinalConfig, run_final_test
    from .config import LogReporter, Progress, Reporter, StudyConfig
    from .controller import Controller, StudyError, StudySummary
    from .journal import Journal, JournalProblem, JournalRead, JournalReadError, JournalWriteError
    from .lock import StudyLock, StudyLockedError
    from .preflight import PreflightError
    from .publish import PublishConfig, Publisher
    from .records import STATUSES, TrialRecord
    from .space import AGENTS, default_space, load_space


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
