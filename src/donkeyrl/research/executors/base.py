"""The executor seam: how the controller runs trials without knowing where they run.

The controller hands an executor a :class:`~donkeyrl.research.runner.TrialSpec` and gets a
:class:`TrialHandle` back; it polls the handle until it returns a
:class:`~donkeyrl.research.runner.Finished`, may cancel it with a reason (a timeout is the
executor's own business; ``interrupted`` on shutdown, ``pruned`` by early stopping), reads the
trial's checkpoint scores through it, and releases it once the trial's record is in the journal.
After a controller restart, :meth:`Executor.recover` turns what the previous controller
persisted in ``running/trial-<N>.json`` into either a handle of a trial that still runs (the
controller adopts it and waits for it) or nothing (the trial is gone; the controller records it).

Two executors exist: :class:`~donkeyrl.research.executors.local.LocalExecutor` (process groups
on this machine, under the trial leader) and
:class:`~donkeyrl.research.executors.ray.RayExecutor` (one detached Ray actor per trial on a Ray
cluster). Both write every file of a trial into the study directory in the same layout, so
records, results and models do not depend on where a trial ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from donkeyrl.rl.checkpoints import ProgressPoint

from ..runner import Finished, TrialSpec

__all__ = ["TrialHandle", "Executor", "Recovered", "ExecutorError", "EXECUTOR_KEY"]

EXECUTOR_KEY = "executor"
"""Key of a persisted running-trial file naming the executor that runs the trial (absent in
files written before executors existed: those are local process groups)."""


class ExecutorError(RuntimeError):
    """The executor cannot run trials (no Ray installed, cluster unreachable, a trial that can
    never be scheduled); raised before any trial of a study runs, with one clear line."""


class TrialHandle(Protocol):
    """One submitted trial, as the controller sees it."""

    spec: TrialSpec

    def poll(self) -> Finished | None:
        """None while the trial runs; its ``Finished`` once it ended (timeouts are enforced by
        the executor and reported with ``killed="timeout"``; a trial whose machine died is
        reported with ``killed="lost"``). Once it returned a ``Finished``, every file of the
        trial is in the study directory."""
        ...

    def cancel(self, reason: str, message: str) -> Finished:
        """Stop the trial now (SIGTERM to its process group, SIGKILL after the grace period)
        and report it with ``killed=reason``; files it wrote so far are kept."""
        ...

    def progress(self) -> list[ProgressPoint]:
        """The checkpoint scores the trial reported so far (``progress.jsonl``), oldest first."""
        ...

    def release(self) -> None:
        """Forget the trial once its record is in the journal (PID file, cluster resources)."""
        ...


@dataclass(frozen=True)
class Recovered:
    """What an executor found of a trial that a previous controller left running."""

    trial: int
    info: dict[str, Any]
    """The persisted running-trial file (params, seed, rerun_of, log_file, ...)."""
    handle: TrialHandle | None
    """The trial still runs and was adopted: the controller waits for it like for its own."""
    status: str
    """When not adopted: the status of its record if it has no complete result
    (``interrupted`` or ``lost``)."""
    note: str
    """What was done, for the study log."""


class Executor(Protocol):
    """Where trials run (see the module docstring)."""

    name: str

    def submit(self, spec: TrialSpec) -> TrialHandle:
        """Start one trial; raises OSError when it cannot be started (nothing is left behind:
        no process, no file of the trial)."""
        ...

    def recover(self, pid_dir: Path, known: set[int]) -> list[Recovered]:
        """Find what a previous controller left running (files in ``pid_dir``): adopt what
        still runs, stop what must not run on (trials already in the journal, ``known``)."""
        ...

    def close(self) -> None:
        """Let go of the executor's resources (after every handle was released)."""
        ...
