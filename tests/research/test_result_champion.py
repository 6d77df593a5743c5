"""Result-file classification, noise, and the champion fold (TC-004)."""

from __future__ import annotations

import json
import math

import pytest

from donkeyrl.research import ChampionStore, TrialRecord, fold_champion
from donkeyrl.research.champion import beats
from donkeyrl.research.result import objective_noise, parse_outcome

from research_helpers import zip_bytes


def write(path, obj):
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)


def good(tmp_path, **kw):
    model = tmp_path / "model.zip"
    model.write_bytes(zip_bytes("m"))
    base = {"params": {"learning_rate": 1e-3}, "mean_reward": 100.0, "std_reward": 10.0,
            "episode_rewards": [90.0, 100.0, 110.0, 95.0], "driving_score": 0.8,
            "completion": 1.0, "reward_hacking_flag": False, "model_path": str(model),
            "run_status": "ok", "message": ""}
    base.update(kw)
    return base


@pytest.mark.parametrize("content,code,status,match", [
    (None, 3, "crashed", "exit code 3 without writing"),
    (None, -9, "crashed", "killed by signal SIGKILL"),
    (None, 0, "no_result", "exit code 0 without writing"),
    ('{"mean_reward": 1', 0, "bad_result", "not valid JSON"),
    ("[1, 2]", 0, "bad_result", "holds a list"),
    ({"run_status": "diverged", "message": "loss NaN"}, 1, "diverged", "loss NaN"),
    ({"run_status": "sim_disconnected"}, 0, "sim_disconnected", "sim_disconnected"),
    ("GOOD", 2, "crashed", "exit code 2 after writing an ok result"),
    ({"mean_reward": 1.0}, 0, "bad_result", "no numeric 'driving_score'"),
    ("NAN", 0, "nan", "driving_score is nan"),
    ("NOMODEL", 0, "bad_result", "does not exist"),
    ("GOOD", 0, "ok", ""),
])
def test_every_failure_kind_becomes_a_status(tmp_path, content, code, status, match):
    rf = tmp_path / "result.json"
    if content == "GOOD":
        content = good(tmp_path)
    elif content == "NAN":
        content = good(tmp_path, driving_score=float("nan"))
    elif content == "NOMODEL":
        content = good(tmp_path, model_path=str(tmp_path / "missing.zip"))
    if content is not None:
        write(rf, content)
    out = parse_outcome(rf, code, objective="driving_score", cwd=tmp_path)
    assert out.run_status == status
    assert match in out.message


def test_killed_trials_and_ok_fields(tmp_path):
    out = parse_outcome(tmp_path / "r.json", -15, objective="mean_reward", cwd=tmp_path,
                        killed="timeout", kill_message="killed after the 5 s timeout")
    assert (out.run_status, out.message) == ("timeout", "killed after the 5 s timeout")
    rf = tmp_path / "r.json"
    write(rf, good(tmp_path, reward_hacking_flag=True))
    out = parse_outcome(rf, 0, objective="mean_reward", cwd=tmp_path)
    assert out.objective == 100.0 and out.driving_score == 0.8 and out.reward_hacking
    assert out.metrics["completion"] == 1.0 and out.used_params == {"learning_rate": 1e-3}


def test_noise_rules(tmp_path):
    r = good(tmp_path)
    assert objective_noise(r, "mean_reward", 100.0) == pytest.approx(10.0 / 2)
    # driving_score: same coefficient of variation as the reward
    assert objective_noise(r, "driving_score", 0.8) == pytest.approx(0.8 * 0.1 / 2)
    r["driving_score_std"] = 0.2
    assert objective_noise(r, "driving_score", 0.8) == pytest.approx(0.1)
    assert objective_noise({"mean_reward": 1.0}, "mean_reward", 1.0) is None


def _rec(trial, value, status="ok", hack=False):
    return TrialRecord(trial, {}, status, objective=value, model_path=f"m{trial}.zip",
                       reward_hacking=hack)


def test_tc004_champion_fold():
    recs = [_rec(i + 1, v) for i, v in enumerate([50, 80, 60, 90, 70])]
    champ, flags = None, []
    for r in recs:
        flags.append(beats(r, champ))
        champ = r if flags[-1] else champ
    assert [r.trial for r, f in zip(recs, flags) if f] == [1, 2, 4]
    assert fold_champion(recs).trial == 4


def test_fold_skips_failed_nan_hacked_and_ties():
    recs = [_rec(1, 5.0), _rec(2, 99.0, "timeout"), _rec(3, math.nan), _rec(4, 50.0, hack=True),
            _rec(5, 5.0), _rec(6, 6.0)]
    assert [beats(r, fold_champion(recs[:i])) for i, r in enumerate(recs)] == \
        [True, False, False, False, False, True]
    assert fold_champion(recs).trial == 6


def test_champion_store_install_and_repair(tmp_path):
    (tmp_path / "models" / "trial-1").mkdir(parents=True)
    (tmp_path / "models" / "trial-2").mkdir(parents=True)
    one, two = zip_bytes("one"), zip_bytes("two")
    (tmp_path / "models/trial-1/model.zip").write_bytes(one)
    (tmp_path / "models/trial-2/model.zip").write_bytes(two)
    r1 = TrialRecord(1, {"a": 1}, "ok", objective=1.0, model_path="models/trial-1/model.zip")
    r2 = TrialRecord(2, {"a": 2}, "ok", objective=2.0, model_path="models/trial-2/model.zip")
    store = ChampionStore(tmp_path)
    store.install(r1)
    m = store.manifest()
    assert m["trial"] == 1 and m["model_path"] == "models/champion/model.zip"
    assert m["params"] == {"a": 1} and store.model.read_bytes() == one
    assert "consistent" in store.ensure(r1)
    # crash after the record of trial 2 but before its install: repaired from the fold
    assert "restored to trial 2" in store.ensure(r2)
    assert store.manifest()["trial"] == 2 and store.model.read_bytes() == two
    # a model changed behind our back is detected by its checksum
    store.model.write_bytes(b"tampered")
    assert "restored" in store.ensure(r2) and store.model.read_bytes() == two
    assert not list(store.dir.glob(".*tmp*"))


def test_champion_carries_the_trial_config_needed_to_rebuild_its_env(tmp_path):
    trial = tmp_path / "models" / "trial-3"
    trial.mkdir(parents=True)
    (trial / "model.zip").write_bytes(zip_bytes("three"))
    (trial / "trial_config.json").write_text('{"agent": "ppo"}')
    store = ChampionStore(tmp_path)
    store.install(TrialRecord(3, {}, "ok", objective=3.0, model_path="models/trial-3/model.zip"))
    assert (store.dir / "trial_config.json").read_text() == '{"agent": "ppo"}'
    assert store.model.read_bytes() == zip_bytes("three")
    assert not list(store.dir.glob(".*tmp*"))


def test_single_episode_noise_is_unknown(tmp_path):
    r = good(tmp_path, episode_rewards=[100.0], std_reward=0.0)
    assert objective_noise(r, "mean_reward", 100.0) is None


def test_searched_params_must_reach_the_trainer():
    from donkeyrl.research.result import unused_params
    searched = {"learning_rate": 3e-4, "n_steer": 5, "actions": "discrete"}
    assert unused_params(searched, {"learning_rate": 3e-4, "n_steer": 5,
                                    "actions": "discrete", "gamma": 0.99}) == []
    assert unused_params(searched, {"learning_rate": 1e-3, "n_steer": 5}) == [
        "learning_rate: searched 0.0003, trainer used 0.001",
        "actions not reported by the trainer"]
