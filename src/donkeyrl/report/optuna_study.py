"""A donkeyrl study as an Optuna study: for parameter importance and for Optuna's own tools.

Why Optuna: its fANOVA importance evaluator, its visualisations and optuna-dashboard are what
this field's users already read. Converting the records once, here, serves both the report
(an in-memory study, :func:`param_importances`) and ``donkeyrl export optuna`` (a journal file,
:mod:`donkeyrl.report.optuna_export`), so the two can never disagree.

Mapping (one Optuna trial per record, in journal order):

- distributions: from the study's search space (``study.json``): ``float`` ->
  ``FloatDistribution``, ``int`` -> ``IntDistribution`` (``log`` kept), ``categorical`` ->
  ``CategoricalDistribution``; ``fixed`` parameters are not searched and are stored as the
  study's user attribute ``fixed_params`` instead. A recorded value outside its distribution
  (the space was changed mid-study) is left out of that trial and named in its user
  attribute ``params_left_out``.
- state: ``ok`` with a finite objective and no reward-hacking flag -> COMPLETE with the
  objective as its value; ``pruned`` -> PRUNED; everything else (timeout, crashed, interrupted,
  reward hacking, ...) -> FAIL. The record's ``run_status`` and ``message`` are kept as user
  attributes, so the reason survives.
- times: ``datetime_complete`` is the record's timestamp, ``datetime_start`` that minus its
  ``elapsed_sec``.
- intermediate values: the trial's learning curve (``curve.jsonl``): mean episode reward by
  training step, as Optuna's intermediate-value plots expect.
- user attributes: ``trial`` (the donkeyrl trial number; Optuna numbers from 0),
  ``proposal`` (random / gp / confirmation / unknown), ``driving_score``, ``mean_reward``, ``model_path``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from donkeyrl.bo.space import Param
from donkeyrl.report.study import StudyData, TrialView

__all__ = ["Importance", "distribution_of", "frozen_trials", "optuna_study", "param_importances",
           "quiet_optuna", "searched_distributions"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's INFO lines ("A new study created ...") and experimental warnings silenced."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def distribution_of(param: Param) -> Any:
    """The Optuna distribution of a searched parameter (None for a fixed one)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if param.kind == "float":
        return FloatDistribution(float(param.low), float(param.high), log=param.log)  # type: ignore[arg-type]
    if param.kind == "int":
        return IntDistribution(int(param.low), int(param.high), log=param.log)  # type: ignore[arg-type]
    if param.kind == "categorical":
        odd = [c for c in param.choices if c is not None and not isinstance(c, (bool, int, float, str))]
        if odd:  # Optuna only warns, then its storages cannot round-trip them
            raise ValueError(f"choices {odd} of {param.name} are not None, bool, int, float or str")
        return CategoricalDistribution(list(param.choices))
    return None


def searched_distributions(data: StudyData) -> dict[str, Any]:
    """Optuna distributions of the study's searched parameters; a categorical parameter whose
    choices Optuna cannot hold (lists, objects: Optuna takes None, bool, int, float and str) is
    left out of the export (named in the study attribute ``params_not_exported``)."""
    out: dict[str, Any] = {}
    for p in data.space.params if data.space is not None else ():
        if p.kind == "fixed":
            continue
        try:
            out[p.name] = distribution_of(p)
        except (ValueError, TypeError) as exc:
            log.warning("parameter %s left out of the Optuna study: %s", p.name, exc)
    return out


def _state_of(view: TrialView) -> tuple[Any, float | None]:
    from optuna.trial import TrialState

    rec = view.record
    if rec.usable:
        return TrialState.COMPLETE, float(rec.objective)  # type: ignore[arg-type]
    if rec.run_status == "pruned":
        return TrialState.PRUNED, None
    return TrialState.FAIL, None


def _time(text: str, elapsed: float) -> tuple[_dt.datetime, _dt.datetime]:
    try:
        end = _dt.datetime.fromisoformat(text)
    except ValueError:
        end = _dt.datetime.fromtimestamp(0)
    return end - _dt.timedelta(seconds=max(elapsed, 0.0)), end


def frozen_trials(data: StudyData) -> list[Any]:
    """One ``optuna.trial.FrozenTrial`` per record (see the module docstring)."""
    from optuna.trial import FrozenTrial

    dists = searched_distributions(data)
    out: list[Any] = []
    for view in data.trials:
        rec = view.record
        params: dict[str, Any] = {}
        left_out = []
        for name, dist in dists.items():
            if name not in rec.params:
                continue
            value = rec.params[name]
            try:
                ok = dist._contains(dist.to_internal_repr(value))
            except (ValueError, TypeError):
                ok = False
            if ok:
                params[name] = value
            else:
                left_out.append(f"{name}={value!r}")
        state, value = _state_of(view)
        start, end = _time(rec.timestamp, rec.elapsed_sec)
        attrs: dict[str, Any] = {
            "trial": rec.trial, "run_status": rec.run_status, "proposal": view.source,
            "objective_name": rec.objective_name, "driving_score": _finite(rec.driving_score),
            "mean_reward": _finite(rec.mean_reward), "model_path": rec.model_path,
            "reward_hacking": rec.reward_hacking,
        }
        if rec.message:
            attrs["message"] = rec.message[:2000]
        if left_out:
            attrs["params_left_out"] = left_out
        inter = {int(p["steps"]): float(p["mean_reward"]) for p in view.curve or []
                 if p.get("mean_reward") is not None}
        out.append(FrozenTrial(
            number=len(out), state=state, value=value, datetime_start=start, datetime_complete=end,
            params=params, distributions={k: dists[k] for k in params}, user_attrs=attrs,
            system_attrs={}, intermediate_values=inter, trial_id=len(out)))
    return out


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def optuna_study(data: StudyData, storage: Any = None, study_name: str | None = None) -> Any:
    """An Optuna study (maximising the objective) holding every record of ``data``.

    ``storage`` None keeps it in memory; a ``JournalStorage`` writes it to a journal file.
    """
    import optuna

    with quiet_optuna():
        study = optuna.create_study(storage=storage, study_name=study_name or data.name,
                                    direction="maximize")
        study.set_user_attr("objective", data.objective)
        study.set_user_attr("source", "donkeyrl research")
        study.set_user_attr("study_dir", str(data.root.resolve()))
        if data.space is not None:
            study.set_user_attr("fixed_params", {p.name: p.value for p in data.space.params
                                                 if p.kind == "fixed"})
            exported = searched_distributions(data)
            missing = [p.name for p in data.space.free if p.name not in exported]
            if missing:
                study.set_user_attr("params_not_exported", missing)
        if data.info.get("agent"):
            study.set_user_attr("agent", data.info["agent"])
        study.add_trials(frozen_trials(data))
    return study


@dataclass(frozen=True)
class Importance:
    """Parameter importances (fractions that sum to 1), most important first."""

    values: dict[str, float]
    method: str
    """How they were computed (evaluator and number of trials)."""


def param_importances(data: StudyData, *, seed: int = 0) -> Importance | None:
    """fANOVA importances of the searched parameters over the completed trials, or None.

    None when fewer than two trials completed or no parameter was searched (fANOVA needs
    variation to attribute). Optuna's evaluator fits a random forest (scikit-learn) to the
    completed trials and decomposes its variance by parameter (Hutter et al., 2014).
    """
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

    if data.space is None or data.space.dim == 0:
        return None
    study = optuna_study(data)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return None
    with quiet_optuna():
        try:
            values = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))
        except (ValueError, RuntimeError) as exc:  # e.g. no parameter common to all trials
            log.warning("parameter importance unavailable: %s", exc)
            return None
    if not values:
        return None
    return Importance({k: float(v) for k, v in values.items()},
                      f"fANOVA (Optuna FanovaImportanceEvaluator, {len(complete)} completed trials)")
