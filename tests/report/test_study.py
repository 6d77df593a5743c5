"""Reading a study directory for the report: records, proposal sources, curves, bad directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from report_fixtures import N_RANDOM
from donkeyrl.report.study import StudyReadError, load_study, proposal_sources, read_curve


def test_load_study_reads_records_space_sources_and_curves(study: Path) -> None:
    data = load_study(study)
    assert [t.trial for t in data.trials] == list(range(1, 15))
    assert data.objective == "driving_score"
    assert data.space is not None and [p.name for p in data.space.free] == ["learning_rate", "n_steer", "batch_size"]
    assert data.champion is not None and data.champion.trial == max(
        (r for r in data.records if r.usable), key=lambda r: r.objective).trial
    sources = {t.trial: t.source for t in data.trials}
    assert all(sources[n] == "random" for n in range(1, N_RANDOM + 1))
    assert all(sources[n] == "gp" for n in range(N_RANDOM + 1, 15))
    curves = {t.trial: t.curve for t in data.trials}
    assert curves[2] is None  # no curve.jsonl
    assert curves[1] and all(p["steps"] > 0 for p in curves[1])
    assert curves[3] == curves[1]  # the torn line is skipped
    statuses = [t.record.run_status for t in data.trials]
    assert statuses.count("timeout") == 1 and statuses.count("crashed") == 1
    assert data.head_to_head is not None and data.head_to_head["set"] == "test"


def test_sources_without_a_study_log_are_unknown(tmp_path: Path) -> None:
    assert proposal_sources(tmp_path / "study.log", [1, 2]) == {1: "unknown", 2: "unknown"}
    log = tmp_path / "study.log"
    log.write_text("x proposal for trial 3: top candidates {}\nx proposal for trial 5: top candidates {}\n")
    # trial 4 shares a parallel batch with 3 (no line of its own): unknown, not guessed
    assert proposal_sources(log, [1, 2, 3, 4, 5]) == {1: "random", 2: "random", 3: "gp", 4: "unknown", 5: "gp"}


def test_a_confirmation_run_is_labelled_as_one(study: Path, tmp_path: Path) -> None:
    """A record naming the trial it confirms is shown as a confirmation run, whatever the log says."""
    import shutil

    study = Path(shutil.copytree(study, tmp_path / "study"))  # the fixture is shared: change a copy
    journal = study / "results.jsonl"
    lines = journal.read_text().splitlines()
    rec = json.loads(lines[-1])
    rec.update(trial=15, seed=rec["seed"] + 1, confirms=rec["trial"])
    journal.write_text("\n".join([*lines, json.dumps(rec)]) + "\n")
    sources = {t.trial: t.source for t in load_study(study).trials}
    assert sources[15] == "confirmation" and sources[14] == "gp"


def test_read_curve_sorts_and_cleans(tmp_path: Path) -> None:
    path = tmp_path / "curve.jsonl"
    assert read_curve(path) is None
    path.write_text("\n".join([json.dumps({"steps": 200, "mean_reward": None, "laps_total": 1}),
                               json.dumps({"steps": 100, "mean_reward": 1.5, "episodes": 3}),
                               "[1, 2]", json.dumps({"steps": "many"}), "not json"]))
    curve = read_curve(path)
    assert curve is not None and [p["steps"] for p in curve] == [100, 200]
    assert curve[0]["mean_reward"] == 1.5 and curve[1]["mean_reward"] is None and curve[1]["laps_total"] == 1


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "has no results.jsonl"),
])
def test_not_a_study_is_one_clear_error(tmp_path: Path, make, pattern: str) -> None:
    with pytest.raises(StudyReadError, match=pattern):
        load_study(make(tmp_path))


def test_damaged_files_become_notes_not_errors(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text('{"trial": 1, "params": {}, "run_status": "ok"}\n{"trial": 2, "par')
    (tmp_path / "study.json").write_text("{not json")
    (tmp_path / "head_to_head.json").write_text("[")
    data = load_study(tmp_path)
    assert [t.trial for t in data.trials] == [1]
    assert [p.kind for p in data.problems] == ["torn"]
    assert data.space is None and data.head_to_head is None
    assert any("study.json" in n for n in data.notes) and any("head_to_head.json" in n for n in data.notes)


def test_a_confirmed_champion_is_the_one_the_study_crowned(tmp_path: Path) -> None:
    """With confirmation runs the champion is folded with the study's own rule: configuration A's
    lucky first run (70) loses to configuration B's steadier mean, and the record that crowned
    is a confirmation run, not the crowned trial."""
    from donkeyrl.research.journal import Journal
    from donkeyrl.research.records import TrialRecord

    (tmp_path / "study.json").write_text(json.dumps({"agent": "ppo", "objective": "race_score",
                                                     "confirm_seeds": 2, "n_initial": 0}))
    a, b = {"learning_rate": 1e-3}, {"learning_rate": 3e-4}
    rows = [(1, a, 70.0, None), (2, a, 20.0, 1), (3, a, 20.0, 1), (4, b, 50.0, None), (5, b, 55.0, 4),
            (6, b, 45.0, 4)]
    journal = Journal(tmp_path / "results.jsonl")
    for trial, params, value, confirms in rows:
        rec = TrialRecord(trial, params, "ok", objective_name="race_score", objective=value,
                          model_path=f"models/trial-{trial}/model.zip", confirms=confirms)
        rec.crowned = {3: 1, 6: 5}.get(trial)
        rec.champion = rec.crowned is not None
        journal.append(rec)
    data = load_study(tmp_path)
    assert data.champion is not None and data.champion.trial == 5
    assert [(rec.trial, c.trial) for rec, c in data.crownings()] == [(3, 1), (6, 5)]
    assert data.crowned_trials() == {1, 5}
