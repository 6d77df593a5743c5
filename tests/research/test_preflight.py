"""Setup errors refused before the first trial, and studies that end non-zero when nothing
works (the fake trainer implements the ``--print-schema`` / ``--check`` contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from donkeyrl.bo import SearchSpace
from donkeyrl.cli import main
from donkeyrl.research import PreflightError
from donkeyrl.research.preflight import check_space_against_schema

from fake_trial import SCHEMA
from research_helpers import LOOP_ONLY, fake_command, records, run_study


def cli(study: Path, space: Path | None, trials: int, *extra: str,
        command: str | None = None) -> list[str]:
    out = ["research", "--study-dir", str(study), "--trials", str(trials), "--cooldown", "0",
           "--kill-grace", "0.5", "--trial-command", command or fake_command(), *LOOP_ONLY, *extra]
    return out + (["--search-space", str(space)] if space else [])


def space_with(tmp_path: Path, spec: dict) -> Path:
    p = tmp_path / "custom-space.json"
    p.write_text(json.dumps(spec))
    return p


@pytest.mark.parametrize("extra,command,match", [
    (["--track", "nosuchtrack"], None, "--track: unknown track 'nosuchtrack'"),
    ([], "/nonexistent/trainer --x", "program '/nonexistent/trainer' does not exist"),
    ([], "no-such-trainer-program-xyz", "'no-such-trainer-program-xyz' is not on PATH"),
    (["--train-arg=--no-such-flag"], None,
     "dry run of one trial's command line failed (exit 2): "),
    (["--objective", "lap_speed"], None, "--objective 'lap_speed' is not in the trainer's result"),
    (["--agent", "sac"], None, "search space parameter 'n_steer' does not apply to agent 'sac'"),
    (["--seed", str(2**32 - 3), "--trials", "5"], None, "must stay below 2**32"),
    (["--warm-start", "/nonexistent/warm.jsonl"], None, "--warm-start file /nonexistent/warm"),
])
def test_setup_errors_are_refused_before_anything_is_created(tmp_path, space_file, capsys,
                                                             extra, command, match):
    study = tmp_path / "s"
    assert main(cli(study, space_file, 5, *extra, command=command)) == 2
    err = capsys.readouterr().err
    assert match in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not study.exists()


@pytest.mark.parametrize("spec,match", [
    ({"n_steer": {"type": "int", "low": -5, "high": 1}},
     "'n_steer': -5 is below the trainer's minimum 2 (the trainer accepts [2, 64])"),
    ({"gamma": {"type": "float", "low": 0.5, "high": 1.5}}, "1.5 is above the trainer's maximum 1.0"),
    ({"flux_capacitor": {"type": "float", "low": 0, "high": 1}},
     "'flux_capacitor' is not a parameter of the trainer"),
    ({"actions": {"type": "categorical", "choices": ["discrete", "teleport"]}},
     "'teleport' is not one of the trainer's choices"),
    ({"n_steer": {"type": "fixed", "value": 2.5}}, "2.5 is not an integer"),
])
def test_search_space_is_checked_against_the_trainer_schema(tmp_path, capsys, spec, match):
    study = tmp_path / "s"
    assert main(cli(study, space_with(tmp_path, spec), 5)) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not study.exists()


def test_schema_check_covers_a_searched_agent():
    space = SearchSpace.from_dict({"agent": {"type": "categorical", "choices": ["ppo", "sac"]},
                                   "n_steps": {"type": "int", "low": 64, "high": 128}})
    with pytest.raises(PreflightError, match="'n_steps' does not apply to agent 'sac'"):
        check_space_against_schema(space, SCHEMA, "ppo")
    space = SearchSpace.from_dict({"agent": {"type": "categorical", "choices": ["ppo", "a3c"]}})
    with pytest.raises(PreflightError, match="agent 'a3c' is not one the trainer knows"):
        check_space_against_schema(space, SCHEMA, "ppo")
    with pytest.raises(PreflightError, match="no 'params' object"):
        check_space_against_schema(space, {"agents": []}, "ppo")


def test_preflight_notes_reach_the_study_log(tmp_path, space_file):
    study = tmp_path / "s"
    run_study(study, space_file, trials=1)
    log = (study / "study.log").read_text()
    assert "search space checked against the trainer's schema (9 parameters)" in log
    assert "dry run of one trial's command line passed (ok: ppo on ['generated_track'])" in log


def test_trainer_without_the_contract_is_checked_for_existence_only(tmp_path, space_file):
    study = tmp_path / "s"
    summary, rep = run_study(study, space_file, trials=1,
                             trial_command=fake_command("--contract", "none"))
    assert summary.completed == 1
    assert not any("dry run" in n for n in rep.notes)


def test_objective_missing_from_the_result_stops_after_one_trial(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    code = main(cli(study, space_file, 10, "--objective", "lap_speed",
                    command=fake_command("--contract", "none")))
    out = capsys.readouterr().out
    assert code == 5
    assert "the trainer's result has no 'lap_speed'" in out and "driving_score" in out
    assert len(records(study)) == 1


def test_repeated_identical_failure_stops_the_study(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    code = main(cli(study, space_file, 10, command=fake_command("--mode", "crash")))
    out = capsys.readouterr().out
    assert code == 5
    assert "systematic failure: the first 3 trials of this run all failed the same way" in out
    assert [r.run_status for r in records(study)] == ["crashed"] * 3


def test_systematic_failure_check_can_be_disabled(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    code = main(cli(study, space_file, 4, "--systematic-failures", "0",
                    command=fake_command("--mode", "crash")))
    assert code == 5  # still no success at all
    assert "no trial succeeded (4 crashed)" in capsys.readouterr().out
    assert len(records(study)) == 4


def test_different_failures_are_not_systematic_but_no_success_is_exit_5(tmp_path, space_file,
                                                                        capsys):
    study = tmp_path / "s"
    code = main(cli(study, space_file, 3,
                    command=fake_command("--plan", "1=crash,2=nan,3=noresult")))
    out = capsys.readouterr().out
    assert code == 5 and "no trial succeeded (1 crashed, 1 nan, 1 no_result)" in out
    assert len(records(study)) == 3


def test_a_study_with_one_success_ends_zero(tmp_path, space_file):
    study = tmp_path / "s"
    assert main(cli(study, space_file, 3, command=fake_command("--plan", "1=crash,2=crash"))) == 0


def test_tensorboard_dir_per_trial_and_the_command_to_view_it(tmp_path, space_file, capsys):
    study, tb = tmp_path / "s", tmp_path / "tb"
    assert main(cli(study, space_file, 2, "--tensorboard", str(tb))) == 0
    out = capsys.readouterr().out
    assert f"tensorboard --logdir {tb}" in out
    for r in records(study):
        assert r.used_params["tensorboard"] == str(tb.resolve())  # the trainer adds trial-N
    assert f"tensorboard --logdir {tb}" in (study / "study.log").read_text()


@pytest.mark.slow
def test_real_trainer_contract(tmp_path):
    """`donkeyrl train` itself: its --print-schema refuses the range, its --check the flag."""
    bad = space_with(tmp_path, {"n_steer": {"type": "int", "low": -5, "high": 1}})
    proc = subprocess.run([sys.executable, "-m", "donkeyrl", "research", "--study-dir",
                           str(tmp_path / "s"), "--search-space", str(bad), "--trials", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "search space parameter 'n_steer': -5 is below the trainer's minimum" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "donkeyrl", "research", "--study-dir",
                           str(tmp_path / "s"), "--trials", "1", "--train-arg=--no-such-flag"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "dry run of one trial's command line failed (exit 2)" in proc.stderr
    assert "--no-such-flag" in proc.stderr
    assert not (tmp_path / "s").exists()
