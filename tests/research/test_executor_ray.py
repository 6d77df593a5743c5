"""The Ray executor on a real local Ray cluster (a head and worker nodes as separate processes).

The cluster binds to 127.0.0.2 (loopback; research/executors/ray_cluster.py says why not
127.0.0.1). Trials are fast stand-in trainers; the end-to-end study on the cluster, with a
killed worker and a controller restart, is in test_executor_ray_study.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from donkeyrl.research.runner import TrialSpec, read_pid_files
from donkeyrl.research.result import parse_outcome
from donkeyrl.research.trialcmd import build_argv

from research_helpers import fake_command, group_gone

ray = pytest.importorskip("ray")

from donkeyrl.research.executors.ray_cluster import LocalCluster  # noqa: E402
from donkeyrl.research.executors.ray_executor import RayExecutor, actor_name  # noqa: E402

pytestmark = pytest.mark.slow

REPORTER = r"""
import json, os, sys, time
save = sys.argv[1]
os.makedirs(save, exist_ok=True)
print("reporter pgid", os.getpgid(0), flush=True)
with open(os.path.join(save, "progress.jsonl"), "a") as fh:
    fh.write(json.dumps({"steps": 100, "fraction": 0.25, "race_score": 7.5,
                         "validation_lap_rate": 0.0, "time_sec": 0.1}) + "\n")
while True:
    time.sleep(0.1)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Head without CPUs + one worker node with 2 CPUs; the test process is the driver."""
    with LocalCluster(tmp_path_factory.mktemp("ray"), worker_cpus=(2,)) as c:
        ray.init(address=c.address, namespace="donkeyrl", logging_level="WARNING", log_to_driver=False)
        try:
            wait_until(lambda: ray.cluster_resources().get("CPU", 0) >= 2, 60)
            yield c
        finally:
            ray.shutdown()


def wait_until(cond, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def make_spec(study: Path, trial: int, command: str, *, timeout: float = 60.0,
              argv: list[str] | None = None) -> TrialSpec:
    study = study.resolve()
    model_dir = study / "models" / f"trial-{trial}"
    result = model_dir / "result.json"
    if argv is None:
        argv = build_argv(command, params={"learning_rate": 1e-3}, agent="ppo", tracks=["t"],
                          eval_episodes=2, seed=trial, save_dir=model_dir, result_file=result,
                          reward=None, trial=trial, study_dir=study)
    return TrialSpec(trial=trial, params={"learning_rate": 1e-3}, argv=argv, result_file=result,
                     log_file=study / "logs" / f"trial-{trial}.log", model_dir=model_dir, seed=trial,
                     timeout=timeout, cwd=study)


def finish(handle, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while (fin := handle.poll()) is None:
        assert time.monotonic() < deadline, "trial did not finish"
        time.sleep(0.05)
    return fin


def executor(study: Path, cluster: LocalCluster, **kw) -> RayExecutor:
    (study / "running").mkdir(parents=True, exist_ok=True)
    return RayExecutor(study, kill_grace=0.5, address=cluster.address, **kw)


def test_trials_run_on_the_cluster_in_parallel_files_in_the_study_dir(cluster, tmp_path):
    study = tmp_path / "study"
    ex = executor(study, cluster)
    t0 = time.monotonic()
    handles = [ex.submit(make_spec(study, n, fake_command("--sleep", "2"))) for n in (1, 2)]
    (info, _) = read_pid_files(study / "running")
    assert info["executor"] == "ray" and info["actor"] == actor_name(ex.sid, 1)
    fins = [finish(h) for h in handles]
    assert time.monotonic() - t0 < 2 * 2 + 10  # two 2 s trials side by side on 2 CPUs
    for h, fin in zip(handles, fins):
        assert fin.exit_code == 0 and fin.killed is None
        out = parse_outcome(h.spec.result_file, 0, objective="driving_score", cwd=study,
                            trial_dir=h.spec.model_dir)
        assert out.run_status == "ok", out.message
        assert f"fake trial {h.spec.trial}" in h.spec.log_file.read_text()  # the live log, shared FS
        h.release()
    assert read_pid_files(study / "running") == []
    with pytest.raises(ValueError):  # the actor is gone after release
        ray.get_actor(actor_name(ex.sid, 1), namespace="donkeyrl")


def test_unshared_study_dir_ships_the_files_back(cluster, tmp_path):
    """A node that does not see the study dir runs the trial in scratch space and ships its
    files: model, result (paths mapped back), progress and log land in the study dir."""
    study = tmp_path / "study"
    ex = executor(study, cluster, shared_dir=tmp_path / "not-mounted-on-the-node")
    h = ex.submit(make_spec(study, 1, fake_command()))
    fin = finish(h)
    assert fin.exit_code == 0
    result = json.loads(h.spec.result_file.read_text())
    assert result["model_path"] == str(h.spec.model_dir / "model.zip")
    out = parse_outcome(h.spec.result_file, 0, objective="driving_score", cwd=study, trial_dir=h.spec.model_dir)
    assert out.run_status == "ok", out.message
    log = h.spec.log_file.read_text()
    assert "fake trial 1" in log and "not-mounted" not in log and "donkeyrl-ray" in log
    h.release()


def test_progress_and_cancel_through_the_actor(cluster, tmp_path):
    study = tmp_path / "study"
    script = tmp_path / "reporter.py"
    script.write_text(REPORTER)
    ex = executor(study, cluster, shared_dir=tmp_path / "not-mounted")
    s = make_spec(study, 1, "", argv=[sys.executable, str(script), str(study.resolve() / "models" / "trial-1")])
    h = ex.submit(s)
    wait_until(lambda: len(h.progress()) == 1, 60)
    assert h.progress()[0].race_score == 7.5 and not s.progress_file.exists()  # read through the actor
    fin = h.cancel("pruned", "below the cut")
    assert fin.killed == "pruned" and fin.kill_message == "below the cut"
    assert [json.loads(x)["race_score"] for x in s.progress_file.read_text().splitlines()] == [7.5]
    pgid = int(re.search(r"reporter pgid (\d+)", s.log_file.read_text()).group(1))
    assert group_gone(pgid)
    h.release()


def test_timeout_is_enforced_on_the_node(cluster, tmp_path):
    study = tmp_path / "study"
    ex = executor(study, cluster)
    h = ex.submit(make_spec(study, 1, fake_command("--mode", "hang"), timeout=1.0))
    fin = finish(h)
    assert fin.killed == "timeout" and "1 s timeout" in fin.kill_message
    pgid = int(re.search(r"pgid=(\d+)", h.spec.log_file.read_text()).group(1))
    assert group_gone(pgid)
    h.release()


def test_a_restarted_controller_adopts_the_running_trial(cluster, tmp_path):
    """The first controller (a separate driver process) submits and is SIGKILLed; the next one
    finds the detached actor, waits for it and gets the one result: the trial ran once."""
    study = (tmp_path / "study").resolve()
    (study / "running").mkdir(parents=True)
    spec_args = dict(study=str(study), trial=1, command=fake_command("--sleep", "3"))
    first = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_executor_ray import make_spec
        from pathlib import Path
        from donkeyrl.research.executors.ray_executor import RayExecutor
        ex = RayExecutor(Path({str(study)!r}), kill_grace=0.5, address={cluster.address!r})
        ex.submit(make_spec(Path({spec_args['study']!r}), 1, {spec_args['command']!r}))
        print("submitted", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", first], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9 and "submitted" in proc.stdout, proc.stderr[-2000:]
    ex = executor(study, cluster)
    (rec,) = ex.recover(study / "running", known=set())
    assert rec.handle is not None and "adopted" in rec.note
    fin = finish(rec.handle)
    assert fin.exit_code == 0 and fin.killed is None
    assert rec.handle.spec.log_file.read_text().count("fake trial 1 ") == 1
    rec.handle.release()
    # a trial already in the journal is stopped, not adopted; a vanished actor is lost
    (study / "running" / "trial-7.json").write_text(json.dumps(
        {"trial": 7, "executor": "ray", "actor": actor_name(ex.sid, 7), "params": {}}))
    (rec,) = ex.recover(study / "running", known=set())
    assert rec.handle is None and rec.status == "lost" and "no longer on the cluster" in rec.note


def test_a_dead_worker_node_gives_lost_and_the_cluster_goes_on(cluster, tmp_path):
    """Kill the only worker node mid-trial: both running trials end as lost, their process
    groups die with their actors; a replacement node runs the next trial."""
    study = tmp_path / "study"
    ex = executor(study, cluster)
    handles = [ex.submit(make_spec(study, n, fake_command("--mode", "hang"))) for n in (1, 2)]
    for h in handles:
        wait_until(lambda h=h: h.spec.log_file.exists() and "pgid=" in h.spec.log_file.read_text(), 60)
    pgids = [int(re.search(r"pgid=(\d+)", h.spec.log_file.read_text()).group(1)) for h in handles]
    cluster.kill_worker(0)
    fins = [finish(h, timeout=90) for h in handles]
    assert [f.killed for f in fins] == ["lost", "lost"]
    assert "died" in fins[0].kill_message
    wait_until(lambda: all(group_gone(p) for p in pgids), 30)
    for h in handles:
        h.release()
    cluster.add_worker(1)
    h = ex.submit(make_spec(study, 3, fake_command()))
    assert finish(h, timeout=90).exit_code == 0
    h.release()
