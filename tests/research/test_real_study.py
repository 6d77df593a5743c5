"""One short REAL study: `donkeyrl research` running the real `donkeyrl train` on the embedded
simulator (tiny budgets), end to end: records, champion, a loadable model, resume."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from stable_baselines3 import PPO

from donkeyrl.research import fold_champion
from donkeyrl.research.journal import Journal

pytestmark = pytest.mark.slow


def _research(study, trials: int, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "donkeyrl", "research", "--study-dir", str(study), "--trials", str(trials),
           "--min-timesteps", "1500", "--max-timesteps", "2500", "--eval-episodes", "2", "--cooldown", "0",
           "--trial-timeout", "300", "--train-arg=--n-envs", "--train-arg=2", "--train-arg=--max-steps",
           "--train-arg=400", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


#: The loop alone: no validation race (driving_score objective), single-run champions, no final
#: test or report, so that the trials stay tiny.
LOOP_ONLY = ("--train-arg=--validation", "--train-arg=false", "--objective", "driving_score",
             "--confirm-seeds", "0", "--no-final-test", "--no-report")


def test_real_study_end_to_end_and_resume(tmp_path):
    study = tmp_path / "study"
    done = _research(study, 2, *LOOP_ONLY)
    assert done.returncode == 0, done.stderr[-2000:]
    records = Journal(study / "results.jsonl").read().records
    assert [r.trial for r in records] == [1, 2]
    assert all(r.run_status == "ok" for r in records), [r.message for r in records]
    for r in records:
        # the searched parameters reached the trainer: it reports back the values it used
        used = json.loads((study / f"models/trial-{r.trial}/result.json").read_text())["params"]
        assert used["learning_rate"] == pytest.approx(r.params["learning_rate"])
        assert used["timesteps"] == r.params["timesteps"]
        for name in ("tracks", "frame_stack", "throttle_max", "net_width"):  # driving knobs too
            used_value = used[name][0] if name == "tracks" else used[name]
            want = r.params[name]
            assert used_value == (pytest.approx(want) if isinstance(want, float) else want), name
        assert r.driving_score is not None and r.mean_reward is not None
    champ = fold_champion(records)
    manifest = json.loads((study / "models/champion/manifest.json").read_text())
    assert manifest["trial"] == champ.trial
    model = PPO.load(study / "models/champion/model.zip", device="cpu")
    assert model.num_timesteps >= 1500
    assert "champion metrics:" in done.stdout
    # resume: asking for 3 trials runs exactly one more and keeps the first two untouched
    assert "dry run of one trial's command line passed" in (study / "study.log").read_text()
    again = _research(study, 3, "--no-preflight", *LOOP_ONLY)  # the setup was checked by the first run
    assert again.returncode == 0, again.stderr[-2000:]
    after = Journal(study / "results.jsonl").read().records
    assert [r.trial for r in after] == [1, 2, 3]
    assert [r.params for r in after[:2]] == [r.params for r in records]


def test_real_study_confirms_its_champion_and_ends_with_the_final_test(tmp_path):
    """The whole issue end to end, tiny: race_score objective (the validation race), the
    candidate confirmed on one fresh seed, the baseline trained with the champion's budget and
    seed, champion / baseline / expert raced on the test set, the table printed last."""
    from donkeyrl.rl.config import schema
    from donkeyrl.sim.tracksets import test_tracks

    study = tmp_path / "study"
    done = _research(study, 1, "--n-initial", "1", "--confirm-seeds", "1", "--min-timesteps",
                     "1000", "--max-timesteps", "1200", "--no-report", timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    records = Journal(study / "results.jsonl").read().records
    assert [(r.trial, r.run_status, r.confirms) for r in records] == [(1, "ok", None), (2, "ok", 1)]
    assert records[1].params == records[0].params and records[1].seed != records[0].seed
    assert all(r.objective_name == "race_score" and r.objective is not None for r in records)
    assert records[1].champion and records[1].crowned in (1, 2)
    manifest = json.loads((study / "models/champion/manifest.json").read_text())
    assert [r["trial"] for r in manifest["runs"]] == [1, 2]
    assert manifest["mean_objective"] == pytest.approx((records[0].objective + records[1].objective) / 2)
    # every result field an --objective may name is in a real result file
    result = json.loads((study / "models/trial-1/result.json").read_text())
    missing = [k for k in schema()["result_fields"] if k not in result]
    assert not missing, missing
    # the final test: the documented baseline with the champion's budget and seed
    champ = next(r for r in records if r.trial == manifest["trial"])
    base = json.loads((study / "final/baseline/result.json").read_text())
    assert base["params"]["agent"] == "ppo" and base["params"]["tracks"] == ["mixed"]
    assert base["params"]["domain_randomization"] is True
    assert base["params"]["timesteps"] == champ.params["timesteps"] and base["seed"] == champ.seed
    doc = json.loads((study / "head_to_head.json").read_text())
    assert doc["set"] == "test" and doc["tracks"] == list(test_tracks())
    assert set(doc["methods"]) == {"model", "baseline", "expert"}
    assert len(doc["rows"]) == 3 * len(test_tracks())
    table = (study / "head_to_head.txt").read_text().rstrip()
    assert done.stdout.rstrip().endswith(table)
    assert json.loads((study / "final/final.json").read_text())["champion_trial"] == champ.trial


def test_real_fine_tuning_study(tmp_path):
    """``research --init-model``: every trial starts from the saved model (the real trainer checks
    the contract in the preflight's dry run and when it trains)."""
    model = tmp_path / "base"
    trained = subprocess.run([sys.executable, "-m", "donkeyrl", "train", "--agent", "ppo", "--timesteps",
                              "300", "--n-envs", "1", "--eval-episodes", "1", "--validation", "false",
                              "--obs-width", "48", "--obs-height", "24", "--save-dir", str(model)],
                             capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-2000:]
    study = tmp_path / "study"
    done = _research(study, 1, "--init-model", str(model), "--min-timesteps", "300", "--max-timesteps",
                     "400", *LOOP_ONLY)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (rec,) = Journal(study / "results.jsonl").read().records
    assert rec.run_status == "ok", rec.message
    assert rec.used_params["init_model"] == str(model.resolve())
    assert rec.params["obs_width"] == 48 and rec.used_params["obs_width"] == 48
    assert rec.params["actions"] == "continuous" and "n_steer" not in rec.params
    # an extra argument that breaks the model's contract is refused before the first trial
    other = tmp_path / "other"
    bad = _research(other, 1, "--init-model", str(model), "--train-arg=--obs-width", "--train-arg=96",
                    *LOOP_ONLY)
    assert bad.returncode == 2
    assert "does not fit this trial" in bad.stderr and "obs_width: model 48, trial 96" in bad.stderr
    assert not other.exists()
