"""``donkeyrl research``: flags, errors, console output."""

from __future__ import annotations

import json

import pytest

from donkeyrl.cli import build_parser, main
from donkeyrl.cli.research import build_config

from research_helpers import fake_command, records


def test_original_controller_flags_and_defaults():
    args = build_parser().parse_args(
        ["research", "--trials", "100", "--explore", "2.0", "--agent", "ppo", "--min-timesteps", "5000",
         "--max-timesteps", "20000", "--push-every", "10"])
    cfg = build_config(args)
    assert (cfg.trials, cfg.explore, cfg.agent, cfg.min_timesteps, cfg.max_timesteps) == \
        (100, 2.0, "ppo", 5000, 20000)
    assert cfg.publish.every == 10 and cfg.publish.remote is None
    assert (cfg.workers, cfg.trial_timeout, cfg.cooldown, cfg.objective, cfg.confirm_seeds) == \
        (1, 360.0, 2.0, "race_score", 2)
    assert cfg.champion_rule.confirm_seeds == 2 and cfg.champion_rule.n_initial == 5
    assert str(cfg.study_dir) == "runs/research-ppo"
    assert cfg.trial_command == "{python} -m donkeyrl train"
    auto = build_config(build_parser().parse_args(["research", "--explore", "auto"]))
    assert auto.explore is None


def test_every_option_has_help():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["research"]
    for action in sub._actions:
        assert action.help, action.dest


def test_print_space(capsys):
    assert main(["research", "--agent", "dqn", "--print-space", "--min-timesteps", "10",
                 "--max-timesteps", "20"]) == 0
    space = json.loads(capsys.readouterr().out)
    assert space["timesteps"] == {"type": "int", "low": 10, "high": 20, "log": False}
    assert "n_steer" in space and "ent_coef" not in space


@pytest.mark.parametrize("argv,match", [
    (["--min-timesteps", "9", "--max-timesteps", "5"], "--min-timesteps 9 is larger"),
    (["--search-space", "/nonexistent/space.json"], "cannot read search space file"),
    (["--objective", "bad name!"], "objective='bad name!'"),
    (["--trial-command", "python 'unclosed"], "is not a valid command line: No closing quotation"),
    (["--trial-command", ""], "--trial-command must not be empty"),
    (["--trial-command", "   "], "--trial-command must not be empty"),
])
def test_bad_input_is_a_one_line_error(capsys, tmp_path, argv, match):
    assert main(["research", "--study-dir", str(tmp_path / "s"), *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("argv,match", [
    (["--max-timesteps", str(10**30)], f"--max-timesteps: {10**30} must be in [1, 1000000000]"),
    (["--min-timesteps", "0"], "--min-timesteps: 0 must be in [1, 1000000000]"),
    (["--workers", "100000"], "--workers: 100000 must be in [1, 64]"),
    (["--seed", str(2**32)], f"--seed: {2**32} must be in [0, 4294967295]"),
    (["--seed", "-1"], "--seed: -1 must be in [0, 4294967295]"),
    (["--trials", "1e3"], "--trials: '1e3' is not an integer"),
    (["--port", "70000"], "--port: 70000 must be an integer in [1, 65535]"),
])
def test_out_of_range_numbers_are_refused_by_the_parser(capsys, tmp_path, argv, match):
    with pytest.raises(SystemExit) as exc:
        main(["research", "--study-dir", str(tmp_path / "s"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("content,match", [
    (b'{"n_steer": {"type": "int", "low": 3, "high": 9}, "note": "\xe9t\xe9"}',
     "space.json is not UTF-8 text (invalid continuation byte at byte 59)"),
    ("FIFO", "space.json is a FIFO (named pipe), not a regular file"),
    ("DIR", "space.json is a directory, not a regular file"),
])
def test_unreadable_search_space_file_is_named(capsys, tmp_path, content, match):
    import os
    space = tmp_path / "space.json"
    if content == "FIFO":
        os.mkfifo(space)
    elif content == "DIR":
        space.mkdir()
    else:
        space.write_bytes(content)
    assert main(["research", "--study-dir", str(tmp_path / "s"), "--search-space", str(space)]) == 2
    err = capsys.readouterr().err
    assert match in err and str(space) in err and "Traceback" not in err


def test_cli_runs_a_study_and_prints_progress(capsys, tmp_path, space_file):
    study = tmp_path / "s"
    code = main(["research", "--study-dir", str(study), "--search-space", str(space_file),
                 "--trials", "3", "--cooldown", "0", "--objective", "mean_reward",
                 "--trial-command", fake_command("--rewards", "1,3,2", "--plan", "2=ok"),
                 "--train-arg=--n-throttle", "--train-arg", "2", "--seed", "10",
                 "--confirm-seeds", "0", "--no-final-test", "--no-report"])
    out = capsys.readouterr().out
    assert code == 0
    assert "[3/3] trial 3 ok mean_reward=2" in out and "ETA" in out
    assert "champion: trial 2 mean_reward=3" in out
    recs = records(study)
    assert [r.seed for r in recs] == [11, 12, 13]
    assert recs[0].used_params["n_throttle"] == 2  # --train-arg reached the trial
    assert recs[0].used_params["seed"] == 11 and recs[0].used_params["eval_episodes"] == 5
    assert recs[0].used_params["n_steer"] == recs[0].params["n_steer"]  # searched -> flag


def test_console_escapes_markup_in_messages(capsys):
    from donkeyrl.cli.research import ConsoleReporter
    from donkeyrl.research import Progress, TrialRecord
    rec = TrialRecord(3, {"track": ["a"]}, "crashed", message="[Errno 28] [bold]x[/] boom")
    ConsoleReporter().finished(rec, Progress(3, 5, 0, 1.0, 2.0, None))
    ConsoleReporter().note("[/] odd")
    out = capsys.readouterr().out
    assert "[Errno 28] [bold]x[/] boom" in out and "[/] odd" in out
