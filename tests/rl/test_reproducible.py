"""The same ``donkeyrl train`` command with the same seed gives a bit-identical result file.

Each agent of the registry trains twice, each time in a fresh interpreter (its own hash seed,
fresh global RNGs, fresh numba/torch state) and its own working directory, with the same relative
paths; the two result files must be equal except for wall-clock fields. Budgets are tiny but
every agent makes gradient updates, evaluates, and writes lap times and driving metrics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from donkeyrl.rl.algorithms import AGENTS
from donkeyrl.rl.config import VEC_ENVS

pytestmark = pytest.mark.slow

#: Result-file fields measured with the wall clock.
TIMING = {"elapsed_sec", "train_steps_per_sec"}
#: Per-agent flags for a run of a few seconds that still updates the networks.
BUDGET: dict[str, list[str]] = {
    "ppo": ["--timesteps", "256", "--n-envs", "2", "--n-steps", "64", "--batch-size", "64", "--n-epochs", "2"],
    "dqn": ["--timesteps", "300", "--n-envs", "2", "--learning-starts", "100", "--batch-size", "32",
            "--buffer-size", "1000"],
    "sac": ["--timesteps", "300", "--n-envs", "2", "--learning-starts", "100", "--batch-size", "32",
            "--buffer-size", "1000"],
    "tqc": ["--timesteps", "300", "--n-envs", "2", "--learning-starts", "100", "--batch-size", "32",
            "--buffer-size", "1000"],
}
COMMON = ["--eval-episodes", "2", "--max-steps", "60", "--save-dir", "run", "--result-file", "result.json"]


def train(workdir: Path, argv: list[str]) -> dict[str, Any]:
    workdir.mkdir()
    env = dict(os.environ)
    env.pop("PYTHONHASHSEED", None)  # each run gets its own random hash seed
    proc = subprocess.run([sys.executable, "-m", "donkeyrl", "train", *argv], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((workdir / "result.json").read_text())
    assert result["run_status"] == "ok", result.get("message")
    return result


def without_timing(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in TIMING}


@pytest.mark.parametrize("agent", AGENTS)
def test_same_seed_same_result_file(tmp_path: Path, agent: str) -> None:
    argv = ["--agent", agent, *BUDGET[agent], *COMMON, "--track", "generated_track", "oval"]
    first, second = train(tmp_path / "a", [*argv, "--seed", "7"]), train(tmp_path / "b", [*argv, "--seed", "7"])
    assert first["episode_rewards"] and first["episodes"] and "lap_times" in first
    assert without_timing(first) == without_timing(second)


def test_the_seed_matters(tmp_path: Path) -> None:
    argv = ["--agent", "ppo", *BUDGET["ppo"], *COMMON, "--track", "generated_track", "oval"]
    first, other = train(tmp_path / "a", [*argv, "--seed", "7"]), train(tmp_path / "b", [*argv, "--seed", "8"])
    assert first["episode_rewards"] != other["episode_rewards"]


@pytest.mark.skipif("batched" not in VEC_ENVS, reason="the trial config does not offer vec_env batched yet")
def test_same_seed_same_result_file_on_the_batched_path(tmp_path: Path) -> None:
    argv = ["--agent", "ppo", *BUDGET["ppo"], *COMMON, "--seed", "7", "--vec-env", "batched", "--track",
            "procedural", "--domain-randomization", "true"]
    first, second = train(tmp_path / "a", argv), train(tmp_path / "b", argv)
    assert without_timing(first) == without_timing(second)
