"""A study on a real local Ray cluster through the documented command (docs/cluster.md):
``donkeyrl research --executor ray --ray-address ADDR``, surviving a controller SIGKILL (its
running trials are adopted by the next controller) and a killed worker node (``lost``), with
every trial recorded exactly once and nothing left running on the cluster or the machine."""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from research_helpers import fake_command, group_gone, records

ray = pytest.importorskip("ray")

from donkeyrl.research.executors.ray_cluster import LocalCluster  # noqa: E402
from donkeyrl.research.executors.ray_executor import actor_name, study_id  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Head without CPUs + one worker node with 2 CPUs (the last test kills it)."""
    with LocalCluster(tmp_path_factory.mktemp("ray"), worker_cpus=(2,)) as c:
        yield c


def research(study: Path, space: Path, address: str, trials: int, *extra: str,
             trial_command: str | None = None) -> list[str]:
    """The documented command (docs/cluster.md) with test-sized settings."""
    return [sys.executable, "-m", "donkeyrl", "research", "--study-dir", str(study),
            "--search-space", str(space), "--trials", str(trials), "--cooldown", "0",
            "--kill-grace", "0.5", "--trial-timeout", "60", "--confirm-seeds", "0",
            "--no-final-test", "--no-report", "--workers", "2",
            "--executor", "ray", "--ray-address", address, "--cpus-per-trial", "1",
            "--trial-command", trial_command or fake_command("--sleep", "3"), *extra]


def wait_until(cond, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None:
            assert proc.poll() is None, f"controller exited early ({proc.returncode})"
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def running_trials(study: Path) -> list[int]:
    out = []
    for p in (study / "running").glob("trial-*.json"):
        try:
            out.append(int(json.loads(p.read_text())["trial"]))
        except (OSError, ValueError, KeyError):
            pass
    return sorted(out)


def started(study: Path, trial: int) -> bool:
    log = study / "logs" / f"trial-{trial}.log"
    return log.exists() and "pgid=" in log.read_text()


def pgids(study: Path) -> list[int]:
    return [int(m) for log in (study / "logs").glob("trial-*.log")
            for m in re.findall(r"pgid=(\d+)", log.read_text())]


def test_early_stopping_on_ray_with_files_shipped_back(cluster, tmp_path, space_file):
    """Nodes that do not see the study dir: checkpoints are read through the actors, pruned
    and finished trials' files are shipped back into the study dir."""
    study = tmp_path / "study"
    proc = subprocess.run(research(
        study, space_file, cluster.address, 6, "--ray-shared-dir", str(tmp_path / "not-mounted"),
        "--prune", "asha", "--prune-fractions", "0.5", "--prune-eta", "2", "--prune-min-trials", "2",
        trial_command=fake_command("--sleep", "6", "--rewards", "60,70,80,10,90,20")),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = {r.trial: r for r in records(study)}
    assert recs[4].run_status == "pruned" and recs[6].run_status == "pruned", \
        {t: r.run_status for t, r in recs.items()}
    assert recs[5].run_status == "ok" and recs[5].champion
    for t in recs:
        assert (study / "models" / f"trial-{t}" / "model.zip").is_file()
        assert (study / "models" / f"trial-{t}" / "progress.jsonl").is_file()
        assert f"fake trial {t} " in (study / "logs" / f"trial-{t}.log").read_text()
    assert recs[4].model_path == "models/trial-4/model.zip"


def test_study_on_ray_survives_controller_kill_and_dead_worker(cluster, tmp_path, space_file):
    study = tmp_path / "study"
    cmd = research(study, space_file, cluster.address, 6)
    with open(tmp_path / "controller.log", "ab") as out:
        first = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        # kill the controller while two trials run on the cluster
        wait_until(lambda: len(running_trials(study)) == 2
                   and all(started(study, t) for t in running_trials(study)), 120, first)
        in_flight = running_trials(study)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        second = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        # the new controller adopts them; then the worker node dies under the next trials
        wait_until(lambda: "adopted" in (study / "study.log").read_text(), 120, second)
        wait_until(lambda: any(t > max(in_flight) and started(study, t) for t in running_trials(study)),
                   120, second)
        cluster.kill_worker(0)
        wait_until(lambda: any(r.run_status == "lost" for r in records(study)), 120, second)
        cluster.add_worker(2)
        assert second.wait(timeout=180) == 0
        recs = records(study)
        counts = collections.Counter(r.trial for r in recs)
        assert all(n == 1 for n in counts.values()), counts  # no duplicated record
        assert sorted(counts) == list(range(1, max(counts) + 1))  # no lost record
        for t in in_flight:  # adopted and finished once, never started twice
            (rec,) = [r for r in recs if r.trial == t]
            assert rec.run_status == "ok", rec.message
            assert (study / "logs" / f"trial-{t}.log").read_text().count(f"fake trial {t} ") == 1
        lost = [r for r in recs if r.run_status == "lost"]
        assert lost and all("died" in r.message for r in lost)
        assert sum(r.run_status == "ok" for r in recs) == 6  # lost ones are not counted
        assert not list((study / "running").glob("trial-*.json"))
        assert all(group_gone(p) for p in pgids(study))
        # no trial actor is left on the cluster
        ray.init(address=cluster.address, namespace="donkeyrl", logging_level="WARNING", log_to_driver=False)
        try:
            for t in counts:
                with pytest.raises(ValueError):
                    ray.get_actor(actor_name(study_id(study), t), namespace="donkeyrl")
        finally:
            ray.shutdown()
