"""``donkeyrl export optuna``: a study as an Optuna journal file.

The file is Optuna's own journal format (``JournalStorage`` over ``JournalFileBackend``), so
``optuna-dashboard FILE``, ``optuna.load_study(storage=JournalStorage(JournalFileBackend(FILE)))``
and every visualisation or importance function of Optuna open it unchanged. What goes in is
described in :mod:`donkeyrl.report.optuna_study`; the Optuna study is named after the study
directory.

The export is derived data: it is written to a temporary file beside the target and renamed
over it, so re-exporting a grown study replaces the old export whole and a reader never sees
half a file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from donkeyrl.report.optuna_study import optuna_study, quiet_optuna
from donkeyrl.report.study import load_study

__all__ = ["OPTUNA_JOURNAL_NAME", "OptunaExport", "export_optuna"]

log = logging.getLogger(__name__)

#: Default file name, inside the study directory.
OPTUNA_JOURNAL_NAME = "optuna-journal.log"


@dataclass(frozen=True)
class OptunaExport:
    """What was written."""

    path: Path
    study_name: str
    n_trials: int
    states: dict[str, int]
    """Number of trials per Optuna state (COMPLETE, FAIL, PRUNED)."""


def export_optuna(study_dir: str | Path, out: str | Path | None = None) -> OptunaExport:
    """Writes the study at ``study_dir`` as an Optuna journal (default ``<study>/optuna-journal.log``).

    Raises :class:`donkeyrl.report.study.StudyReadError` for a directory that is not a study and
    OSError when the file cannot be written.
    """
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    data = load_study(study_dir)
    path = Path(out) if out is not None else data.root / OPTUNA_JOURNAL_NAME
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        # the open-lock variant: the default symlink lock leaves nothing behind either, but an
        # open lock also works on file systems without symlinks (some network mounts)
        backend = JournalFileBackend(str(tmp), lock_obj=JournalFileOpenLock(str(tmp)))
        with quiet_optuna():
            study = optuna_study(data, storage=JournalStorage(backend), study_name=data.name)
            trials = study.get_trials(deepcopy=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.lock").unlink(missing_ok=True)
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    log.info("wrote %s: %d trials %s", path, len(trials), states)
    return OptunaExport(path, data.name, len(trials), states)
