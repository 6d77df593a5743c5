"""Controller crashes and signals: SIGKILL + restart, SIGTERM / SIGINT, torn journal lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from donkeyrl.research import fold_champion

from research_helpers import LOOP_ONLY, fake_command, group_gone, live_children, records, run_study


def controller_cmd(study: Path, space: Path, trials: int, trial_command: str,
                   *extra: str) -> list[str]:
    return [sys.executable, "-m", "donkeyrl", "research", "--study-dir", str(study),
            "--search-space", str(space), "--trials", str(trials), "--cooldown", "0",
            "--kill-grace", "0.5", "--trial-timeout", "30", "--trial-command", trial_command,
            *LOOP_ONLY, *extra]


def wait_for(cond, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, "controller exited early"
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def wait_until(cond, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_files(study: Path) -> list[dict]:
    out = []
    for p in (study / "running").glob("trial-*.json"):
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):  # being written / removed right now
            pass
    return out


def n_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_sigkill_mid_study_then_restart_records_each_trial_once(tmp_path, space_file):
    study = tmp_path / "study"
    cmd = controller_cmd(study, space_file, 10, fake_command("--mode", "spawn", "--plan", "4=spawnhang",
                                                    "--sleep", "0.2"),
                         "--workers", "2")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        # kill while trial 4 (which hangs) runs with its grandchild
        wait_for(lambda: n_lines(study / "results.jsonl") >= 3 and any(
            i["trial"] == 4 and Path(i["model_dir"], "grandchild.pid").exists()
            for i in pid_files(study)), proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = pid_files(study)
    assert left, "a trial was running when the controller died"
    # no trial process outlives the controller: each trial's leader got the parent-death signal
    # and killed its whole group, grandchildren included, within the kill grace (0.5 s)
    wait_until(lambda: all(group_gone(info["pgid"]) for info in left), 10.0)
    grandchild = int((study / "models/trial-4/grandchild.pid").read_text())
    assert not alive(grandchild)
    assert 4 not in {r.trial for r in records(study)}

    restart = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert restart.returncode == 0, restart.stderr
    recs = records(study)
    trials = [r.trial for r in recs]
    assert len(trials) == len(set(trials)), "a trial was recorded twice"
    assert sorted(trials) == list(range(1, max(trials) + 1)), "a trial was lost"
    assert sum(r.run_status != "interrupted" for r in recs) == 10
    for info in left:  # every trial running at the crash is recorded and its group is gone
        # (a PID file may belong to a trial recorded just before the kill: not recorded twice)
        assert info["trial"] in trials
        assert group_gone(info["pgid"])
    assert all(group_gone(r.metrics["pgid"]) for r in recs if "pgid" in r.metrics)
    assert not list((study / "running").iterdir())
    champ = fold_champion(recs)
    manifest = json.loads((study / "models/champion/manifest.json").read_text())
    assert manifest["trial"] == champ.trial
    assert [r.trial for r in recs if r.champion][-1] == champ.trial
    assert "trial 4 was running when the previous controller stopped" in restart.stdout
    assert next(r for r in recs if r.trial == 4).run_status == "interrupted"


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_kills_running_trial_group_and_records_it(tmp_path, space_file, sig, code):
    study = tmp_path / "study"
    cmd = controller_cmd(study, space_file, 5, fake_command("--plan", "2=spawn,3=hang",
                                                            "--sleep", "0.2"))
    # trial 2 sleeps with a grandchild, trial 3 hangs: stop the study during trial 3
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)
    try:
        wait_for(lambda: any(i["trial"] == 3 for i in pid_files(study)), proc)
        (info,) = pid_files(study)
        os.kill(proc.pid, sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, out
    recs = {r.trial: r for r in records(study)}
    assert recs[3].run_status == "interrupted" and signal.Signals(sig).name in recs[3].message
    assert group_gone(info["pgid"])
    assert not list((study / "running").iterdir())
    assert live_children(proc.pid) == []
    assert "interrupted" in out
    # resuming runs the remaining trials; the interrupted one does not count
    summary, _ = run_study(study, space_file, trials=5)
    assert summary.completed == 5 and len(records(study)) == 6


def test_torn_last_line_tolerated_on_resume(tmp_path, space_file):
    study = tmp_path / "study"
    run_study(study, space_file, trials=2)
    with open(study / "results.jsonl", "ab") as fh:
        fh.write(b'{"trial": 3, "timestamp": "2026-')
    summary, rep = run_study(study, space_file, trials=4)
    assert any("line 3: torn" in n for n in rep.notes)
    assert summary.journal_problems == 1
    assert [r.trial for r in records(study)] == [1, 2, 3, 4]
    assert b'{"trial": 3, "timestamp": "2026-\n' in (study / "results.jsonl").read_bytes()
    summary, rep = run_study(study, space_file, trials=4)  # reported again, as corrupt line 3
    assert any("line 3: corrupt" in n for n in rep.notes)
