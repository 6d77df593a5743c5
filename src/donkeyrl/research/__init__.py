"""Autoresearch: the GP+UCB study controller and everything that keeps it safe overnight.

Public API: ``Controller`` + ``StudyConfig`` (run a study), ``Journal`` / ``TrialRecord`` (read
and write the results journal), ``fold_champion`` / ``ChampionStore`` (the champion),
``default_space`` / ``load_space`` (search spaces), ``PublishConfig`` (git publishing).
Modules: records, journal, space, trialcmd, procs, runner, result, champion, publish, lock,
study, config, controller.
"""

from .champion import ChampionStore, fold_champion
from .config import LogReporter, Progress, Reporter, StudyConfig
from .controller import Controller, StudyError, StudySummary
from .journal import Journal, JournalProblem, JournalRead, JournalWriteError
from .lock import StudyLock, StudyLockedError
from .publish import PublishConfig, Publisher
from .records import STATUSES, TrialRecord
from .space import AGENTS, default_space, load_space

__all__ = ["Controller", "StudyConfig", "StudyError", "StudySummary", "Reporter", "LogReporter",
           "Progress", "Journal", "JournalRead", "JournalProblem", "JournalWriteError",
           "TrialRecord", "STATUSES", "fold_champion", "ChampionStore", "StudyLock",
           "StudyLockedError", "PublishConfig", "Publisher", "AGENTS", "default_space",
           "load_space"]
