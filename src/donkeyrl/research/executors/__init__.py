"""Executors: where a study's trials run (executors/base.py describes the seam).

``local``: process groups on this machine (executors/local.py); ``ray``: one detached Ray actor
per trial on a Ray cluster (executors/ray_executor.py, needs the ``ray`` extra). ``make_executor``
builds one by name; the Ray module is imported only when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import EXECUTOR_KEY, Executor, ExecutorError, Recovered, TrialHandle

__all__ = ["EXECUTORS", "make_executor", "Executor", "TrialHandle", "Recovered", "ExecutorError",
           "EXECUTOR_KEY"]

EXECUTORS = {
    "local": "trials as process groups on this machine (the default)",
    "ray": "each trial as a Ray actor on a Ray cluster (--ray-address, or a local one)",
}
"""Executors by name (``donkeyrl research --executor``)."""


def make_executor(name: str, *, study_dir: Path, kill_grace: float, **options: Any) -> Executor:
    """The executor ``name`` for the study in ``study_dir``; ``options`` are the Ray executor's
    (``address``, ``cpus_per_trial``, ``shared_dir``). Raises ExecutorError with one line."""
    if name == "local":
        from .local import LocalExecutor
        return LocalExecutor(Path(study_dir) / "running", kill_grace=kill_grace)
    if name == "ray":
        from .ray_executor import RayExecutor
        return RayExecutor(study_dir, kill_grace=kill_grace, **options)
    raise ExecutorError(f"executor {name!r} is not one of {', '.join(EXECUTORS)}")
