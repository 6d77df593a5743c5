"""``donkeyrl export optuna``: the journal file opens in Optuna unchanged (storage, plots, importance)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from donkeyrl.cli import main

SPACE = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
         "n_steps": {"type": "categorical", "choices": [64, 128, 256]},
         "n_steer": {"type": "int", "low": 3, "high": 9}}


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A study journal as `donkeyrl research` writes it: 12 trials, two failed, one pruned."""
    root = tmp_path / "night-1"
    root.mkdir()
    (root / "study.json").write_text(json.dumps({"agent": "ppo", "objective": "driving_score", "space": SPACE}))
    lines = []
    for i in range(1, 13):
        lr = 10 ** (-5 + 3 * i / 12)
        status = {4: "timeout", 8: "crashed", 11: "pruned"}.get(i, "ok")
        value = 30 + 10 * math.log10(lr * 1e5) if status == "ok" else None  # 30..60: only the rate matters
        params = {"learning_rate": lr, "n_steps": [64, 128, 256][i % 3], "n_steer": 3 + i % 7}
        lines.append(json.dumps({"trial": i, "timestamp": f"2026-01-01T01:{i:02d}:00", "run_status": status,
                                 "params": params,
                                 "objective_name": "driving_score", "objective": value, "elapsed_sec": 40.0,
                                 "message": "killed after 300 s" if status == "timeout" else ""}))
    (root / "results.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _load(path: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(path))))


def test_export_opens_in_optuna_with_plots_and_importance(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "optuna", str(study)]) == 0
    out = capsys.readouterr().out
    path = study / "optuna-journal.log"
    assert f"wrote {path}" in out and "12 trials" in out and "optuna-dashboard" in out
    loaded = _load(path, "night-1")
    states = [t.state for t in loaded.trials]
    assert states.count(TrialState.COMPLETE) == 9 and states.count(TrialState.FAIL) == 2
    assert states.count(TrialState.PRUNED) == 1
    assert loaded.direction == optuna.study.StudyDirection.MAXIMIZE
    records = [json.loads(line) for line in (study / "results.jsonl").read_text().splitlines()]
    best = max((r for r in records if r["run_status"] == "ok"), key=lambda r: r["objective"])
    assert loaded.best_trial.user_attrs["trial"] == best["trial"] and loaded.best_value == best["objective"]
    failed = [t for t in loaded.trials if t.user_attrs["run_status"] == "timeout"]
    assert failed[0].user_attrs["message"] == "killed after 300 s"
    importances = optuna.importance.get_param_importances(loaded)
    assert set(importances) == {"learning_rate", "n_steps", "n_steer"}
    assert max(importances, key=importances.get) == "learning_rate"
    ax = optuna.visualization.matplotlib.plot_optimization_history(loaded)
    assert len(ax.collections) >= 1  # the trials were plotted
    ax.figure.clf()
    # a lock file or a temporary file is never left behind
    assert sorted(p.name for p in study.iterdir()) == ["optuna-journal.log", "results.jsonl", "study.json"]


def test_re_export_replaces_the_file(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "j.log"
    assert main(["export", "optuna", str(study), "--out", str(out)]) == 0
    with open(study / "results.jsonl", "a") as fh:
        fh.write(json.dumps({"trial": 13, "params": {"learning_rate": 1e-3, "n_steps": 64, "n_steer": 5},
                             "run_status": "ok", "objective": 61.0, "objective_name": "driving_score"}) + "\n")
    assert main(["export", "optuna", str(study), "--out", str(out)]) == 0
    assert len(_load(out, "night-1").trials) == 13  # not 25: the old export was replaced whole


@pytest.mark.parametrize("args, pattern", [
    (["export", "optuna", "/nonexistent_study_xyz"], "does not exist"),
    (["export", "optuna", "{tmp}"], "has no results.jsonl"),
    (["export", "optuna", "{study}", "--out", "{tmp}"], "is a directory"),
    (["export", "optuna", "{study}", "--out", "/nonexistent_dir_xyz/j.log"], "does not exist"),
])
def test_bad_input_is_one_line(args: list[str], pattern: str, study: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.format(tmp=tmp_path / "empty", study=study) for a in args]
    (tmp_path / "empty").mkdir()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("donkeyrl export: error:") and pattern in err and "Traceback" not in err
    assert err.count("\n") == 1
