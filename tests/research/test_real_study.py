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


def _research(study, trials: int, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "donkeyrl", "research", "--study-dir", str(study), "--trials", str(trials),
           "--min-timesteps", "1500", "--max-timesteps", "2500", "--eval-episodes", "2", "--cooldown", "0",
           "--trial-timeout", "300", "--train-arg=--n-envs", "--train-arg=2", "--train-arg=--max-steps",
           "--train-arg=400", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_real_study_end_to_end_and_resume(tmp_path):
    study = tmp_path / "study"
    done = _research(study, 2)
    assert done.returncode == 0, done.stderr[-2000:]
    records = Journal(study / "results.jsonl").read().records
    assert [r.trial for r in records] == [1, 2]
    assert all(r.run_status == "ok" for r in records), [r.message for r in records]
    for r in records:
        # the searched parameters reached the trainer: it reports back the values it used
        used = json.loads((study / f"models/trial-{r.trial}/result.json").read_text())["params"]
        assert used["learning_rate"] == pytest.approx(r.params["learning_rate"])
        assert used["n_steer"] == r.params["n_steer"] and used["timesteps"] == r.params["timesteps"]
        assert r.driving_score is not None and r.mean_reward is not None
    champ = fold_champion(records)
    manifest = json.loads((study / "models/champion/manifest.json").read_text())
    assert manifest["trial"] == champ.trial
    model = PPO.load(study / "models/champion/model.zip", device="cpu")
    assert model.num_timesteps >= 1500
    assert "champion metrics:" in done.stdout
    # resume: asking for 3 trials runs exactly one more and keeps the first two untouched
    assert "dry run of one trial's command line passed" in (study / "study.log").read_text()
    again = _research(study, 3, "--no-preflight")  # the setup was checked by the first run
    assert again.returncode == 0, again.stderr[-2000:]
    after = Journal(study / "results.jsonl").read().records
    assert [r.trial for r in after] == [1, 2, 3]
    assert [r.params for r in after[:2]] == [r.params for r in records]
