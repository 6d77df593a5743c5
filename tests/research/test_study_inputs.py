"""Bad input refused before any work (tracks, --confirm-seeds, --init-model, --validation with
a validation objective, search space files), fine-tuning studies, and the objective's noise."""

from __future__ import annotations

import json
import os
import threading
import zipfile
from pathlib import Path

import pytest

from donkeyrl.bo import SearchSpaceError
from donkeyrl.cli import main
from donkeyrl.research import load_space
from donkeyrl.research.result import objective_noise

from research_helpers import LOOP_ONLY, fake_command, records


def research(study: Path, space: Path | None, *extra: str) -> list[str]:
    out = ["research", "--study-dir", str(study), "--trials", "2", "--cooldown", "0",
           "--trial-command", fake_command("--lenient"), *LOOP_ONLY, *extra]
    return out + (["--search-space", str(space)] if space else [])


def one_line_error(capsys, match: str) -> None:
    err = capsys.readouterr().err
    assert match in err, err
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("tracks,match", [
    (["roboracingleague_1"], "--track: track 'roboracingleague_1' belongs to the validation set "
                             "and cannot be trained on"),
    (["procedural-20003"], "track 'procedural-20003' belongs to the test set"),
    (["mixd"], "--track: unknown track 'mixd'"),
    (["mixd"], "or a regime: procedural, catalogue, mixed"),
])
def test_reserved_or_unknown_training_tracks_are_refused(tmp_path, space_file, capsys, tracks, match):
    study = tmp_path / "s"
    assert main(research(study, space_file, "--track", *tracks)) == 2
    one_line_error(capsys, match)
    assert not study.exists()


def test_a_searched_reserved_track_is_refused(tmp_path, capsys):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"tracks": {"type": "categorical",
                                            "choices": ["mixed", "chicane_alley"]}}))
    study = tmp_path / "s"
    assert main(research(study, space)) == 2
    one_line_error(capsys, "search space parameter 'tracks': track 'chicane_alley' belongs to the "
                           "validation set")
    assert not study.exists()


def test_negative_confirm_seeds_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["research", "--study-dir", str(tmp_path / "s"), "--confirm-seeds", "-1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--confirm-seeds: -1 must be in [0, 100]" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_the_validation_objective_needs_the_validation_race(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    assert main(research(study, space_file, "--train-arg=--validation", "--train-arg=false")) == 2
    one_line_error(capsys, "--objective race_score is measured by the validation race, which "
                           "--validation false switches off")
    assert not study.exists()
    # driving_score does not need it
    assert main(research(study, space_file, "--train-arg=--validation=false", "--objective",
                         "driving_score", "--trials", "1")) == 0


def saved_model(root: Path, agent: str = "dqn", **flat) -> Path:
    from donkeyrl.rl.config import TrialConfig

    root.mkdir(parents=True)
    TrialConfig(agent, **flat).save(root)
    with zipfile.ZipFile(root / "model.zip", "w") as zf:
        zf.writestr("data", "a saved model")
    return root


def test_init_model_of_another_agent_is_one_line(tmp_path, space_file, capsys):
    model = saved_model(tmp_path / "m", "sac")
    study = tmp_path / "s"
    assert main(research(study, space_file, "--init-model", str(model), "--agent", "dqn")) == 2
    one_line_error(capsys, f"--init-model {model} is a sac model but --agent is dqn")
    assert not study.exists()
    assert main(research(study, space_file, "--init-model", str(tmp_path / "nowhere"))) == 2
    one_line_error(capsys, "no model file at")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/model.zip").write_text("not a zip")
    assert main(research(study, space_file, "--init-model", str(tmp_path / "bad"))) == 2
    one_line_error(capsys, "is not a saved model")
    assert not study.exists()


def test_fine_tuning_study_fixes_the_models_contract(tmp_path, capsys):
    model = saved_model(tmp_path / "m", "dqn", obs_width=48, obs_height=24, grey=False,
                        frame_stack=3, n_steer=5, n_throttle=2, net_width=128)
    # the space searches n_steer and obs_width too: both are fixed to the model's values
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2,
                                                   "log": True},
                                 "n_steer": {"type": "int", "low": 3, "high": 9},
                                 "obs_width": {"type": "categorical", "choices": [48, 64]}}))
    study = tmp_path / "s"
    assert main(research(study, space, "--agent", "dqn", "--init-model", str(model),
                         "--print-space")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["learning_rate"]["type"] == "float"
    for name, value in (("n_steer", 5), ("n_throttle", 2), ("obs_width", 48), ("obs_height", 24),
                        ("grey", False), ("frame_stack", 3), ("net_width", 128),
                        ("actions", "discrete")):
        assert printed[name] == {"type": "fixed", "value": value}, name
    # (the fake trainer's schema lacks the observation parameters: no preflight against it)
    assert main(research(study, space, "--agent", "dqn", "--init-model", str(model),
                         "--no-preflight")) == 0
    capsys.readouterr()
    for rec in records(study):
        assert rec.used_params["init_model"] == str(model.resolve())
        assert rec.params["grey"] is False and rec.used_params["grey"] is False
        assert rec.params["n_steer"] == 5 and "not applied" not in rec.message
    assert "--init-model: n_steer fixed to 5" in (study / "study.log").read_text()


@pytest.mark.timeout(60)
def test_load_space_names_a_non_utf8_file_and_never_hangs_on_a_fifo(tmp_path):
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"n_steer": {"type": "int", "low": 3, "high": 9}, "x": "\xe9"}')
    with pytest.raises(SearchSpaceError, match=f"search space file {bad} is not UTF-8 text"):
        load_space(bad)
    fifo = tmp_path / "space.fifo"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def attempt() -> None:
        try:
            load_space(fifo)
        except BaseException as exc:  # collected for the assertion below
            done.append(exc)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(10)
    assert done, "load_space blocked on a FIFO"
    assert isinstance(done[0], SearchSpaceError) and str(fifo) in str(done[0])
    assert "FIFO" in str(done[0])


def test_race_score_noise_is_left_to_the_gp():
    result = {"race_score": 80.0, "mean_reward": 100.0, "std_reward": 10.0,
              "episode_rewards": [90.0, 110.0, 100.0, 100.0], "driving_score": 50.0}
    assert objective_noise(result, "race_score", 80.0) is None
    assert objective_noise(result, "driving_score", 50.0) == pytest.approx(50.0 * 0.1 / 2)
    assert objective_noise({**result, "race_score_std": 4.0}, "race_score", 80.0) == \
        pytest.approx(2.0)


def test_preflight_checks_every_field_a_pareto_study_reads():
    from donkeyrl.bo import SearchSpace
    from donkeyrl.research import PreflightError
    from donkeyrl.research.preflight import check_space_against_schema

    from fake_trial import SCHEMA
    space = SearchSpace.from_dict({"gamma": {"type": "float", "low": 0.9, "high": 0.99}})
    check_space_against_schema(space, SCHEMA, "ppo", "pareto")
    lacking = {**SCHEMA, "result_fields": [f for f in SCHEMA["result_fields"]
                                           if f != "validation_mean_abs_cte"]}
    with pytest.raises(PreflightError, match="--objective 'pareto' needs 'validation_mean_abs_cte', "
                                             "which is not in the trainer's result"):
        check_space_against_schema(space, lacking, "ppo", "pareto")


def test_the_real_trainer_lists_the_objectives_a_study_reads():
    from donkeyrl.research.config import OBJECTIVES
    from donkeyrl.research.preflight import objective_fields
    from donkeyrl.rl.config import schema

    fields = schema()["result_fields"]
    assert all(f in fields for o in OBJECTIVES for f in objective_fields(o))
