"""The trial record: one JSON line of ``results.jsonl`` per finished (or interrupted) trial.

Schema (every key is always present; values may be null):

- ``trial`` (int >= 1): trial number, unique in a study, assigned at launch.
- ``timestamp`` (str): ISO-8601 local time the record was written.
- ``params`` (dict): the hyperparameters proposed for the trial, plus every hyperparameter the
  trainer reported it actually used (``params`` of the result file) under ``used_params``.
- ``run_status`` (str): ``ok`` or a failure kind, see ``STATUSES``.
- ``message`` (str): why a trial failed (or a note for an ok one); empty when nothing to say.
- ``objective_name`` (str) / ``objective`` (float | null): the value the optimizer maximises.
- ``mean_reward``, ``std_reward`` (float | null), ``episode_rewards`` (list of float).
- ``driving_score`` (float | null) and ``metrics`` (dict): the trainer's driving metrics
  (completion, laps, lap_times, mean_abs_cte, ...), copied verbatim.
- ``noise`` (float | null): standard error of ``objective``, given to the GP.
- ``reward_hacking`` (bool): the trainer flagged the trial as suspicious; such trials are kept
  out of the surrogate model and can never be champion.
- ``model_path`` (str | null): the trial's model, relative to the study dir when inside it.
- ``champion`` (bool): the trial became champion when it was recorded (see champion.py).
- ``elapsed_sec`` (float): wall time of the trial process.
- ``seed`` (int), ``log_path`` (str): seed given to the trainer, the trial's log file.
- ``exit_code`` (int | null): the trial process's exit code (negative: killed by a signal).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

__all__ = ["TrialRecord", "STATUSES", "FAILED", "now_iso", "RecordError"]

STATUSES = {
    "ok": "trial trained and evaluated; objective is usable",
    "timeout": "killed after --trial-timeout seconds",
    "crashed": "the trial process exited non-zero (or was killed by a signal)",
    "no_result": "the trial process exited 0 without writing its result file",
    "bad_result": "the result file is not valid JSON, misses fields or names a missing model",
    "nan": "the objective is NaN or infinite",
    "interrupted": "the controller stopped (Ctrl-C, SIGTERM, crash) while the trial ran",
    "error": "the trainer reported an error",
    "diverged": "the trainer reported that training diverged",
    "sim_disconnected": "the trainer lost the simulator",
}
"""Known ``run_status`` values; a trainer may report other failure kinds, kept verbatim."""

FAILED = frozenset(STATUSES) - {"ok", "interrupted"}
"""Statuses that tell the optimizer "this point failed" (``interrupted`` tells it nothing)."""


class RecordError(ValueError):
    """A journal line that is valid JSON but not a trial record."""


def now_iso() -> str:
    """Local time with microseconds, as in the spec's data model."""
    return _dt.datetime.now().isoformat()


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (at any depth) replaced by None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _opt_float(value: Any) -> float | None:
    """A finite float, NaN for non-finite numbers, None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


@dataclass
class TrialRecord:
    """One trial's outcome (see the module docstring for the meaning of every field)."""

    trial: int
    params: dict[str, Any]
    run_status: str
    message: str = ""
    objective_name: str = "driving_score"
    objective: float | None = None
    mean_reward: float | None = None
    std_reward: float | None = None
    episode_rewards: list[float] = field(default_factory=list)
    driving_score: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    used_params: dict[str, Any] = field(default_factory=dict)
    noise: float | None = None
    reward_hacking: bool = False
    model_path: str | None = None
    champion: bool = False
    elapsed_sec: float = 0.0
    seed: int | None = None
    log_path: str | None = None
    exit_code: int | None = None
    timestamp: str = field(default_factory=now_iso)

    @property
    def usable(self) -> bool:
        """True when the objective may feed the surrogate model and the champion fold."""
        return (self.run_status == "ok" and self.objective is not None
                and math.isfinite(self.objective) and not self.reward_hacking)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the journal; NaN/inf anywhere are written as null."""
        out = dataclasses.asdict(self)
        out = {"trial": out.pop("trial"), "timestamp": out.pop("timestamp"), **out}
        return _finite(out)

    @classmethod
    def from_json(cls, obj: Any) -> TrialRecord:
        """Parse a journal object; raises RecordError naming what is wrong.

        Unknown keys are ignored and missing optional keys take their defaults, so records
        written by older versions (or the spec's minimal schema) still load.
        """
        if not isinstance(obj, Mapping):
            raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
        trial = obj.get("trial", obj.get("trial_id"))
        if isinstance(trial, bool) or not isinstance(trial, int) or trial < 0:
            raise RecordError(f"'trial' must be an integer >= 0, got {trial!r}")
        params = obj.get("params")
        if not isinstance(params, Mapping):
            raise RecordError(f"'params' must be an object, got {params!r}")
        status = obj.get("run_status", "ok")
        if not isinstance(status, str) or not status:
            raise RecordError(f"'run_status' must be a non-empty string, got {status!r}")
        rewards = obj.get("episode_rewards") or []
        return cls(
            trial=trial,
            params=dict(params),
            run_status=status,
            message=str(obj.get("message") or ""),
            objective_name=str(obj.get("objective_name") or "mean_reward"),
            objective=_opt_float(obj.get("objective", obj.get("mean_reward"))),
            mean_reward=_opt_float(obj.get("mean_reward")),
            std_reward=_opt_float(obj.get("std_reward")),
            episode_rewards=[float(r) for r in rewards if _opt_float(r) is not None],
            driving_score=_opt_float(obj.get("driving_score")),
            metrics=dict(obj.get("metrics") or {}),
            used_params=dict(obj.get("used_params") or {}),
            noise=_opt_float(obj.get("noise")),
            reward_hacking=bool(obj.get("reward_hacking", obj.get("reward_hacking_flag", False))),
            model_path=obj.get("model_path"),
            champion=bool(obj.get("champion", obj.get("champion_flag", False))),
            elapsed_sec=_opt_float(obj.get("elapsed_sec")) or 0.0,
            seed=obj.get("seed"),
            log_path=obj.get("log_path"),
            exit_code=obj.get("exit_code"),
            timestamp=str(obj.get("timestamp") or ""),
        )

    def value_of(self, objective: str) -> float | None:
        """The value of ``objective`` for this record (for warm starts with another objective)."""
        if objective == self.objective_name:
            return self.objective
        if objective in ("mean_reward", "driving_score"):
            return getattr(self, objective)
        return _opt_float(self.metrics.get(objective))
