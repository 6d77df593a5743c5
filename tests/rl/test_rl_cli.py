"""`donkeyrl train` and `donkeyrl evaluate` end to end on the fake env (make_env patched)."""

from __future__ import annotations

import json

import pytest
from stable_baselines3 import PPO

import donkeyrl.rl.envbuild as envbuild
from donkeyrl.cli import main


@pytest.fixture
def patched(monkeypatch, fake_factory):
    factory, built = fake_factory
    monkeypatch.setattr(envbuild, "default_env_factory", lambda: factory)
    return built


def test_train_cli_tc005_and_evaluate_cli(tmp_path, patched, capsys):
    result_file = tmp_path / "out" / "result.json"
    code = main(["train", "--agent", "ppo", "--timesteps", "100", "--n-envs", "2", "--n-steps", "32",
                 "--batch-size", "32", "--learning-rate", "0.0005", "--eval-episodes", "2",
                 "--max-steps", "40", "--save-dir", str(tmp_path / "run"), "--seed", "1",
                 "--result-file", str(result_file), "--reward-shaping", "--progress-interval", "0.01"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "eval episode 1: reward" in out and "eval episode 2: reward" in out and "steps/s" in out
    assert all(env.closed for env in patched)
    result = json.loads(result_file.read_text())
    assert result["run_status"] == "ok" and result["params"]["learning_rate"] == 0.0005
    assert result["params"]["reward"] == "speed" and result["seed"] == 1
    assert PPO.load(tmp_path / "run" / "model.zip").learning_rate == 0.0005

    code = main(["evaluate", "--model", str(tmp_path / "run" / "model.zip"), "--track", "generated_track",
                 "oval", "--episodes", "1", "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    rows = [json.loads(line) for line in lines]
    assert [r["track"] for r in rows] == ["generated_track", "oval"]
    for key in ("mean_reward", "std_reward", "episode_rewards", "laps", "best_lap_time",
                "mean_abs_cte", "completion", "driving_score"):
        assert key in rows[0]
    assert rows[0]["generalisation_gap"] is None
    assert rows[1]["generalisation_gap"] == pytest.approx(rows[0]["mean_reward"] - rows[1]["mean_reward"])
    assert rows[1]["driving_score_gap"] == pytest.approx(rows[0]["driving_score"] - rows[1]["driving_score"])

    code = main(["evaluate", "--model", str(tmp_path / "run"), "--track", "oval", "--episodes", "1"])
    assert code == 0 and "oval" in capsys.readouterr().out


def test_evaluate_cli_errors(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "nope.zip")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "model.zip").write_text("garbage")
    assert main(["evaluate", "--model", str(tmp_path / "model.zip")]) == 2
    assert "not a saved SB3 model" in capsys.readouterr().err


def test_searched_booleans_take_a_value():
    from donkeyrl.cli import build_parser
    from donkeyrl.cli.train import config_from_args

    parser = build_parser()
    cfg = config_from_args(parser.parse_args(["train", "--grey", "false", "--domain-randomization", "true",
                                              "--actions", "discrete", "--learning-rate", "0.001",
                                              "--n-steer", "5"]))
    assert cfg.grey is False and cfg.domain_randomization is True
    assert cfg.learning_rate == 0.001 and cfg.n_steer == 5
    cfg = config_from_args(parser.parse_args(["train", "--domain-randomization"]))
    assert cfg.domain_randomization is True and cfg.grey is True
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--grey", "maybe"])



def test_evaluate_rejects_a_nonsense_lap_limit(tmp_path, capsys):
    from donkeyrl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--model", str(tmp_path / "m.zip"), "--max-laps", "0"])
    assert exc.value.code == 2
    assert "--max-laps: 0 must be >= 1" in capsys.readouterr().err
