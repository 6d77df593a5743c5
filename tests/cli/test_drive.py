"""``donkeyrl drive``: JSON report, GIF/MP4 of the expert and of trained models, clean errors, through the
real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from donkeyrl.cli import main


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = main(["drive", *args, "--json"])
    out = capsys.readouterr().out
    assert code == 0
    return json.loads(out)


def test_expert_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "--track", "waveshare", "--laps", "2")
    assert {"track", "laps", "lap_times", "mean_abs_cte", "mean_speed", "steps"} <= set(report)
    assert report["track"] == "waveshare"
    assert report["laps"] == 2 and len(report["lap_times"]) == 2
    assert all(2.0 < t < 10.0 for t in report["lap_times"])
    assert 0.0 <= report["mean_abs_cte"] < 0.5
    assert 1.0 < report["mean_speed"] < 5.0  # telemetry units (top speed 40 / 8 = 5)
    # the steps add up to the laps: 2 laps plus the run-up, at 20 steps per second
    assert sum(report["lap_times"]) * 20 <= report["steps"] <= sum(report["lap_times"]) * 20 + 40


def test_env_id_and_episodes(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "--track", "donkey-generated-track-v0", "--laps", "1", "--episodes", "2")
    assert report["track"] == "generated_track"
    assert report["laps"] == 2 and len(report["episodes"]) == 2


def test_random_driver_ends_without_laps(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "--track", "mini_monaco", "--driver", "random", "--max-steps", "200")
    assert report["laps"] == 0 and report["lap_times"] == [] and 1 <= report["steps"] <= 200


def test_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drive", "--track", "waveshare", "--laps", "1"]) == 0
    out = capsys.readouterr().out
    assert "waveshare" in out and "laps 1" in out and "mean |cte|" in out


def test_gif_is_an_animation_of_the_drive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import imageio.v2 as imageio

    gif = tmp_path / "drive.gif"
    assert main(["drive", "--track", "waveshare", "--laps", "1", "--gif", str(gif)]) == 0
    assert str(gif) in capsys.readouterr().out
    frames = imageio.mimread(gif)
    assert len(frames) >= 10
    first, mid = np.asarray(frames[0]), np.asarray(frames[len(frames) // 2])
    # the camera view at twice its size beside a 240x240 bird's-eye map
    assert first.shape[:2] == (240, 560)
    assert not np.array_equal(first[:, :320], mid[:, :320])  # the view moves
    assert not np.array_equal(first[:, 320:], mid[:, 320:])  # the car moves on the map
    # the overlay: a black bar with white text across the top of the camera view
    bar = mid[:14, :320, :3]
    assert (bar.max(axis=2) > 200).any() and (bar.max(axis=2) < 30).mean() > 0.5
    assert Image.open(gif).info["duration"] == 100  # ms: every 2nd of the 20 Hz steps, real time


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real PPO model trained for a few hundred steps by `donkeyrl train`."""
    d = tmp_path_factory.mktemp("model")
    assert main(["train", "--agent", "ppo", "--actions", "discrete", "--timesteps", "256", "--n-envs", "1",
                 "--n-steps", "64", "--batch-size", "32", "--eval-episodes", "0", "--validation", "false",
                 "--save-dir", str(d)]) == 0
    return d


def test_model_drive_records_gif_and_mp4(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import imageio.v3 as iio

    capsys.readouterr()
    gif, mp4 = tmp_path / "m.gif", tmp_path / "m.mp4"
    assert main(["drive", "--model", str(model_dir), "--track", "warren", "--max-steps", "60", "--json",
                 "--gif", str(gif), "--mp4", str(mp4)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["driver"] == "model" and report["track"] == "warren"
    assert 1 <= report["steps"] <= 60 and report["laps"] == 0
    video = iio.imread(mp4, plugin="FFMPEG")
    assert video.shape[1:] == (240, 560, 3) and len(video) == report["steps"] + 1  # the start, then every step
    assert len(iio.imread(gif)) == -(-len(video) // 2)


def test_model_drive_is_the_models_own_policy(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Same seed, same drive (deterministic policy); the episode ends by the model's own guards."""
    runs = []
    for _ in range(2):
        assert main(["drive", "--model", str(model_dir), "--track", "mini_monaco", "--max-steps", "80",
                     "--episodes", "2", "--json"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == runs[1]
    assert len(runs[0]["episodes"]) == 2 and all(e["driver"] == "model" for e in runs[0]["episodes"])


@pytest.mark.parametrize("args, pattern", [
    (["--track", "nowhere"], "unknown track 'nowhere'"),
    (["--track", "procedural-abc"], "procedural-abc"),
    (["--gif", "/nonexistent_dir_xyz/out.gif"], "does not exist"),
    (["--mp4", "/nonexistent_dir_xyz/out.mp4"], "does not exist"),
    (["--gif", "{tmp}"], "is a directory; give a file path"),
    (["--mp4", "{tmp}"], "is a directory; give a file path"),
    (["--model", "{tmp}"], "model.zip does not exist"),
    (["--model", "{tmp}/x", "--track", "nowhere"], "unknown track 'nowhere'"),
])
def test_bad_values_give_one_line_errors(args: list[str], pattern: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["drive", *args]) == 2
    err = capsys.readouterr().err
    assert pattern in err and "Traceback" not in err
    assert err.startswith("donkeyrl drive: error:") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("args, pattern", [
    (["--episodes", "0"], "0 must be >= 1"),
    (["--laps", "two"], "'two' is not an integer"),
    (["--seed", "-3"], "-3 must be >= 0"),
    (["--driver", "robot"], "invalid choice: 'robot'"),
    (["--driver", "expert", "--model", "m"], "not allowed with argument --driver"),
])
def test_bad_arguments_are_refused_by_the_parser(args: list[str], pattern: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["drive", *args])
    assert exc.value.code == 2
    assert pattern in capsys.readouterr().err


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["drive", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--track", "--driver", "--model", "--episodes", "--laps", "--max-steps", "--seed", "--gif", "--mp4",
                "--json", "--domain-randomization"):
        assert opt in out
