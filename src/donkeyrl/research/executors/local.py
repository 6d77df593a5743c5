"""The local executor: trials as process groups on this machine, under the trial leader.

This is the controller's behaviour from before executors existed, unchanged: each trial is a
:class:`~donkeyrl.research.runner.TrialProcess` (its own process group and session, the trial
leader that kills everything the trial started when it ends or the controller dies, a PID file
in ``running/``, the timeout enforced on every poll, SIGTERM then SIGKILL after the kill grace).
A controller restart finds no trial to adopt: the leader killed each one when its controller
died; leftovers are reaped by identity (runner.reap_leftover) and recorded by the controller.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..runner import TrialProcess, TrialSpec, is_local, read_pid_files, reap_leftover
from .base import ExecutorError, Recovered

__all__ = ["LocalExecutor"]

log = logging.getLogger(__name__)


class LocalExecutor:
    """Runs each trial as a local process group (see the module docstring)."""

    name = "local"

    def __init__(self, pid_dir: Path, *, kill_grace: float = 3.0) -> None:
        self.pid_dir = Path(pid_dir)
        self.kill_grace = kill_grace

    def submit(self, spec: TrialSpec) -> TrialProcess:
        return TrialProcess(spec, self.pid_dir, kill_grace=self.kill_grace)

    def recover(self, pid_dir: Path, known: set[int]) -> list[Recovered]:
        """Reap every local leftover by identity; nothing is adopted.

        Raises ExecutorError (before touching anything) when a trial of the study runs on
        another executor: only that executor can reach it.
        """
        infos = read_pid_files(pid_dir)
        foreign = [i for i in infos if not is_local(i)]
        if foreign:
            raise ExecutorError(
                f"trial(s) {', '.join(str(i['trial']) for i in foreign)} of this study ran on "
                f"executor {foreign[0].get('executor')!r} when the previous controller stopped; "
                f"resume with --executor {foreign[0].get('executor')} (and the same cluster) so "
                "they are waited for or stopped, never run twice")
        out = []
        for info in infos:
            note = reap_leftover(info, self.kill_grace)
            log.warning("previous controller left trial %s: %s", info["trial"], note)
            out.append(Recovered(trial=int(info["trial"]), info=info, handle=None,
                                 status="interrupted", note=note))
        return out

    def close(self) -> None:
        pass
