"""Early stopping through the controller: checkpoints in, ``pruned`` records out."""

from __future__ import annotations

import subprocess
import sys

import pytest

from donkeyrl.bo import Optimizer
from donkeyrl.research import TrialRecord
from donkeyrl.research.pruning import PruneConfig
from donkeyrl.research.study import tell_records

from research_helpers import fake_command, records, run_study

REWARDS = [60, 70, 80, 10, 90, 20, 30, 85]


@pytest.mark.slow
def test_asha_stops_the_trials_below_the_cut_by_hand(tmp_path, space_file):
    """Fake trials report race_score = value x fraction at 1/2 of their run. With eta 2 and two
    peers needed: trial 3 (40 vs 30, 35: top 1 of 3) goes on; trial 4 (5: top 2 of 4 is 35)
    stops; 5 (45) goes on; 6 (10) and 7 (15) stop; 8 (42.5: top 4 of 8 is 35) goes on."""
    study = tmp_path / "study"
    summary, rep = run_study(
        study, space_file, trials=8, confirm_seeds=0,
        trial_command=fake_command("--sleep", "1.2", "--rewards", ",".join(map(str, REWARDS))),
        prune=PruneConfig(rule="asha", fractions=(0.5,), reduction_factor=2, min_peers=2))
    recs = {r.trial: r for r in records(study)}
    assert {t: r.run_status for t, r in recs.items()} == {
        1: "ok", 2: "ok", 3: "ok", 4: "pruned", 5: "ok", 6: "pruned", 7: "pruned", 8: "ok"}
    assert summary.completed == 8 and summary.champion.trial == 5
    p = recs[4]
    assert p.objective == 5.0 and p.metrics["pruned_fraction"] == 0.5 and p.metrics["pruned_cut"] == 35
    assert p.metrics["pruned_steps"] == 500 and len(p.metrics["checkpoints"]) == 1
    assert p.model_path == "models/trial-4/model.zip" and (study / p.model_path).is_file()
    assert "below the cut 35" in p.message and not p.champion
    assert recs[4].elapsed_sec < recs[3].elapsed_sec  # stopped half-way
    assert all((study / "models" / f"trial-{t}" / "progress.jsonl").exists() for t in recs)


@pytest.mark.slow
def test_without_pruning_trials_take_no_checkpoints(tmp_path, space_file):
    study = tmp_path / "study"
    run_study(study, space_file, trials=2, confirm_seeds=0, trial_command=fake_command("--sleep", "0.3"))
    assert not list(study.glob("models/trial-*/progress.jsonl"))


def test_a_pruned_trial_is_told_as_a_failure_and_a_lost_one_not_at_all():
    from donkeyrl.bo import SearchSpace
    space = SearchSpace.from_dict({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    opt = Optimizer(space, n_initial=1, seed=0)
    recs = [TrialRecord(1, {"x": 0.2}, "ok", objective_name="race_score", objective=50.0),
            TrialRecord(2, {"x": 0.8}, "pruned", objective_name="race_score", objective=3.0),
            TrialRecord(3, {"x": 0.5}, "lost", objective_name="race_score")]
    assert tell_records(opt, recs, "race_score", "test") == (2, 0)
    assert opt.n_usable == 1  # the pruned one is a failure, not a (partial) success


@pytest.mark.parametrize("args, message", [
    (["--prune", "asha", "--objective", "driving_score"],
     "early stopping (prune='asha') needs an objective the training checkpoints report"),
    (["--ray-address", "127.0.0.2:1"], "--ray-address needs --executor ray"),
    (["--prune", "asha", "--prune-fractions", "0.5,2"], "checkpoint fraction '2' must be in (0, 1)"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial"),
])
def test_bad_executor_and_prune_flags_are_one_line(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "donkeyrl", "research", "--study-dir",
                           str(tmp_path / "s"), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists()
