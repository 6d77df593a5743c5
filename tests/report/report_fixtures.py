"""Builders for the report tests: tiny real models, and study directories written by the research
package's own writers (Journal, ChampionStore) around them.

The studies' objective values are test inputs chosen so the expected picture is known (only the
learning rate matters); every model in them is a real SB3 model trained for a few hundred steps.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from donkeyrl.bo import SearchSpace
from donkeyrl.cli import main
from donkeyrl.research.champion import ChampionStore, beats
from donkeyrl.research.journal import Journal
from donkeyrl.research.records import TrialRecord

SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "n_steer": {"type": "int", "low": 3, "high": 9},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
    "actions": {"type": "fixed", "value": "discrete"},
}
N_RANDOM = 3


def train_tiny(save_dir: Path, *, agent: str = "ppo", actions: str = "continuous", timesteps: int = 256,
               seed: int = 0) -> Path:
    """A real model trained for ``timesteps`` steps by ``donkeyrl train`` (in process)."""
    args = ["train", "--agent", agent, "--timesteps", str(timesteps), "--n-envs", "1", "--eval-episodes", "0",
            "--max-steps", "200", "--seed", str(seed), "--save-dir", str(save_dir), "--progress-interval", "0.05",
            "--validation", "false", "--throttle-min", "0.2"]  # an untrained policy still moves
    if agent == "ppo":
        args += ["--actions", actions, "--n-steps", "64", "--batch-size", "32", "--n-epochs", "1"]
    else:
        args += ["--learning-starts", "64", "--buffer-size", "1000", "--batch-size", "32"]
    assert main(args) == 0
    assert (save_dir / "model.zip").is_file() and (save_dir / "trial_config.json").is_file()
    return save_dir


def objective(params: dict[str, Any]) -> float:
    """The test study's objective: only the learning rate matters (20 at 1e-5 up to 80 at 1e-2)."""
    return 20.0 + 20.0 * (math.log10(params["learning_rate"]) + 5.0)


def build_study(root: Path, model_dir: Path, *, n_ok: int = 10, head_to_head: bool = True) -> dict[str, Any]:
    """A study directory: ``n_ok`` usable trials, then a timeout, a crash, an interrupted trial and
    a reward-hacking trial; the champion installed by ChampionStore; GP proposal lines in study.log
    after the first N_RANDOM trials; curves copied from the tiny model (one removed, one torn)."""
    root.mkdir(parents=True)
    (root / "study.json").write_text(json.dumps({"agent": "ppo", "objective": "driving_score", "space": SPACE,
                                                 "created_at": "2026-01-01T00:00:00"}))
    space = SearchSpace.from_dict(SPACE)
    rng = np.random.default_rng(7)
    journal = Journal(root / "results.jsonl")
    store = ChampionStore(root)
    champ: TrialRecord | None = None
    log_lines = []
    failures = [("timeout", "killed after --trial-timeout 300 s"),
                ("crashed", "exit code 1: ValueError: n_steer out of range"),
                ("interrupted", "stopped by SIGTERM while the trial ran")]
    records = []
    for trial in range(1, n_ok + len(failures) + 2):
        params = space.sample(rng, 1)[0]
        if trial > N_RANDOM:
            log_lines.append(f"2026-01-01T00:{trial:02d}:00 proposal for trial {trial}: top candidates {params}")
        tdir = root / "models" / f"trial-{trial}"
        tdir.mkdir(parents=True)
        k = trial - n_ok - 1
        if k < 0 or k == len(failures):  # usable (or, the last one, flagged for reward hacking)
            for name in ("model.zip", "trial_config.json", "curve.jsonl"):
                shutil.copy(model_dir / name, tdir / name)
            value = objective(params) if k < 0 else 99.0
            rec = TrialRecord(trial, params, "ok", objective_name="driving_score", objective=value,
                              driving_score=value, mean_reward=value / 2, elapsed_sec=30.0 + trial,
                              model_path=f"models/trial-{trial}/model.zip", seed=trial, noise=1.0,
                              reward_hacking=k == len(failures),
                              message="reward hacking: drives far without progress" if k >= 0 else "")
        else:
            status, message = failures[k]
            rec = TrialRecord(trial, params, status, message, objective_name="driving_score",
                              elapsed_sec=300.0 if status == "timeout" else 5.0, seed=trial)
        rec.champion = beats(rec, champ)
        journal.append(rec)
        if rec.champion:
            champ = rec
            store.install(rec)
        records.append(rec)
    (root / "models" / "trial-2" / "curve.jsonl").unlink()  # an older trial without a curve
    with open(root / "models" / "trial-3" / "curve.jsonl", "a") as fh:
        fh.write('{"steps": 99999, "mean_rew')  # a torn last line of a killed trainer
    (root / "study.log").write_text("\n".join(log_lines) + "\n")
    if head_to_head:
        (root / "head_to_head.json").write_text(json.dumps({
            "set": "test", "tracks": ["warren", "canyon"],
            "methods": {"champion": "the study's champion", "expert": "the scripted expert"},
            "rows": [{"method": "champion", "track": "warren", "lap_rate": 1.0, "best_lap_time": 16.1,
                      "mean_lap_time": 16.3, "mean_abs_cte": 0.3, "off_track_count": 0, "race_score": 101.2,
                      "pit_stops": 0},
                     {"method": "expert", "track": "warren", "lap_rate": 1.0, "best_lap_time": 14.75,
                      "mean_lap_time": 14.75, "mean_abs_cte": 0.1, "off_track_count": 0, "race_score": 110.0},
                     {"method": "baseline", "track": "canyon", "lap_rate": 0.0, "best_lap_time": None,
                      "mean_lap_time": None, "mean_abs_cte": 2.5, "off_track_count": 1, "race_score": 12.0}]}))
    return {"records": records, "champion": champ}


def tree_digest(root: Path, skip: tuple[str, ...] = ("report-cache", "report.html")) -> dict[str, bytes]:
    """Every file under ``root`` (except the report's own outputs) with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] not in skip}
