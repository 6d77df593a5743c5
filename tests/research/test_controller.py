"""The study loop with fast injected trials: volume, failures, timeouts, parallelism, lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from donkeyrl.research import Controller, StudyError, StudyLock, StudyLockedError, fold_champion

from research_helpers import (fake_command, group_gone, live_children, make_config, records,
                       run_study)


def assert_champion_consistent(study):
    recs = records(study)
    champ = fold_champion(recs)
    running = None
    for r in recs:  # every champion flag equals the fold at the time of the record
        flag = r.usable and r.model_path is not None and (
            running is None or r.objective > running.objective)
        assert r.champion == flag, r.trial
        running = r if flag else running
    manifest = json.loads((study / "models/champion/manifest.json").read_text())
    assert manifest["trial"] == champ.trial
    assert manifest["objective"] == champ.objective
    assert (study / "models/champion/model.zip").read_bytes() == \
        (study / champ.model_path).read_bytes()


def test_hundred_trials_no_leftover_processes(tmp_path, space_file):
    study = tmp_path / "study"
    summary, rep = run_study(study, space_file, trials=100)
    recs = records(study)
    assert [r.trial for r in recs] == list(range(1, 101))
    assert all(r.run_status == "ok" for r in recs)
    assert summary.completed == 100 and summary.stop_reason == "100 trials done"
    pgids = {r.metrics["pgid"] for r in recs}
    assert len(pgids) == 100 and os.getpgid(0) not in pgids  # each trial in its own group
    assert all(group_gone(g) for g in pgids)
    assert live_children() == []
    assert not list((study / "running").iterdir())
    assert_champion_consistent(study)
    # the GP took over after the random phase (n_initial, default 5) and logged its top-5 candidates
    assert all(len(c) == 0 for _, _, c in rep.proposals[:5])
    assert all(len(c) == 5 for _, _, c in rep.proposals[5:])
    assert all(c.std >= 0 and c.ucb >= c.mean - 1e-9 for c in rep.proposals[-1][2])
    assert "trial 100 ok" in (study / "study.log").read_text()
    assert (study / "logs/trial-100.log").read_text().count("fake trial 100") == 1


def test_failures_are_recorded_and_study_continues(tmp_path, space_file):
    study = tmp_path / "study"
    cmd = fake_command("--plan", "2=crash,3=garbage,4=nan,5=noresult,6=diverged,7=hack,8=spawn")
    summary, rep = run_study(study, space_file, trials=9, trial_command=cmd)
    status = {r.trial: r.run_status for r in records(study)}
    assert status == {1: "ok", 2: "crashed", 3: "bad_result", 4: "nan", 5: "no_result",
                      6: "diverged", 7: "ok", 8: "ok", 9: "ok"}
    recs = {r.trial: r for r in records(study)}
    assert "simulated crash" in recs[2].message and recs[2].exit_code == 3
    assert recs[6].message == "loss became NaN"
    assert recs[7].reward_hacking and not recs[7].champion
    # the grandchild left by trial 8 in its process group was killed with the group
    grandchild = int((study / "models/trial-8/grandchild.pid").read_text())
    if os.path.exists(f"/proc/{grandchild}"):
        with open(f"/proc/{grandchild}/stat") as fh:
            assert fh.read().split(") ")[1][0] == "Z"
    assert live_children() == []
    assert_champion_consistent(study)


def test_hanging_trial_killed_at_timeout(tmp_path, space_file):
    study = tmp_path / "study"
    cmd = fake_command("--plan", "2=hang,3=stubborn")
    t0 = time.monotonic()
    run_study(study, space_file, trials=4, trial_command=cmd, trial_timeout=1.5)
    recs = {r.trial: r for r in records(study)}
    assert [recs[t].run_status for t in (1, 2, 3, 4)] == ["ok", "timeout", "timeout", "ok"]
    assert "1.5 s timeout" in recs[2].message
    assert recs[2].exit_code == -15  # SIGTERM was enough
    assert recs[3].exit_code == -9   # SIGTERM ignored: SIGKILL after the grace period
    assert recs[2].elapsed_sec >= 1.5
    assert time.monotonic() - t0 < 60
    assert live_children() == []


def test_two_workers_run_concurrently_with_distinct_proposals(tmp_path, space_file):
    study = tmp_path / "study"
    run_study(study, space_file, trials=6, workers=2, trial_command=fake_command("--sleep", "0.6"))
    recs = sorted(records(study), key=lambda r: r.trial)
    assert len(recs) == 6 and all(r.run_status == "ok" for r in recs)
    spans = [(r.metrics["started_at"], r.metrics["ended_at"]) for r in recs]
    overlaps = sum(1 for i in range(len(spans)) for j in range(i + 1, len(spans))
                   if spans[i][0] < spans[j][1] and spans[j][0] < spans[i][1])
    assert overlaps >= 2
    keys = {json.dumps(r.params, sort_keys=True) for r in recs}
    assert len(keys) == 6
    assert live_children() == []


def test_lock_refuses_second_controller(tmp_path, space_file):
    study = tmp_path / "study"
    study.mkdir()
    with StudyLock(study), pytest.raises(StudyLockedError, match=f"pid {os.getpid()}"):
        Controller(make_config(study, space_file)).run()
    # a lock left by a dead process is stale and taken over
    (study / "controller.lock").write_text(json.dumps({"pid": 2**22 + 7, "host": os.uname()[1],
                                                       "start_time": 1}))
    summary, _ = run_study(study, space_file, trials=1)
    assert summary.completed == 1


def test_lock_refuses_second_controller_process(tmp_path, space_file):
    study = tmp_path / "study"
    cmd = [sys.executable, "-m", "donkeyrl", "research", "--study-dir", str(study),
           "--search-space", str(space_file), "--trials", "2", "--cooldown", "0",
           "--trial-command", fake_command("--mode", "hang")]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not list((study / "running").glob("trial-*.json")) if (study / "running").exists() \
                else True:
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert second.returncode == 3
        assert f"in use by controller pid {first.pid}" in second.stderr
    finally:
        first.terminate()
        first.wait(timeout=30)


def test_unwritable_study_dir_is_a_clear_error(tmp_path, space_file):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StudyError, match="cannot use study directory .*file/study"):
        Controller(make_config(blocker / "study", space_file)).run()


def test_disk_full_mid_study_stops_cleanly_with_records_intact(tmp_path, space_file, monkeypatch):
    from donkeyrl.research import journal as journal_mod
    study = tmp_path / "study"
    run_study(study, space_file, trials=2)
    before = (study / "results.jsonl").read_bytes()
    real = journal_mod.Journal._write_all

    def full(fd, data):
        import errno
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_mod.Journal, "_write_all", staticmethod(full))
    with pytest.raises(StudyError, match="disk is full"):
        run_study(study, space_file, trials=4)
    assert (study / "results.jsonl").read_bytes() == before
    assert live_children() == []
    # space freed: the next run recovers the finished trial from its result file
    monkeypatch.setattr(journal_mod.Journal, "_write_all", staticmethod(real))
    run_study(study, space_file, trials=4)
    recs = records(study)
    assert [r.trial for r in recs] == [1, 2, 3, 4]
    assert all(r.run_status == "ok" for r in recs)
    assert "recovered at restart" in recs[2].message
    assert_champion_consistent(study)


def test_tc004_champions_at_trials_1_2_4(tmp_path, space_file):
    study = tmp_path / "study"
    run_study(study, space_file, trials=5, objective="mean_reward",
              trial_command=fake_command("--rewards", "50,80,60,90,70"))
    recs = records(study)
    assert [r.mean_reward for r in recs] == [50, 80, 60, 90, 70]
    assert [r.trial for r in recs if r.champion] == [1, 2, 4]
    manifest = json.loads((study / "models/champion/manifest.json").read_text())
    assert manifest["trial"] == 4 and manifest["mean_reward"] == 90
    assert_champion_consistent(study)


def test_resume_continues_numbering_and_warm_start(tmp_path, space_file):
    study = tmp_path / "study"
    # n_initial=2: 3 replayed records are past the random phase, so the model must propose
    run_study(study, space_file, trials=3, n_initial=2)
    summary, rep = run_study(study, space_file, trials=5, n_initial=2)
    assert [r.trial for r in records(study)] == [1, 2, 3, 4, 5]
    assert summary.completed == 5 and summary.new_records == 2
    assert any("resumed: 3 records replayed" in n for n in rep.notes)
    # the replayed study is past the random phase: the first new proposal is model-based
    assert len(rep.proposals[0][2]) == 5
    other = tmp_path / "other"
    summary, rep = run_study(other, space_file, trials=1, warm_start=(study / "results.jsonl",),
                             n_initial=2)
    assert any("5 records used" in n for n in rep.notes)
    assert len(rep.proposals[0][2]) == 5
    # the warm start is remembered: resuming without --warm-start still learns from it
    summary, rep = run_study(other, space_file, trials=2, n_initial=2)
    assert any("5 records used" in n for n in rep.notes)


def test_until_converged_stops_early(tmp_path):
    space = tmp_path / "tiny.json"
    space.write_text(json.dumps({"n_steer": {"type": "int", "low": 4, "high": 6}}))
    summary, rep = run_study(tmp_path / "s", space, trials=30, until_converged=True)
    assert summary.stop_reason == "converged" and summary.completed < 30
    assert any("converged" in n for n in rep.notes)


def test_reward_hacking_and_interrupted_trials_stay_out_of_the_surrogate(tmp_path, space_file):
    from donkeyrl.bo import Optimizer
    from donkeyrl.research import TrialRecord, load_space
    from donkeyrl.research.study import tell_records
    opt = Optimizer(load_space(space_file))
    p = {"learning_rate": 1e-3, "n_steer": 5, "timesteps": 6000}
    recs = [TrialRecord(1, p, "ok", objective=1.0),
            TrialRecord(2, p, "ok", objective=99.0, reward_hacking=True),
            TrialRecord(3, p, "interrupted"),
            TrialRecord(4, p, "timeout"),
            TrialRecord(5, {"other": 1}, "ok", objective=2.0)]
    assert tell_records(opt, recs, "driving_score", "test") == (2, 1)
    assert opt.n_observations == 2 and opt.n_usable == 1


def test_searched_param_that_never_reaches_the_trainer_is_flagged(tmp_path):
    space = tmp_path / "s.json"
    space.write_text(json.dumps({"n_steer": {"type": "int", "low": 3, "high": 9},
                                 "gamma": {"type": "fixed", "value": 0.5}}))
    # the fake trainer reports the gamma it parsed; make it ignore the flag by overriding it
    run_study(tmp_path / "s", space, trials=1, extra_args=("--gamma", "0.9"))
    (rec,) = records(tmp_path / "s")
    assert rec.run_status == "ok"
    assert "searched parameters not applied: gamma: searched 0.5, trainer used 0.9" in rec.message
