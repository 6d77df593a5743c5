"""``donkeyrl drive``: JSON report, GIF output and clean errors, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

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
    assert first.shape[:2] == (120, 160)
    assert not np.array_equal(first, mid)  # the view moves
    # the overlay: a black box with white text in the top-left corner
    corner = first[:12, :60, :3]
    assert (corner.max(axis=2) > 200).any() and (corner.max(axis=2) < 30).mean() > 0.5


@pytest.mark.parametrize("args, pattern", [
    (["--track", "nowhere"], "unknown track 'nowhere'"),
    (["--track", "procedural-abc"], "procedural-abc"),
    (["--gif", "/nonexistent_dir_xyz/out.gif"], "does not exist"),
])
def test_bad_values_give_one_line_errors(args: list[str], pattern: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drive", *args]) == 2
    err = capsys.readouterr().err
    assert pattern in err and "Traceback" not in err
    assert err.startswith("donkeyrl drive: error:")


@pytest.mark.parametrize("args, pattern", [
    (["--episodes", "0"], "0 must be >= 1"),
    (["--laps", "two"], "'two' is not an integer"),
    (["--seed", "-3"], "-3 must be >= 0"),
    (["--driver", "robot"], "invalid choice: 'robot'"),
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
    for opt in ("--track", "--driver", "--episodes", "--laps", "--max-steps", "--seed", "--gif", "--json",
                "--domain-randomization"):
        assert opt in out
