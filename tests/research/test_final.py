"""The final test at the end of a study (research/final.py), with the fake trainer and a fake
``donkeyrl evaluate`` (tests/research/fake_evaluate.py)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from donkeyrl.cli import main
from donkeyrl.research.final import applicable_args

from research_helpers import fake_command, records

FAKE_EVALUATE = Path(__file__).with_name("fake_evaluate.py")


def cli(study: Path, space: Path, trials: int, *extra: str, evaluate: str = "",
        command: str | None = None) -> list[str]:
    return ["research", "--study-dir", str(study), "--search-space", str(space), "--trials",
            str(trials), "--cooldown", "0", "--kill-grace", "0.5", "--confirm-seeds", "0",
            "--seed", "40", "--trial-command", command or fake_command(),
            "--evaluate-command", f"{sys.executable} {FAKE_EVALUATE} {evaluate}".strip(),
            *extra]


def launch_argv(path: Path) -> list[str]:
    return json.loads((path / "launch.json").read_text())["argv"]


def test_final_test_trains_the_baseline_and_ends_with_the_table(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    code = main(cli(study, space_file, 3, "--no-report", "--train-arg=--gamma",
                    "--train-arg=0.9", "--train-arg=--n-throttle", "--train-arg=2"))
    out = capsys.readouterr().out
    assert code == 0, out
    manifest = json.loads((study / "models/champion/manifest.json").read_text())
    champ = next(r for r in records(study) if r.trial == manifest["trial"])
    # the documented baseline with the champion's budget and seed, the study's applicable args
    argv = launch_argv(study / "final/baseline")
    text = " ".join(argv)
    assert "--agent ppo --track mixed" in text and "--domain-randomization true" in text
    assert f"--timesteps {champ.params['timesteps']}" in text and f"--seed {champ.seed}" in text
    assert "--gamma 0.9" in text and "--n-throttle" not in text  # discrete-only: left out
    assert (study / "final/baseline/model.zip").is_file()
    assert "fake trial 0" in (study / "logs/final-baseline.log").read_text()
    assert "head-to-head written" in (study / "logs/final-test.log").read_text()
    (call,) = json.loads((study / "fake-evaluate.json").read_text())
    assert call == ["--model", str((study / "models/champion").resolve()), "--set", "test",
                    "--baseline", str((study / "final/baseline").resolve()), "--out",
                    str(study.resolve())]
    # the table closes the study's output
    table = (study / "head_to_head.txt").read_text().rstrip()
    assert out.rstrip().endswith(table) and "head-to-head on the test set" in table
    marker = json.loads((study / "final/final.json").read_text())
    sha = hashlib.sha256((study / "models/champion/model.zip").read_bytes()).hexdigest()
    assert marker["champion_sha256"] == sha and marker["champion_trial"] == champ.trial
    assert not list((study / "final/running").iterdir())  # PID files away from the trials'
    assert not (study / "running" / "trial-0.json").exists()
    # resumed with the same champion: not tested again, the table printed again
    assert main(cli(study, space_file, 3, "--no-report")) == 0
    out = capsys.readouterr().out
    assert "was tested on" in out and out.rstrip().endswith(table)
    assert len(json.loads((study / "fake-evaluate.json").read_text())) == 1


def test_a_new_champion_is_tested_again(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    command = fake_command("--rewards", "50,60,70,99")
    assert main(cli(study, space_file, 2, "--no-report", command=command)) == 0
    first = json.loads((study / "final/final.json").read_text())
    assert main(cli(study, space_file, 4, "--no-report", command=command)) == 0
    second = json.loads((study / "final/final.json").read_text())
    assert (first["champion_trial"], second["champion_trial"]) == (2, 4)
    assert first["champion_sha256"] != second["champion_sha256"]
    assert len(json.loads((study / "fake-evaluate.json").read_text())) == 2
    capsys.readouterr()


def test_a_failed_final_test_keeps_every_record_and_exits_7(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    code = main(cli(study, space_file, 2, "--no-report", evaluate="--fail"))
    out = capsys.readouterr().out
    assert code == 7
    line = next(ln for ln in out.splitlines() if ln.startswith("final test failed"))
    assert "simulated evaluation failure" in line and "final-test.log" in line
    assert [r.run_status for r in records(study)] == ["ok", "ok"]
    assert (study / "models/champion/model.zip").is_file()
    assert not (study / "final/final.json").exists() or \
        "champion_sha256" not in json.loads((study / "final/final.json").read_text())
    # the baseline failing to train: exit 7 too, one line naming its log
    other = tmp_path / "o"
    code = main(cli(other, space_file, 1, "--no-report",
                    command=fake_command("--plan", "0=crash")))
    out = capsys.readouterr().out
    assert code == 7
    assert "training the baseline failed (crashed" in out and "final-baseline.log" in out
    # a re-run (the evaluation fixed) retries and succeeds, reusing the trained baseline
    assert main(cli(study, space_file, 2, "--no-report")) == 0
    assert "head-to-head on the test set" in capsys.readouterr().out
    assert (study / "logs/final-baseline.log").read_text().count("fake trial 0") == 1


def test_a_hung_evaluation_is_killed_at_the_trial_timeout(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    code = main(cli(study, space_file, 1, "--no-report", "--trial-timeout", "3",
                    evaluate="--hang"))
    out = capsys.readouterr().out
    assert code == 7 and "killed after the 3 s timeout" in out


def test_no_final_test_and_no_final_test_after_a_failed_study(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    assert main(cli(study, space_file, 1, "--no-report", "--no-final-test")) == 0
    assert not (study / "final").exists() and "final test" not in capsys.readouterr().out
    failed = tmp_path / "f"
    assert main(cli(failed, space_file, 3, "--no-report",
                    command=fake_command("--mode", "crash"))) == 5
    assert not (failed / "final").exists()


def test_the_report_is_written_at_the_very_end(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    assert main(cli(study, space_file, 1, "--no-final-test")) == 0
    out = capsys.readouterr().out
    assert (study / "report.html").is_file()
    assert out.rstrip().splitlines()[-1] == f"report: {study / 'report.html'}"


def test_applicable_args_leave_out_what_the_baseline_sets_or_cannot_take():
    args = ["--n-envs", "2", "--agent", "dqn", "--track", "a", "b", "--buffer-size", "500",
            "--max-steps=400", "--n-steer", "5", "--sim", "embedded", "--init-model", "m",
            "--domain-randomization", "false"]
    assert applicable_args(args) == ["--n-envs", "2", "--max-steps=400", "--sim", "embedded"]


def test_the_final_test_is_published(tmp_path, space_file, capsys):
    import subprocess

    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    study = tmp_path / "s"
    assert main(cli(study, space_file, 1, "--no-report", "--git-remote", str(remote))) == 0
    capsys.readouterr()

    def git(*args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(remote), *args], check=True,
                              capture_output=True, text=True).stdout

    assert git("log", "-1", "--format=%s", "main").startswith("s: final test, champion trial 1")
    files = set(git("ls-tree", "-r", "--name-only", "main").split())
    assert {"head_to_head.json", "head_to_head.txt", "final/final.json",
            "final/baseline/result.json", "logs/final-test.log"} <= files
