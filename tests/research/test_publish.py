"""Publishing results to git: a local bare repository, a failing remote, retries."""

from __future__ import annotations

import subprocess
from pathlib import Path

from donkeyrl.research import PublishConfig, Publisher

from research_helpers import fake_command, records, run_study


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def bare(path: Path) -> Path:
    git("init", "-q", "--bare", str(path))
    return path


def test_push_to_local_bare_repo(tmp_path, space_file):
    remote = bare(tmp_path / "remote.git")
    study = tmp_path / "study"
    run_study(study, space_file, trials=5, publish=PublishConfig(remote=str(remote), every=2))
    log = git("--git-dir", str(remote), "log", "--format=%s", "main")
    # pushes after trials 2 and 4, and a final one after trial 5
    assert log.splitlines()[0].startswith("study: 5 trials, champion trial")
    assert len(log.splitlines()) == 3
    files = git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", "main").split()
    assert {"results.jsonl", "study.log", "study.json", "models/champion/manifest.json",
            "models/champion/model.zip", "logs/trial-5.log", ".gitignore"} <= set(files)
    assert not any(f.startswith("models/trial-") and f.endswith(".zip") for f in files)
    assert "controller.lock" not in files and not any(f.startswith("running/") for f in files)
    pushed = git("--git-dir", str(remote), "show", "main:results.jsonl")
    assert pushed.encode() == (study / "results.jsonl").read_bytes()


def test_model_policy_size_limit_and_exclude(tmp_path):
    study = tmp_path / "s"
    for t in (1, 2):
        (study / f"models/trial-{t}").mkdir(parents=True)
        (study / f"models/trial-{t}/model.zip").write_bytes(b"x" * (t * 600_000))
    (study / "logs").mkdir()
    (study / "logs/trial-1.log").write_text("hi")
    (study / "results.jsonl").write_text("{}\n")
    cfg = PublishConfig(remote="r", models="all", max_model_mb=1.0, exclude=("logs/*",))
    files = Publisher(study, cfg).files()
    assert files == ["results.jsonl", "models/trial-1/model.zip"]
    assert Publisher(study, PublishConfig(remote="r", models="none")).files() == \
        ["results.jsonl", "logs/trial-1.log"]


def test_failing_remote_does_not_stop_the_loop(tmp_path, space_file):
    study = tmp_path / "study"
    missing = tmp_path / "no-such-remote.git"
    summary, _ = run_study(study, space_file, trials=4,
                           publish=PublishConfig(remote=str(missing), every=1))
    assert summary.completed == 4
    assert [r.run_status for r in records(study)] == ["ok"] * 4


def test_failed_publish_is_retried_after_the_next_trial(tmp_path):
    study = tmp_path / "s"
    study.mkdir()
    (study / "results.jsonl").write_text('{"trial": 1}\n')
    remote = tmp_path / "remote.git"
    pub = Publisher(study, PublishConfig(remote=str(remote), every=10))
    assert pub.maybe_publish(3, "m") is None  # not due
    assert pub.maybe_publish(10, "first") is False and pub.retry and pub.last_error
    bare(remote)  # the server comes back
    assert pub.maybe_publish(11, "retry") is True and not pub.retry
    assert git("--git-dir", str(remote), "log", "--format=%s", "main").split() == ["first"]
    assert pub.maybe_publish(12, "m") is None


def test_trial_command_placeholders_reach_the_trial(tmp_path, space_file):
    study = tmp_path / "study"
    run_study(study, space_file, trials=1,
              trial_command=fake_command("--plan", "{trial}=crash"))
    assert records(study)[0].run_status == "crashed"  # "1=crash" only if {trial} became 1


def test_bad_branch_never_makes_a_half_repository(tmp_path):
    study = tmp_path / "s"
    study.mkdir()
    (study / "results.jsonl").write_text('{"trial": 1}\n')
    pub = Publisher(study, PublishConfig(remote=str(bare(tmp_path / "r.git")), branch="bad..name"))
    assert pub.publish("m") is False and "check-ref-format" in pub.last_error
    assert not (study / ".git").exists()
