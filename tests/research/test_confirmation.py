"""Champions confirmed on fresh seeds, through the controller with the fake trainer."""

from __future__ import annotations

import json

import pytest

from donkeyrl.research import ChampionRule, Controller, fold_champion
from donkeyrl.research.study import StudyPaths, recover_unrecorded, write_confirm_file

from research_helpers import Collect, fake_command, make_config, records, run_study


def test_confirmation_runs_crown_by_the_mean_and_finish_past_trials(tmp_path, space_file):
    study = tmp_path / "s"
    # 1-2 random phase (2 is best: candidate), 3 confirms 2 (mean 70: crowned), 4 beats 70,
    # 5 confirms 4 (mean 62.5: dropped), 6 beats 70 and is the last trial: its confirmation (7)
    # still runs (one trial past --trials) and crowns it (mean 89)
    rewards = "50,80,60,75,50,90,88"
    summary, rep = run_study(study, space_file, trials=6, n_initial=2, confirm_seeds=1, seed=100,
                             trial_command=fake_command("--rewards", rewards))
    recs = records(study)
    assert [r.trial for r in recs] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.confirms for r in recs] == [None, None, 2, None, 4, None, 6]
    assert [r.crowned for r in recs] == [None, None, 2, None, None, None, 6]
    assert [r.trial for r in recs if r.champion] == [3, 7]
    by = {r.trial: r for r in recs}
    for run, origin in ((3, 2), (5, 4), (7, 6)):  # same params, their own fresh seeds
        assert by[run].params == by[origin].params
        assert by[run].seed == 100 + run != by[origin].seed
        assert by[run].used_params["seed"] == 100 + run
    manifest = json.loads((study / "models/champion/manifest.json").read_text())
    assert manifest["trial"] == 6 and manifest["configuration_trial"] == 6
    assert manifest["mean_objective"] == pytest.approx(89.0)
    assert [r["trial"] for r in manifest["runs"]] == [6, 7]
    assert (study / "models/champion/model.zip").read_bytes() == \
        (study / by[6].model_path).read_bytes()
    assert summary.completed == 7 and summary.stop_reason == "6 trials done"
    assert summary.champion.trial == 6 and summary.champion_mean == pytest.approx(89.0)
    assert summary.champion_runs == (6, 7)
    assert any("trial 4 is a candidate champion" in n for n in rep.notes)
    assert any("configuration of trial 4 not crowned: mean 62.5" in n for n in rep.notes)
    log = (study / "study.log").read_text()
    assert "(confirms trial 6)" in log and "NEW CHAMPION (trial 6)" in log
    # the fold over the journal (resume, repair, checkers) gives the same champion
    assert fold_champion(recs, ChampionRule(confirm_seeds=1, n_initial=2)).trial == 6
    # every run, confirmation runs included, is told to the optimizer: replicates
    _, rep = run_study(study, space_file, trials=7, n_initial=2, confirm_seeds=1, seed=100,
                       trial_command=fake_command("--rewards", rewards + ",1"))
    assert any("resumed: 7 records replayed (7 told to the optimizer" in n for n in rep.notes)


def test_a_failed_confirmation_run_drops_the_configuration(tmp_path, space_file):
    study = tmp_path / "s"
    summary, rep = run_study(study, space_file, trials=3, n_initial=1, confirm_seeds=2,
                             trial_command=fake_command("--plan", "2=crash"))
    recs = records(study)
    assert [(r.trial, r.run_status, r.confirms) for r in recs] == [
        (1, "ok", None), (2, "crashed", 1), (3, "ok", None), (4, "ok", 3), (5, "ok", 3)]
    best = max(recs[2:], key=lambda r: r.objective)  # the best run (ties: the earliest)
    assert [r.crowned for r in recs] == [None, None, None, None, best.trial]
    assert summary.champion_runs == (3, 4, 5)
    assert any("configuration of trial 1 not crowned: confirmation run 2 is not usable "
               "(crashed)" in n for n in rep.notes)


def test_k_zero_keeps_tc004(tmp_path, space_file):
    study = tmp_path / "s"
    run_study(study, space_file, trials=5, confirm_seeds=0, n_initial=3,
              trial_command=fake_command("--rewards", "50,80,60,90,70"))
    recs = records(study)
    assert [r.trial for r in recs if r.champion] == [1, 2, 4]
    assert [r.crowned for r in recs] == [1, 2, None, 4, None]
    assert all(r.confirms is None for r in recs)


class StopAt(Collect):
    """Stops the controller as soon as trial ``trial`` has started (it is then interrupted)."""

    def __init__(self, trial: int) -> None:
        super().__init__()
        self.trial = trial
        self.controller: Controller | None = None

    def started(self, trial, params, progress) -> None:
        super().started(trial, params, progress)
        if trial == self.trial and self.controller is not None:
            self.controller.stop_reason = "stopped by SIGTERM"


def test_pending_confirmation_is_rebuilt_from_the_journal(tmp_path, space_file):
    study = tmp_path / "s"
    cfg = make_config(study, space_file, trials=2, n_initial=1, confirm_seeds=2,
                      trial_command=fake_command("--plan", "2=hang"))
    rep = StopAt(2)
    ctl = Controller(cfg, rep)
    rep.controller = ctl
    ctl.run()
    recs = records(study)
    # the first confirmation run was interrupted: recorded with its role, counted for nothing
    assert [(r.trial, r.run_status, r.confirms) for r in recs] == [(1, "ok", None),
                                                                   (2, "interrupted", 1)]
    assert not any(r.champion for r in recs)
    # restart (even with --rerun-interrupted, which leaves confirmation runs to the fold)
    summary, rep = run_study(study, space_file, trials=2, n_initial=1, confirm_seeds=2,
                             rerun_interrupted=True)
    assert any("confirmation of trial 1 pending: 2 run(s) to go" in n for n in rep.notes)
    recs = records(study)
    assert [(r.trial, r.confirms, r.rerun_of) for r in recs[2:]] == [(3, 1, None), (4, 1, None)]
    assert recs[-1].champion and summary.champion_runs == (1, 3, 4)


def test_a_recovered_confirmation_run_keeps_its_role(tmp_path):
    paths = StudyPaths(tmp_path)
    paths.create()
    trial_dir = paths.trial_dir(7)
    trial_dir.mkdir()
    (trial_dir / "launch.json").write_text(json.dumps({"trial": 7, "params": {"lr": 1}, "seed": 7}))
    write_confirm_file(trial_dir, 5)
    (rec,) = recover_unrecorded(paths, set(), objective="race_score", cwd=tmp_path)
    assert (rec.trial, rec.run_status, rec.confirms) == (7, "interrupted", 5)


def test_resuming_a_study_of_an_older_version_says_the_rule_changed(tmp_path, space_file):
    study = tmp_path / "s"
    run_study(study, space_file, trials=1)
    info = json.loads((study / "study.json").read_text())
    assert info["confirm_seeds"] == 0 and info["n_initial"] == 1
    del info["confirm_seeds"]
    (study / "study.json").write_text(json.dumps(info))
    _, rep = run_study(study, space_file, trials=2, confirm_seeds=2)
    assert any("has no 'confirm_seeds' (the study was created by an older version): the journal "
               "is now folded with confirm_seeds=2" in n for n in rep.notes)
