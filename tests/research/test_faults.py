"""Faults an overnight study must survive: hostile result files, damaged journals, files that
are not files, full disks, torn records, orphaned processes, stale PID files, bad models,
failing git. Each test reproduces one failure that once stopped or corrupted a study."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from donkeyrl.cli import main
from donkeyrl.research import Journal, PublishConfig, StudyError, TrialRecord, fold_champion
from donkeyrl.research.procs import group_members, start_time
from donkeyrl.research.result import parse_outcome
from donkeyrl.research.runner import TOKEN_ENV, reap_leftover

from research_helpers import (LOOP_ONLY, fake_command, live_children, make_config, records,
                              run_study, zip_bytes)


def cli(study: Path, space: Path, trials: int, *extra: str, command: str | None = None) -> list[str]:
    return ["research", "--study-dir", str(study), "--search-space", str(space), "--trials",
            str(trials), "--cooldown", "0", "--kill-grace", "0.5",
            "--trial-command", command or fake_command(), *LOOP_ONLY, *extra]


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if ".tmp-" in p.name or p.name.startswith(".write-test")]


def processes_with_token(token: str) -> list[int]:
    """Live processes whose environment carries the trial token ``token``."""
    out = []
    needle = f"{TOKEN_ENV}={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in env.split(b"\0"):
            out.append(int(entry.name))
    return out


def wait_until(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


# --- 1. hostile result files --------------------------------------------------------------
@pytest.mark.parametrize("mode,status,match", [
    ("nonutf8", "bad_result", "is not UTF-8 text"),
    ("deep", "bad_result", "nested too deeply"),
    ("wrongtypes", "ok", ""),
    ("hugeint", "ok", ""),
])
def test_hostile_result_file_is_recorded_and_the_study_goes_on(tmp_path, space_file, mode,
                                                               status, match):
    study = tmp_path / "s"
    run_study(study, space_file, trials=3, trial_command=fake_command("--plan", f"2={mode}"))
    recs = {r.trial: r for r in records(study)}
    assert [recs[t].run_status for t in (1, 2, 3)] == ["ok", status, "ok"]
    assert match in recs[2].message
    summary, _ = run_study(study, space_file, trials=4)  # and every restart works
    assert summary.completed == 4 and summary.journal_problems == 0


def test_result_nested_deeper_than_the_limit_is_refused(tmp_path):
    rf = tmp_path / "result.json"
    nested: object = 1.0
    for _ in range(40):
        nested = {"x": nested}
    rf.write_text(json.dumps({"driving_score": 1.0, "metrics": nested}))
    out = parse_outcome(rf, 0, objective="driving_score", cwd=tmp_path)
    assert out.run_status == "bad_result" and "nests deeper than 31" in out.message


def test_result_at_the_depth_limit_makes_a_record_that_reads_back(tmp_path):
    rf = tmp_path / "result.json"
    nested: object = 1.0
    for _ in range(30):
        nested = {"x": nested}
    model = tmp_path / "model.zip"
    model.write_bytes(zip_bytes("m"))
    rf.write_text(json.dumps({"driving_score": 1.0, "deep": nested, "model_path": str(model)}))
    out = parse_outcome(rf, 0, objective="driving_score", cwd=tmp_path)
    assert out.run_status == "ok"
    rec = TrialRecord(1, {}, out.run_status, objective=out.objective, metrics=out.metrics)
    Journal(tmp_path / "r.jsonl").append(rec)
    assert Journal(tmp_path / "r.jsonl").read().records[0].metrics == out.metrics


def test_trainer_message_is_one_short_line(tmp_path):
    rf = tmp_path / "result.json"
    dump = "tensor([[" + "\n".join("0.1, 0.2, 0.3" for _ in range(514)) + "]])"
    rf.write_text(json.dumps({"run_status": "diverged", "message": dump}))
    out = parse_outcome(rf, 1, objective="driving_score", cwd=tmp_path)
    assert out.run_status == "diverged" and "\n" not in out.message and len(out.message) <= 500


# --- 2. journal lines with wrong types or deep nesting ------------------------------------
BAD_LINES = [b'{"trial": 7, "params": {}, "metrics": [1, 2]}',
             b'{"trial": 8, "params": {}, "episode_rewards": 5}',
             b'{"trial": 9, "params": {}, "model_path": 123}',
             b'{"trial": 10, "params": {}, "seed": "x", "run_status": "ok"}',
             b'{"trial": 11, "params": {"a": ' + b"[" * 100000 + b"]" * 100000 + b"}}",
             b'{"trial": 12, "params": {"a": ' + b"[" * 40 + b"]" * 40 + b"}}",
             b'{"trial": 13, "params": {}, "objective": ' + b"9" * 400 + b"}",
             b"\xff\xfe garbage \x00"]


def test_wrong_types_and_deep_nesting_are_reported_and_skipped(tmp_path):
    good = [json.dumps(TrialRecord(t, {"n_steer": 5}, "ok", objective=1.0).to_json()).encode()
            for t in (1, 2)]
    path = tmp_path / "results.jsonl"
    path.write_bytes(b"\n".join([good[0], *BAD_LINES, good[1]]) + b"\n")
    read = Journal(path).read()
    assert [r.trial for r in read.records] == [1, 2]
    assert [(p.line, p.kind) for p in read.problems] == [(i, "corrupt") for i in range(2, 10)]
    details = " ".join(p.detail for p in read.problems)
    for needle in ("'metrics' must be an object", "'episode_rewards' must be a list",
                   "'model_path' must be a string", "'seed' must be an integer",
                   "nested deeper than 32", "'objective' must be a number"):
        assert needle in details


def test_controller_resumes_past_bad_lines_in_journal_and_warm_start(tmp_path, space_file):
    study, other = tmp_path / "s", tmp_path / "other"
    run_study(study, space_file, trials=2)
    with open(study / "results.jsonl", "ab") as fh:
        fh.write(b"\n".join(BAD_LINES) + b"\n")
    shutil.copy(study / "results.jsonl", tmp_path / "warm.jsonl")
    summary, rep = run_study(study, space_file, trials=4)
    assert summary.completed == 4 and summary.journal_problems == len(BAD_LINES)
    assert [r.trial for r in records(study)] == [1, 2, 3, 4]
    summary, rep = run_study(other, space_file, trials=1, warm_start=(tmp_path / "warm.jsonl",))
    assert summary.completed == 1
    assert any(f"2 records used, 0 skipped, {len(BAD_LINES)} bad lines" in n for n in rep.notes)


# --- 4. a directory or FIFO where a study file belongs ------------------------------------
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["dir", "fifo"])
@pytest.mark.parametrize("name", ["results.jsonl", "study.json"])
def test_study_file_that_is_not_a_file_is_exit_4_without_temp_files(tmp_path, space_file,
                                                                    capsys, name, kind):
    study = tmp_path / "s"
    study.mkdir()
    if kind == "dir":
        (study / name).mkdir()
    else:
        os.mkfifo(study / name)
    assert main(cli(study, space_file, 2)) == 4
    err = capsys.readouterr().err
    assert "not a regular file" in err and name in err and "Traceback" not in err
    assert not temp_files(study)
    assert not list((study / "models").glob("trial-*"))  # no trial ran


# --- 5. full disk --------------------------------------------------------------------------
def test_partial_append_is_cut_off(tmp_path, monkeypatch):
    """A write that stores half the line and then fails leaves the file as it was."""
    import donkeyrl.research.journal as journal_mod
    path = tmp_path / "results.jsonl"
    j = Journal(path)
    j.append(TrialRecord(1, {}, "ok", objective=1.0))
    before = path.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(journal_mod.os, "write", half_then_full)
    with pytest.raises(OSError, match="disk is full"):
        j.append(TrialRecord(2, {}, "ok", objective=2.0))
    monkeypatch.undo()
    assert path.read_bytes() == before
    j.append(TrialRecord(3, {}, "ok", objective=3.0))
    assert [r.trial for r in j.read().records] == [1, 3] and j.read().problems == []


def test_failed_fsync_is_cut_off(tmp_path, monkeypatch):
    import donkeyrl.research.journal as journal_mod
    path = tmp_path / "results.jsonl"
    Journal(path).append(TrialRecord(1, {}, "ok"))
    before = path.read_bytes()

    def eio(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(journal_mod.os, "fsync", eio)
    with pytest.raises(OSError, match="cannot write"):
        Journal(path).append(TrialRecord(2, {}, "ok"))
    monkeypatch.undo()
    assert path.read_bytes() == before


def test_launch_failure_from_a_full_disk_is_not_a_trial(tmp_path, space_file, monkeypatch):
    import donkeyrl.research.runner as runner_mod
    study = tmp_path / "s"
    real = runner_mod.write_json_atomic
    calls = {"n": 0}

    def full_on_third_launch(path, obj):
        if path.name == "launch.json":
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, obj)

    monkeypatch.setattr(runner_mod, "write_json_atomic", full_on_third_launch)
    with pytest.raises(StudyError, match="cannot start trial 3: No space left on device"):
        run_study(study, space_file, trials=5)
    recs = records(study)
    assert [r.trial for r in recs] == [1, 2]  # not recorded, not counted, not told
    assert not (study / "models/trial-3").exists() and not temp_files(study)
    assert not list((study / "running").iterdir()) and live_children() == []
    monkeypatch.undo()
    summary, _ = run_study(study, space_file, trials=5)
    assert [r.trial for r in records(study)] == [1, 2, 3, 4, 5]
    assert summary.completed == 5


def test_trial_killed_by_a_full_disk_is_interrupted_and_rerun(tmp_path, space_file):
    study = tmp_path / "s"
    with pytest.raises(StudyError, match="disk of .* is full"):
        run_study(study, space_file, trials=4, trial_command=fake_command("--plan", "2=enospc"))
    recs = {r.trial: r for r in records(study)}
    assert recs[2].run_status == "interrupted" and "disk full" in recs[2].message
    assert len(recs) == 2
    # space freed: the interrupted trial is re-run first, with its params and seed
    summary, rep = run_study(study, space_file, trials=4, rerun_interrupted=True,
                             trial_command=fake_command("--plan", "2=enospc"))
    recs = {r.trial: r for r in records(study)}
    assert summary.completed == 4 and sorted(recs) == [1, 2, 3, 4, 5]
    assert recs[3].rerun_of == 2 and recs[3].run_status == "ok"
    assert (recs[3].params, recs[3].seed) == (recs[2].params, recs[2].seed)
    assert all(recs[t].rerun_of is None for t in (1, 4, 5))
    # a finished re-run is never re-run again
    summary, rep = run_study(study, space_file, trials=5, rerun_interrupted=True)
    assert [r.rerun_of for r in records(study)][-1] is None and summary.completed == 5


# --- 6. a torn last line: the trial is recovered, its number never reused ------------------
def test_torn_record_is_recovered_and_its_number_never_reused(tmp_path, space_file):
    study = tmp_path / "s"
    run_study(study, space_file, trials=3)
    journal = study / "results.jsonl"
    data = journal.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    torn = data[: last + (len(data) - last) // 2]  # power cut in the middle of trial 3's record
    journal.write_bytes(torn)
    original = records(study)
    model3 = (study / "models/trial-3/model.zip").read_bytes()
    summary, rep = run_study(study, space_file, trials=4)
    assert journal.read_bytes().startswith(torn)  # append-only: the fragment stays
    recs = {r.trial: r for r in records(study)}
    assert sorted(recs) == [1, 2, 3, 4] and summary.completed == 4
    assert recs[3].run_status == "ok" and "recovered at restart" in recs[3].message
    assert recs[3].params and recs[3].seed == 3  # from the trial's launch.json
    assert (study / "models/trial-3/model.zip").read_bytes() == model3
    assert (study / "logs/trial-3.log").read_text().count("fake trial 3 ") == 1
    assert any("trial 3 had no record" in n for n in rep.notes)
    assert [r.trial for r in original] == [1, 2]


# --- 7. no trial process outlives a SIGKILLed controller ----------------------------------
@pytest.mark.slow
def test_sigkill_leaves_no_worker_wrapper_or_escaped_process(tmp_path, space_file):
    study = tmp_path / "s"
    inner = f"{sys.executable} {Path(__file__).with_name('fake_trial.py')}"
    wrapper = f"sh -c '{inner} \"$@\"; exit $?' sh --plan 1=workers,2=escape"
    cmd = [sys.executable, "-m", "donkeyrl", *cli(study, space_file, 4, "--workers", "2",
                                                  command=wrapper)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until(lambda: (study / "models/trial-1/workers.pid").exists()
                   and (study / "models/trial-2/escapee.pid").exists(), 60)
        tokens = [json.loads(p.read_text())["token"] for p in (study / "running").glob("*.json")]
        procs = [pid for t in tokens for pid in processes_with_token(t)]
        assert len(tokens) == 2 and len(procs) >= 2 * 3 + 2  # leader, sh, trainer (+2 workers, +1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wait_until(lambda: not any(processes_with_token(t) for t in tokens), 10)
    escapee = int((study / "models/trial-2/escapee.pid").read_text())
    assert not Path(f"/proc/{escapee}").exists() or \
        Path(f"/proc/{escapee}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


# --- 8. a stale PID file never signals an unrelated process group --------------------------
def _orphaned_group(token: str | None) -> tuple[subprocess.Popen, int]:
    """A group whose leader has exited while a member (optionally carrying ``token``) lives."""
    code = ("import os, subprocess, sys, time\n"
            "m = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print(m.pid, flush=True)\nsys.stdin.readline()\n")
    env = {**os.environ, **({TOKEN_ENV: token} if token else {})}
    leader = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, start_new_session=True, env=env)
    member = int(leader.stdout.readline())
    return leader, member


@pytest.mark.parametrize("token_in_member", [False, True])
def test_stale_pid_file_kills_only_processes_proven_to_be_the_trial(token_in_member):
    leader, member = _orphaned_group("tok123" if token_in_member else "someone-else")
    try:
        info = {"trial": 5, "pid": leader.pid, "pgid": leader.pid,
                "start_time": start_time(leader.pid), "argv": ["x"], "token": "tok123"}
        leader.stdin.write("\n")
        leader.stdin.flush()
        leader.wait(timeout=10)
        assert group_members(leader.pid) == [member]  # dead leader, live group
        msg = reap_leftover(info, 0.5)
        if token_in_member:
            assert "killed 1 leftover process(es) of trial 5" in msg
            wait_until(lambda: not group_members(leader.pid), 10)
        else:
            assert "1 unrelated process(es)" in msg and "left alone" in msg
            time.sleep(0.3)
            assert group_members(leader.pid) == [member]
    finally:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_pid_file_without_token_never_kills_a_leaderless_group():
    leader, member = _orphaned_group(None)
    try:
        info = {"trial": 6, "pid": leader.pid, "pgid": leader.pid, "start_time": 1,
                "argv": ["x"]}
        leader.stdin.write("\n")
        leader.stdin.flush()
        leader.wait(timeout=10)
        assert "left alone" in reap_leftover(info, 0.5)
        assert group_members(leader.pid) == [member]
    finally:
        os.kill(member, signal.SIGKILL)


# --- 9. models outside the trial, absurd objectives ----------------------------------------
@pytest.mark.parametrize("mode,match", [
    ("elsewhere", "is outside the trial directory"),
    ("notzip", "is not a zip archive"),
    ("huge", "outside its plausible range [0, 100]"),
])
def test_bad_model_or_absurd_objective_is_never_champion(tmp_path, space_file, mode, match):
    study = tmp_path / "s"
    run_study(study, space_file, trials=2, objective="driving_score",
              trial_command=fake_command("--rewards", "1,99", "--plan", f"2={mode}"))
    recs = {r.trial: r for r in records(study)}
    assert recs[2].run_status == "bad_result" and match in recs[2].message
    assert not recs[2].champion and fold_champion(records(study)).trial == 1
    manifest = json.loads((study / "models/champion/manifest.json").read_text())
    assert manifest["trial"] == 1


def test_result_naming_a_system_file_is_refused(tmp_path):
    trial = tmp_path / "models/trial-1"
    trial.mkdir(parents=True)
    rf = trial / "result.json"
    rf.write_text(json.dumps({"driving_score": 50.0, "model_path": "/etc/hostname"}))
    out = parse_outcome(rf, 0, objective="driving_score", cwd=tmp_path, trial_dir=trial)
    assert out.run_status == "bad_result" and "outside the trial directory" in out.message
    link = trial / "model.zip"
    link.symlink_to("/etc/hostname")  # a symlink inside pointing outside counts as outside
    rf.write_text(json.dumps({"driving_score": 50.0, "model_path": str(link)}))
    out = parse_outcome(rf, 0, objective="driving_score", cwd=tmp_path, trial_dir=trial)
    assert out.run_status == "bad_result" and "outside the trial directory" in out.message


def test_replayed_records_with_absurd_values_are_not_crowned(tmp_path):
    recs = [TrialRecord(1, {}, "ok", objective=5.0, model_path="models/trial-1/model.zip"),
            TrialRecord(2, {}, "ok", objective=1e308, model_path="models/trial-2/model.zip"),
            TrialRecord(3, {}, "ok", objective=50.0, model_path="/etc/hostname"),
            TrialRecord(4, {}, "ok", objective=60.0, model_path="models/../../etc/hostname"),
            TrialRecord(5, {}, "ok", objective=6.0, model_path="models/trial-5/model.zip")]
    assert fold_champion(recs).trial == 5
    assert not recs[1].usable


# --- 10. git failures, bad branch, read-only journal, temporary files ----------------------
def test_publish_failure_reaches_study_log_summary_and_exit_status(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    missing = tmp_path / "no-such-remote.git"
    code = main(cli(study, space_file, 2, "--git-remote", str(missing), "--push-every", "1"))
    out = capsys.readouterr().out
    assert code == 6
    assert "publishing to" in out and "failed" in out
    log = (study / "study.log").read_text()
    assert log.count(f"publishing to {missing} failed") >= 2  # after trial 1 and at the end
    assert [r.run_status for r in records(study)] == ["ok", "ok"]
    summary, _ = run_study(study, space_file, trials=3,
                           publish=PublishConfig(remote=str(missing), every=1))
    assert summary.publish_error and "no-such-remote" in summary.publish_error


def test_bad_git_branch_is_refused_before_anything_is_created(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    code = main(cli(study, space_file, 2, "--git-remote", str(tmp_path / "r.git"),
                    "--git-branch", "bad..name"))
    assert code == 2
    assert "--git-branch 'bad..name' is not a valid git branch name" in capsys.readouterr().err
    assert not study.exists()


def test_trial_temporary_files_stay_in_the_trial_and_are_removed(tmp_path, space_file):
    study = tmp_path / "s"
    run_study(study, space_file, trials=2)
    for r in records(study):
        scratch = Path(r.metrics["scratch_dir"])
        assert scratch.parent == (study / f"models/trial-{r.trial}/.tmp").resolve()
        assert not scratch.parent.exists()


@pytest.mark.timeout(120)
def test_read_only_journal_is_noticed_before_the_first_trial(tmp_path, space_file):
    study = tmp_path / "s"
    run_study(study, space_file, trials=1)
    journal = study / "results.jsonl"
    before = journal.read_bytes()
    args = [sys.executable, "-m", "donkeyrl", *cli(study, space_file, 3)]
    if os.geteuid() != 0:
        journal.chmod(0o444)
        proc = subprocess.run(args, capture_output=True, text=True, timeout=100)
    else:  # root ignores file modes: make the journal read-only with a bind mount
        if shutil.which("unshare") is None:
            pytest.skip("needs unshare(1) to make a file read-only for root")
        script = f'mount --bind -o ro "{journal}" "{journal}" && exec "$@"'
        proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *args],
                              capture_output=True, text=True, timeout=100)
        if "mount" in proc.stderr and proc.returncode != 4:
            pytest.skip(f"cannot bind-mount here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 4, proc.stderr
    assert re.search(r"read-only|permission denied", proc.stderr)
    assert "Traceback" not in proc.stderr
    assert journal.read_bytes() == before
    assert not (study / "models/trial-2").exists()  # no trial ran


def test_controller_config_refuses_absurd_settings(tmp_path):
    for kw, match in ((dict(workers=100000), "workers=100000 must be in"),
                      (dict(max_timesteps=10**30), "max_timesteps="),
                      (dict(trial_command="python 'unclosed"), "not a valid command line"),
                      (dict(trial_command=""), "must not be empty")):
        with pytest.raises(ValueError, match=match):
            make_config(tmp_path / "s", None, **kw)
    assert not (tmp_path / "s").exists()



def test_temp_files_of_a_killed_controller_are_removed_at_start(tmp_path, space_file):
    study = tmp_path / "s"
    run_study(study, space_file, trials=1)
    left = [study / "running/.trial-9.json.tmp-4242", study / "models/champion/.model.zip.tmp-1",
            study / ".study.json.tmp-77", study / "models/trial-1/.launch.json.tmp-5",
            study / ".write-test-99"]
    for p in left:
        p.write_text("half")
    keep = study / "models/trial-1/.tmp-not-ours"
    keep.write_text("x")
    run_study(study, space_file, trials=2)
    assert not any(p.exists() for p in left) and keep.exists()


def test_full_disk_while_taking_the_lock_is_exit_4(tmp_path, space_file, monkeypatch):
    import donkeyrl.research.lock as lock_mod
    study = tmp_path / "s"

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock_mod.os, "pwrite", full)
    with pytest.raises(StudyError, match="cannot lock study directory .*No space left"):
        run_study(study, space_file, trials=1)
    monkeypatch.undo()
    summary, _ = run_study(study, space_file, trials=1)  # the lock was released
    assert summary.completed == 1
