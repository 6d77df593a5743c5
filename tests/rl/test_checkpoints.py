"""Validation checkpoints during training: the progress file (rl/checkpoints.py)."""

from __future__ import annotations

import json

import pytest

from donkeyrl.rl.checkpoints import (FRACTIONS_ENV, PROGRESS_NAME, ProgressPoint, append_progress,
                                     checkpoint_fractions, checkpoint_steps, format_fractions,
                                     parse_fractions, read_progress)


def test_fractions_from_the_environment():
    assert checkpoint_fractions({}) == ()
    assert checkpoint_fractions({FRACTIONS_ENV: "none"}) == ()
    assert checkpoint_fractions({FRACTIONS_ENV: "0.5,0.25,0.5"}) == (0.25, 0.5)
    assert checkpoint_fractions({FRACTIONS_ENV: "0.5,x"}) == ()  # logged; the trial goes on
    assert parse_fractions(format_fractions((0.25, 0.5, 0.75))) == (0.25, 0.5, 0.75)
    assert format_fractions(()) == "none"
    with pytest.raises(ValueError, match="'x' is not a number"):
        parse_fractions("0.5,x")
    with pytest.raises(ValueError, match="'1.5' must be in"):
        parse_fractions("1.5")


def test_checkpoint_steps_drop_the_end_and_duplicates():
    assert checkpoint_steps(1000, (0.25, 0.5, 0.75)) == [(250, 0.25), (500, 0.5), (750, 0.75)]
    assert checkpoint_steps(2, (0.25, 0.5, 0.75)) == [(1, 0.5)]  # round(0.5)=0, round(1.0)=1, round(1.5)=2
    assert checkpoint_steps(1, (0.5,)) == []


def test_progress_file_round_trip_tolerates_a_torn_line(tmp_path):
    path = tmp_path / PROGRESS_NAME
    a = ProgressPoint(256, 0.25, 12.5, 0.1, 3.0)
    b = ProgressPoint(512, 0.5, None, None, 6.0)
    append_progress(path, a)
    append_progress(path, b)
    with open(path, "a") as fh:
        fh.write('{"steps": 768, "fraction": 0.7')  # killed while writing
        fh.write("\n[1, 2]\n" + json.dumps({"steps": 1, "fraction": 3.0, "time_sec": 1}) + "\n")
    assert read_progress(path) == [a, b]
    assert a.value_of("race_score") == 12.5 and b.value_of("race_score") is None
    assert a.value_of("mean_reward") is None
    assert read_progress(tmp_path / "missing.jsonl") == []
    assert read_progress(tmp_path) == []  # a directory


@pytest.mark.slow
def test_training_writes_checkpoints_only_when_asked(tmp_path, monkeypatch):
    """A real (tiny) PPO run: the fractions asked for, scores of the real validation race, the
    model saved at each checkpoint; no file without the variable or without validation."""
    from donkeyrl.rl.config import TrialConfig
    from donkeyrl.rl.train import run_trial

    tiny = dict(timesteps=256, n_envs=2, n_steps=64, batch_size=64, n_epochs=1, eval_episodes=1)
    calls = []
    import donkeyrl.rl.train as train

    real = train.validation_result

    def counting(model, cfg, say):
        calls.append(model.num_timesteps)
        return real(model, cfg, say)

    monkeypatch.setattr(train, "validation_result", counting)
    monkeypatch.setenv(FRACTIONS_ENV, "0.5")
    out = tmp_path / "with"
    result = run_trial(TrialConfig("ppo", seed=1, **tiny), out)
    assert result["run_status"] == "ok", result["message"]
    (point,) = read_progress(out / PROGRESS_NAME)
    assert point.fraction == 0.5 and 128 <= point.steps < 256
    assert point.race_score is not None and 0.0 <= point.race_score <= 200.0
    assert point.validation_lap_rate is not None
    assert calls[0] == point.steps and len(calls) == 2  # the checkpoint, then the final race
    assert (out / "model.zip").is_file()

    monkeypatch.delenv(FRACTIONS_ENV)
    plain = tmp_path / "without"
    assert run_trial(TrialConfig("ppo", seed=1, validation=False, **tiny), plain)["run_status"] == "ok"
    assert not (plain / PROGRESS_NAME).exists()
