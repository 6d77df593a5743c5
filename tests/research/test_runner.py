"""Trial processes: own process group, PID files, reaping leftovers by identity only."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from donkeyrl.research.procs import start_time
from donkeyrl.research.runner import TrialProcess, TrialSpec, read_pid_files, reap_leftover

from research_helpers import group_gone


def spec(tmp_path, argv, timeout=10.0):
    return TrialSpec(trial=1, params={}, argv=argv, result_file=tmp_path / "r.json",
                     log_file=tmp_path / "logs/t.log", model_dir=tmp_path / "m", seed=1,
                     timeout=timeout, cwd=tmp_path)


def test_trial_runs_in_own_group_with_pid_file_and_live_log(tmp_path):
    run = tmp_path / "running"
    run.mkdir()
    code = "import os, time; print('pgid', os.getpgid(0), flush=True); time.sleep(30)"
    tp = TrialProcess(spec(tmp_path, [sys.executable, "-c", code]), run, kill_grace=0.5)
    try:
        assert tp.pgid == tp.pid and tp.pgid != os.getpgid(0)
        (info,) = read_pid_files(run)
        assert info["pid"] == tp.pid and info["start_time"] == start_time(tp.pid)
        deadline = time.monotonic() + 20
        while f"pgid {tp.pid}" not in (tmp_path / "logs/t.log").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert tp.poll() is None
    finally:
        fin = tp.kill("interrupted", "test")
    assert fin.killed == "interrupted" and fin.exit_code == -15
    assert group_gone(tp.pgid)
    tp.remove_pid_file()
    assert read_pid_files(run) == []


def test_reap_leaves_reused_pids_alone(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             start_new_session=True)
    try:
        info = {"trial": 7, "pid": other.pid, "pgid": other.pid,
                "start_time": start_time(other.pid) - 1, "argv": ["python", "train"]}
        assert "belongs to another process: left alone" in reap_leftover(info, 0.5)
        assert other.poll() is None
        info["start_time"] = start_time(other.pid)
        info["argv"] = other.args
        assert "killed leftover trial 7" in reap_leftover(info, 0.5)
        assert other.wait(timeout=10) == -15
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    assert "no longer running" in reap_leftover(info, 0.5)


def test_unreadable_pid_file_is_reported_and_removed(tmp_path):
    (tmp_path / "trial-3.json").write_text("{garbage")
    assert read_pid_files(tmp_path) == []
    assert not (tmp_path / "trial-3.json").exists()
