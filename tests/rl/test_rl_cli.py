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


def test_print_schema_is_json_for_tools(capsys):
    assert main(["train", "--print-schema"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "tqc" in doc["agents"] and doc["params"]["gae_lambda"]["agents"] == ["ppo"]
    assert doc["params"]["n_envs"]["high"] == 128 and doc["params"]["port"]["high"] == 65535


def test_help_is_generated_from_the_declarations(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "Parallel environments collecting experience" in out and "range [1, 128]" in out
    assert "default: ppo 0.0003, dqn 0.001, sac 0.00073, tqc 0.00073" in out
    assert "GAE lambda" in out and "agents: ppo" in out and "--print-schema" in out and "--check" in out


def test_check_builds_once_and_writes_nothing(tmp_path, patched, capsys):
    save = tmp_path / "trial-1"
    code = main(["train", "--agent", "tqc", "--timesteps", "1000", "--save-dir", str(save),
                 "--result-file", str(save / "result.json"), "--tensorboard", str(tmp_path / "tb"), "--check"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(out) == 1 and out[0].startswith("ok: tqc (TQC, ")
    assert "observation 32x64x2" in out[0] and "device cpu" in out[0]
    assert patched and all(env.closed for env in patched)
    assert not save.exists() and not (tmp_path / "tb").exists()


def test_check_fails_in_one_line_on_an_env_that_cannot_be_built(tmp_path, capsys):
    code = main(["train", "--track", "no-such-track", "--save-dir", str(tmp_path / "t"), "--check"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "check failed" in err[0] and "no-such-track" in err[0]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the error without CUDA")
def test_device_cuda_without_cuda_is_refused_up_front(tmp_path, capsys):
    code = main(["train", "--device", "cuda", "--save-dir", str(tmp_path / "t"), "--check"])
    assert code == 2 and "no CUDA device" in capsys.readouterr().err


def test_train_writes_curve_tensorboard_and_no_sb3_temp_dirs(tmp_path, patched, capsys, monkeypatch):
    import tempfile

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    save = tmp_path / "trial-3"
    code = main(["train", "--timesteps", "96", "--n-envs", "2", "--n-steps", "16", "--batch-size", "16",
                 "--eval-episodes", "1", "--max-steps", "20", "--save-dir", str(save), "--progress-interval", "0.001",
                 "--tensorboard", str(tmp_path / "tb"), "--result-file", str(save / "result.json")])
    assert code == 0, capsys.readouterr()
    assert list(temp.iterdir()) == []  # SB3 made no /tmp/SB3-* directory
    result = json.loads((save / "result.json").read_text())
    points = [json.loads(line) for line in (save / "curve.jsonl").read_text().splitlines()]
    assert len(points) >= 2
    for p in points:
        assert set(p) == {"steps", "time_sec", "episodes", "mean_reward", "laps_total", "best_episode_laps"}
    assert points[-1]["steps"] == result["train_timesteps"] and points[-1]["episodes"] == result["train_episodes"]
    assert [p["steps"] for p in points] == sorted(p["steps"] for p in points)
    run_dir = tmp_path / "tb" / "trial-3"
    assert result["tensorboard_dir"] == str(run_dir)
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"rollout/ep_rew_mean", "train/value_loss", "driving/mean_abs_cte", "driving/mean_speed",
            "driving/laps_total", "eval/mean_reward", "eval/driving_score"} <= tags, tags
    (final,) = events.Scalars("eval/mean_reward")
    assert final.value == pytest.approx(result["mean_reward"], rel=1e-5)


def test_searched_values_of_other_kinds_parse(tmp_path):
    from donkeyrl.cli import build_parser
    from donkeyrl.cli.train import config_from_args

    parser = build_parser()
    cfg = config_from_args(parser.parse_args(["train", "--agent", "sac", "--ent-coef", "auto_0.1",
                                              "--steer-rate-limit", "none", "--tracks", "oval", "warren"]))
    assert cfg.ent_coef == "auto_0.1" and cfg.steer_rate_limit is None and cfg.tracks == ("oval", "warren")
    cfg = config_from_args(parser.parse_args(["train", "--agent", "tqc", "--ent-coef", "0.2", "--n-quantiles", "9"]))
    assert cfg.ent_coef == 0.2 and cfg.algo.n_quantiles == 9


@pytest.mark.parametrize("command", ["evaluate --model m.zip", "research"])
def test_shared_simulator_options_bound_the_port(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command.split(), "--port", "70000"])
    assert exc.value.code == 2
    assert "--port: 70000 must be an integer in [1, 65535]" in capsys.readouterr().err
