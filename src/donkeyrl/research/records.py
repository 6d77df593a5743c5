"""The trial record: one JSON line of ``results.jsonl`` per finished (or interrupted) trial.

Schema (every key is always present; values may be null):

- ``trial`` (int >= 1): trial number, unique in a study, assigned at launch.
- ``timestamp`` (str): ISO-8601 local time the record was written.
- ``params`` (dict): the hyperparameters proposed for the trial, plus every hyperparameter the
  trainer reported it actually used (``params`` of the result file) under ``used_params``.
- ``run_status`` (str): ``ok`` or a failure kind, see ``STATUSES``. A ``pruned`` trial (early
  stopping, research/pruning.py) carries its last checkpoint score as ``objective`` and, in
  ``metrics``, ``pruned_steps``, ``pruned_fraction``, ``pruned_cut`` and ``checkpoints`` (its
  progress-file lines); its ``model_path`` is the model saved at that checkpoint. It is never
  usable (never champion) and the optimizer is told it as a failure.
- ``message`` (str): why a trial failed (or a note for an ok one); empty when nothing to say.
- ``objective_name`` (str) / ``objective`` (float | null): the value the optimizer maximises
  (``race_score`` by default). Under ``--objective pareto`` the name is ``pareto`` and
  ``objective`` holds the trial's race score, which only ranks the front's members for the
  champion directory (the optimizer minimises ``objectives``).
- ``mean_reward``, ``std_reward`` (float | null), ``episode_rewards`` (list of float).
- ``driving_score`` (float | null) and ``metrics`` (dict): the trainer's driving metrics
  (completion, laps, lap_times, mean_abs_cte, ...), copied verbatim.
- ``noise`` (float | null): standard error of ``objective``, given to the GP.
- ``reward_hacking`` (bool): the trainer flagged the trial as suspicious; such trials are kept
  out of the surrogate model and can never be champion.
- ``model_path`` (str | null): the trial's model, relative to the study dir when inside it.
- ``champion`` (bool): a new champion was crowned when this record was written (see ``crowned``
  and champion.py).
- ``elapsed_sec`` (float): wall time of the trial process.
- ``seed`` (int), ``log_path`` (str): seed given to the trainer, the trial's log file.
- ``exit_code`` (int | null): the trial process's exit code (negative: killed by a signal).
- ``rerun_of`` (int | null): for a re-run of an interrupted trial (``--rerun-interrupted``), the
  number of the trial first run with these params and seed; null otherwise.
- ``confirms`` (int | null): for a *confirmation run* (``--confirm-seeds``), the number of the
  trial whose configuration it re-trains on a fresh seed (same params, its own trial number and
  seed ``--seed`` + its number); null for every other trial.
- ``crowned`` (int | null): when a new champion was crowned as this record was written, the
  trial whose model was installed in ``models/champion`` (with confirmation: the best run of the
  confirmed configuration, often an earlier record; under ``--objective pareto`` the front member
  with the highest race score); null otherwise. See champion.py for the rule.
- ``objectives`` (dict): under ``--objective pareto`` the two minimised values read from the
  result file (``validation_lap_time_ratio_penalised``, ``validation_mean_abs_cte``); empty
  otherwise.
- ``pareto_front`` (list of int | null): under ``--objective pareto`` the trial numbers on the
  Pareto front of the study after this record (usable records only); null otherwise.

``champion`` is true exactly when ``crowned`` is set. Records written before ``crowned`` existed
(single-run champions) carry only ``champion``, which then means that the record's own trial was
crowned.

Reading is strict about types (``from_json``): a line whose fields have the wrong JSON type
(``"metrics": [1, 2]``, ``"episode_rewards": 5``, ``"model_path": 123``), that nests deeper than
``files.MAX_JSON_DEPTH`` or holds a number no float can represent is not a record; the journal
reports and skips it.

Plausibility: an objective outside ``OBJECTIVE_RANGES`` (``driving_score`` is 0..100 by its
definition in ``donkeyrl.rl.metrics``; ``race_score`` is 0..1000: at most 40 for a track not
lapped and 110 at the expert's pace, so 1000 is a lap about 18 times faster than the expert's)
or beyond ``MAX_ABS_OBJECTIVE`` for any other objective is not *usable*: it never feeds the
surrogate model and never becomes champion. A value of 1e308 is a broken trainer, not a great
agent. Under ``--objective pareto`` both ``objectives`` must lie in their ranges too.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

from .files import MAX_JSON_DEPTH, json_depth

__all__ = ["TrialRecord", "STATUSES", "FAILED", "NOT_RUN", "now_iso", "RecordError", "OBJECTIVE_RANGES",
           "MAX_ABS_OBJECTIVE", "implausible", "PARETO", "PARETO_OBJECTIVES", "PARETO_RANK"]

STATUSES = {
    "ok": "trial trained and evaluated; objective is usable",
    "timeout": "killed after --trial-timeout seconds",
    "crashed": "the trial process exited non-zero (or was killed by a signal)",
    "no_result": "the trial process exited 0 without writing its result file",
    "bad_result": "the result file is not valid JSON, misses fields or names a missing model",
    "nan": "the objective is NaN or infinite",
    "interrupted": "the controller stopped (Ctrl-C, SIGTERM, crash) while the trial ran",
    "pruned": "stopped early: its checkpoint score fell below its rung's cut (--prune); "
              "objective = that partial-budget score, model = the checkpoint's",
    "lost": "the machine running the trial died (a Ray worker node, or its actor vanished)",
    "error": "the trainer reported an error",
    "diverged": "the trainer reported that training diverged",
    "sim_disconnected": "the trainer lost the simulator",
}
"""Known ``run_status`` values; a trainer may report other failure kinds, kept verbatim."""

NOT_RUN = frozenset({"interrupted", "lost"})
"""Statuses of trials that did not run to a verdict for reasons outside their params: not
counted towards ``--trials``, told nothing to the optimizer, re-run by ``--rerun-interrupted``."""

FAILED = frozenset(STATUSES) - {"ok"} - NOT_RUN
"""Statuses that tell the optimizer "this point failed" (``interrupted`` and ``lost`` tell it
nothing; ``pruned`` is told as a failure, see study.tell_records)."""


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


PARETO = "pareto"
"""``--objective`` of a two-objective study (see ``PARETO_OBJECTIVES``)."""

PARETO_OBJECTIVES = ("validation_lap_time_ratio_penalised", "validation_mean_abs_cte")
"""The two result-file fields a Pareto study minimises: the validation set's lap time relative
to the expert's (3.0 for a track not lapped, see ``donkeyrl.rl.race``) and its mean |cte|."""

PARETO_RANK = "race_score"
"""The result-file field a Pareto record carries as ``objective``: it picks the champion among
the front's members."""

OBJECTIVE_RANGES: dict[str, tuple[float, float]] = {
    "driving_score": (0.0, 100.0),
    "race_score": (0.0, 1000.0),
    PARETO: (0.0, 1000.0),  # a Pareto record's objective is its race score
    # lap time / expert's (3 for a track not lapped, rl/race.py UNLAPPED_RATIO): a lap 100 times
    # faster or slower than the expert's is a broken trainer; |cte| in simulator units
    "validation_lap_time_ratio_penalised": (0.01, 100.0),
    "validation_mean_abs_cte": (0.0, 100.0),
}
"""Plausible [low, high] of objectives whose range is known by definition."""

MAX_ABS_OBJECTIVE = 1e12
"""Largest plausible |objective| of any other objective (rewards are sums over bounded steps)."""


def implausible(name: str, value: float) -> str:
    """Why ``value`` cannot be a real ``name`` objective, or "" when it is plausible."""
    low, high = OBJECTIVE_RANGES.get(name, (-MAX_ABS_OBJECTIVE, MAX_ABS_OBJECTIVE))
    if not low <= value <= high:
        return f"{name}={value!r} is outside its plausible range [{low:g}, {high:g}]"
    return ""


def _opt_float(value: Any) -> float | None:
    """A float (NaN/inf kept) for a JSON number, None for anything else or a number too large
    for a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _number(obj: Mapping[str, Any], key: str, *alias: str) -> float | None:
    """Optional numeric field (JSON number or null); RecordError for any other type."""
    for k in (key, *alias):
        if k in obj:
            value = obj[k]
            break
    else:
        return None
    if value is None:
        return None
    out = _opt_float(value)
    if out is None:
        raise RecordError(f"{key!r} must be a number or null, got {_short(value)}")
    return out


def _typed(obj: Mapping[str, Any], key: str, types: tuple[type, ...], what: str,
           default: Any = None, *alias: str) -> Any:
    """Optional field of JSON type ``types`` (or null -> default); RecordError otherwise."""
    for k in (key, *alias):
        if k in obj:
            value = obj[k]
            break
    else:
        return default
    if value is None:
        return default
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise RecordError(f"{key!r} must be {what} or null, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
    rerun_of: int | None = None
    confirms: int | None = None
    crowned: int | None = None
    objectives: dict[str, float] = field(default_factory=dict)
    pareto_front: list[int] | None = None
    timestamp: str = field(default_factory=now_iso)

    @property
    def usable(self) -> bool:
        """True when the objective may feed the surrogate model and the champion fold."""
        if not (self.run_status == "ok" and self.objective is not None
                and math.isfinite(self.objective) and not self.reward_hacking
                and not implausible(self.objective_name, self.objective)):
            return False
        if self.objective_name == PARETO:
            return all(isinstance(self.objectives.get(k), float) and math.isfinite(self.objectives[k])
                       and not implausible(k, self.objectives[k]) for k in PARETO_OBJECTIVES)
        return True

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
        if json_depth(obj) > MAX_JSON_DEPTH:
            raise RecordError(f"nested deeper than {MAX_JSON_DEPTH} levels")
        trial = obj.get("trial", obj.get("trial_id"))
        if isinstance(trial, bool) or not isinstance(trial, int) or trial < 0:
            raise RecordError(f"'trial' must be an integer >= 0, got {_short(trial)}")
        params = obj.get("params")
        if not isinstance(params, Mapping):
            raise RecordError(f"'params' must be an object, got {_short(params)}")
        status = obj.get("run_status", "ok")
        if not isinstance(status, str) or not status:
            raise RecordError(f"'run_status' must be a non-empty string, got {_short(status)}")
        rewards = _typed(obj, "episode_rewards", (list,), "a list of numbers", [])
        if any(r is not None and _opt_float(r) is None for r in rewards):
            raise RecordError(f"'episode_rewards' must hold numbers, got {_short(rewards)}")
        elapsed = _number(obj, "elapsed_sec")
        return cls(
            trial=trial,
            params=dict(params),
            run_status=status,
            message=_typed(obj, "message", (str,), "a string", ""),
            objective_name=_typed(obj, "objective_name", (str,), "a string", "") or "mean_reward",
            objective=_number(obj, "objective", "mean_reward"),
            mean_reward=_number(obj, "mean_reward"),
            std_reward=_number(obj, "std_reward"),
            episode_rewards=[float(r) for r in rewards if r is not None],
            driving_score=_number(obj, "driving_score"),
            metrics=dict(_typed(obj, "metrics", (dict,), "an object", {})),
            used_params=dict(_typed(obj, "used_params", (dict,), "an object", {})),
            noise=_number(obj, "noise"),
            reward_hacking=_typed(obj, "reward_hacking", (bool,), "true or false", False,
                                  "reward_hacking_flag"),
            model_path=_typed(obj, "model_path", (str,), "a string"),
            champion=_typed(obj, "champion", (bool,), "true or false", False, "champion_flag"),
            elapsed_sec=elapsed if elapsed is not None and math.isfinite(elapsed) else 0.0,
            seed=_typed(obj, "seed", (int,), "an integer"),
            log_path=_typed(obj, "log_path", (str,), "a string"),
            exit_code=_typed(obj, "exit_code", (int,), "an integer"),
            rerun_of=_typed(obj, "rerun_of", (int,), "an integer"),
            confirms=_typed(obj, "confirms", (int,), "an integer"),
            crowned=_typed(obj, "crowned", (int,), "an integer"),
            objectives=_objectives(obj),
            pareto_front=_int_list(obj, "pareto_front"),
            timestamp=_typed(obj, "timestamp", (str,), "a string", ""),
        )

    def value_of(self, objective: str) -> float | None:
        """The value of ``objective`` for this record (for warm starts with another objective)."""
        if objective == self.objective_name:
            return self.objective
        if objective in self.objectives:
            return self.objectives[objective]
        if objective in ("mean_reward", "driving_score"):
            return getattr(self, objective)
        if objective == PARETO_RANK and self.objective_name == PARETO:
            return self.objective
        return _opt_float(self.metrics.get(objective))

    @property
    def crowned_trial(self) -> int | None:
        """The trial crowned when this record was written (``crowned``; for records older than
        that field, the record's own trial when ``champion`` is set)."""
        if self.crowned is not None:
            return self.crowned
        return self.trial if self.champion else None


def _objectives(obj: Mapping[str, Any]) -> dict[str, float]:
    """The ``objectives`` object: names to numbers (null values dropped)."""
    raw = _typed(obj, "objectives", (dict,), "an object", {})
    out = {}
    for k, v in raw.items():
        if v is None:
            continue
        num = _opt_float(v)
        if num is None:
            raise RecordError(f"'objectives' must map names to numbers, got {_short(raw)}")
        out[str(k)] = num
    return out


def _int_list(obj: Mapping[str, Any], key: str) -> list[int] | None:
    raw = _typed(obj, key, (list,), "a list of integers")
    if raw is None:
        return None
    if any(isinstance(v, bool) or not isinstance(v, int) for v in raw):
        raise RecordError(f"{key!r} must hold integers, got {_short(raw)}")
    return list(raw)
