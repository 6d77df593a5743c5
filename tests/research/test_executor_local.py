"""The local executor: the executor seam over today's process groups (research/executors/local.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from donkeyrl.research.executors import EXECUTORS, ExecutorError, make_executor
from donkeyrl.research.runner import TrialSpec, read_pid_files
from donkeyrl.rl.checkpoints import FRACTIONS_ENV, ProgressPoint, append_progress

from research_helpers import group_gone

# A stand-in trainer that reports two checkpoints, then hangs until killed (or finishes with --done).
REPORTER = r"""
import json, os, sys, time
save = sys.argv[1]
os.makedirs(save, exist_ok=True)
print("pgid", os.getpgid(0), "fractions", os.environ.get("DONKEYRL_CHECKPOINT_FRACTIONS"), flush=True)
for i, f in enumerate([0.25, 0.5]):
    with open(os.path.join(save, "progress.jsonl"), "a") as fh:
        fh.write(json.dumps({"steps": 100 * (i + 1), "fraction": f, "race_score": 10.0 * (i + 1),
                             "validation_lap_rate": 0.0, "time_sec": 0.1}) + "\n")
if sys.argv[2:] == ["--done"]:
    sys.exit(0)
while True:
    time.sleep(0.1)
"""


def spec(tmp_path: Path, trial: int, *extra: str, timeout: float = 20.0,
         env: dict[str, str] | None = None) -> TrialSpec:
    script = tmp_path / "reporter.py"
    script.write_text(REPORTER)
    model_dir = tmp_path / "study" / "models" / f"trial-{trial}"
    return TrialSpec(trial=trial, params={"x": trial}, argv=[sys.executable, str(script), str(model_dir), *extra],
                     result_file=model_dir / "result.json",
                     log_file=tmp_path / "study" / "logs" / f"trial-{trial}.log", model_dir=model_dir,
                     seed=trial, timeout=timeout, cwd=tmp_path, env=env or {})


def wait_progress(handle, n: int, timeout: float = 20.0) -> list[ProgressPoint]:
    deadline = time.monotonic() + timeout
    while len(points := handle.progress()) < n:
        assert handle.poll() is None, "the trial ended early"
        assert time.monotonic() < deadline, "no progress reported"
        time.sleep(0.05)
    return points


def test_submit_progress_cancel(tmp_path):
    running = tmp_path / "study" / "running"
    running.mkdir(parents=True)
    ex = make_executor("local", study_dir=tmp_path / "study", kill_grace=0.5)
    h = ex.submit(spec(tmp_path, 1, env={FRACTIONS_ENV: "0.25,0.5"}))
    points = wait_progress(h, 2)
    assert [p.fraction for p in points] == [0.25, 0.5] and points[1].race_score == 20.0
    (info,) = read_pid_files(running)
    assert info["executor"] == "local" and info["trial"] == 1
    fin = h.cancel("pruned", "below the cut")
    assert fin.killed == "pruned" and fin.kill_message == "below the cut"
    assert group_gone(info["pgid"])
    log = (tmp_path / "study" / "logs" / "trial-1.log").read_text()
    assert "fractions 0.25,0.5" in log  # the trial's own environment carries the spec's env
    assert (h.spec.model_dir / "progress.jsonl").exists()  # files are kept
    h.release()
    assert read_pid_files(running) == []
    ex.close()


def test_timeout_and_normal_end(tmp_path):
    (tmp_path / "study" / "running").mkdir(parents=True)
    ex = make_executor("local", study_dir=tmp_path / "study", kill_grace=0.5)
    slow, quick = ex.submit(spec(tmp_path, 1, timeout=0.5)), ex.submit(spec(tmp_path, 2, "--done"))
    done: dict[int, object] = {}
    deadline = time.monotonic() + 20
    while len(done) < 2:
        for h in (slow, quick):
            if h.spec.trial not in done and (fin := h.poll()) is not None:
                done[h.spec.trial] = fin
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert done[1].killed == "timeout" and done[2].killed is None and done[2].exit_code == 0
    assert len(quick.progress()) == 2


def test_recover_reaps_local_leftovers_and_refuses_foreign_ones(tmp_path):
    running = tmp_path / "study" / "running"
    running.mkdir(parents=True)
    ex = make_executor("local", study_dir=tmp_path / "study", kill_grace=0.5)
    h = ex.submit(spec(tmp_path, 3))
    wait_progress(h, 1)
    (info,) = read_pid_files(running)
    # a new controller (the old one "died": its handle is dropped without a kill)
    (rec,) = make_executor("local", study_dir=tmp_path / "study", kill_grace=0.5).recover(running, set())
    assert rec.trial == 3 and rec.handle is None and rec.status == "interrupted"
    assert "killed leftover trial 3" in rec.note and group_gone(info["pgid"])
    h.proc.wait()  # reap our own child
    (running / "trial-3.json").unlink()
    (running / "trial-4.json").write_text(json.dumps({"trial": 4, "executor": "ray", "actor": "a"}))
    with pytest.raises(ExecutorError, match="trial\\(s\\) 4 of this study ran on executor 'ray'.*"
                                            "--executor ray"):
        ex.recover(running, set())
    assert (running / "trial-4.json").exists()  # left for the executor that can reach it


def test_unknown_executor_is_one_clear_error(tmp_path):
    with pytest.raises(ExecutorError, match="executor 'slurm' is not one of local, ray"):
        make_executor("slurm", study_dir=tmp_path, kill_grace=1.0)
    assert set(EXECUTORS) == {"local", "ray"}


def test_progress_of_a_trial_without_checkpoints_is_empty(tmp_path):
    (tmp_path / "study" / "running").mkdir(parents=True)
    ex = make_executor("local", study_dir=tmp_path / "study", kill_grace=0.5)
    s = spec(tmp_path, 5)
    h = ex.submit(TrialSpec(**{**s.__dict__, "argv": [sys.executable, "-c", "import time; time.sleep(30)"]}))
    try:
        assert h.progress() == []
        append_progress(s.progress_file, ProgressPoint(1, 0.5, 1.0, 0.0, 0.1))
        assert h.progress() == [ProgressPoint(1, 0.5, 1.0, 0.0, 0.1)]
    finally:
        h.cancel("interrupted", "test")
        h.release()
