"""The records as an Optuna study: distributions, states, attributes, fANOVA importance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from report_fixtures import SPACE
from donkeyrl.report.optuna_study import optuna_study, param_importances
from donkeyrl.report.study import load_study


def test_every_record_becomes_a_trial_with_its_distributions_and_state(study: Path) -> None:
    data = load_study(study)
    ostudy = optuna_study(data)
    trials = ostudy.get_trials()
    assert [t.user_attrs["trial"] for t in trials] == [r.trial for r in data.records]
    by_status = {t.user_attrs["run_status"]: t for t in trials}
    assert by_status["timeout"].state == TrialState.FAIL and by_status["timeout"].value is None
    assert "300 s" in by_status["timeout"].user_attrs["message"]
    assert by_status["interrupted"].state == TrialState.FAIL
    hacked = [t for t in trials if t.user_attrs["reward_hacking"]]
    assert len(hacked) == 1 and hacked[0].state == TrialState.FAIL  # never a usable result
    ok = [t for t in trials if t.state == TrialState.COMPLETE]
    assert [t.value for t in ok] == [r.objective for r in data.records if r.usable]
    d = ok[0].distributions
    assert d["learning_rate"] == FloatDistribution(1e-5, 1e-2, log=True)
    assert d["n_steer"] == IntDistribution(3, 9)
    assert d["batch_size"] == CategoricalDistribution([32, 64, 128])
    assert "actions" not in ok[0].params  # fixed: a study attribute, not a searched parameter
    assert ostudy.user_attrs["fixed_params"] == {"actions": "discrete"}
    assert ostudy.best_trial.user_attrs["trial"] == data.champion.trial
    # the learning curve becomes the intermediate values, by training step
    curve = next(t for t in data.trials if t.trial == ok[0].user_attrs["trial"]).curve
    assert ok[0].intermediate_values == {int(p["steps"]): p["mean_reward"] for p in curve
                                         if p["mean_reward"] is not None}
    assert ok[0].datetime_complete > ok[0].datetime_start
    assert [t.user_attrs["proposal"] for t in trials[:4]] == ["random", "random", "random", "gp"]


def test_fanova_finds_the_parameter_that_matters(study: Path) -> None:
    imp = param_importances(load_study(study))
    assert imp is not None and set(imp.values) == {"learning_rate", "n_steer", "batch_size"}
    # only the learning rate drives the objective; with 10 trials the forest still credits the
    # others with some noise, but far less
    first, second = list(imp.values)[:2]
    assert first == "learning_rate" and imp.values[first] > 1.5 * imp.values[second], imp.values
    assert sum(imp.values.values()) == pytest.approx(1.0)
    assert "fANOVA" in imp.method


def test_a_value_outside_the_space_is_left_out_and_named(tmp_path: Path, study: Path) -> None:
    copy = tmp_path / "s"
    shutil.copytree(study, copy)
    narrower = dict(SPACE, n_steer={"type": "int", "low": 3, "high": 4})
    info = json.loads((copy / "study.json").read_text())
    (copy / "study.json").write_text(json.dumps(dict(info, space=narrower)))
    trials = optuna_study(load_study(copy)).get_trials()
    out = [t for t in trials if "params_left_out" in t.user_attrs]
    assert out and all(t.user_attrs["params_left_out"][0].startswith("n_steer=") for t in out)
    assert all("n_steer" not in t.params for t in out)


def test_importance_needs_two_completed_trials(tmp_path: Path) -> None:
    verbosity = optuna.logging.get_verbosity()
    (tmp_path / "study.json").write_text(json.dumps({"objective": "driving_score", "space": SPACE}))
    (tmp_path / "results.jsonl").write_text(json.dumps({
        "trial": 1, "params": {"learning_rate": 1e-3, "n_steer": 5, "batch_size": 64, "actions": "discrete"},
        "run_status": "ok", "objective": 5.0, "objective_name": "driving_score"}) + "\n")
    assert param_importances(load_study(tmp_path)) is None
    assert len(optuna_study(load_study(tmp_path)).trials) == 1
    assert optuna.logging.get_verbosity() == verbosity  # the quiet spell is undone


def test_choices_optuna_cannot_hold_are_left_out_not_fatal(tmp_path: Path) -> None:
    space = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
             "tracks": {"type": "categorical", "choices": [["warehouse"], ["mixed", "warren"]]}}
    (tmp_path / "study.json").write_text(json.dumps({"objective": "driving_score", "space": space}))
    lines = [json.dumps({"trial": i, "params": {"learning_rate": 10 ** -(2 + i), "tracks": ["warehouse"]},
                         "run_status": "ok", "objective": 10.0 * i, "objective_name": "driving_score"})
             for i in (1, 2, 3)]
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    ostudy = optuna_study(load_study(tmp_path))
    assert ostudy.user_attrs["params_not_exported"] == ["tracks"]
    assert all(set(t.params) == {"learning_rate"} for t in ostudy.trials)
    assert set(param_importances(load_study(tmp_path)).values) == {"learning_rate"}
