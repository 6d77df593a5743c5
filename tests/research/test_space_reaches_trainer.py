"""Every parameter of every default search space reaches the env or the model it configures.

The chain under test is the real one: a proposal -> the controller's trial argv (trialcmd) -> the
``donkeyrl train`` parser -> TrialConfig -> the built VecEnv and SB3 model. The previous system
searched a learning rate for 300 trials that never reached the trainer; this test fails if any
searched value stops on the way.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np
import pytest

from donkeyrl.research.space import DRIVING_SPACE, default_space
from donkeyrl.research.trialcmd import DEFAULT_TRIAL_COMMAND, build_argv
from donkeyrl.rl.algorithms import AGENTS
from donkeyrl.sim.tracksets import training_catalogue


def _parse(argv: list[str]) -> Any:
    from donkeyrl.cli import train as train_cli

    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return train_cli.config_from_args(args)


def _layers(obj: Any) -> list[Any]:
    """Every object of a VecEnv / gym wrapper chain (outermost first), first env of a DummyVecEnv."""
    out, seen = [], set()
    todo = [obj]
    while todo:
        o = todo.pop(0)
        if o is None or id(o) in seen:
            continue
        seen.add(id(o))
        out.append(o)
        todo += [getattr(o, "venv", None), getattr(o, "env", None)]
        if hasattr(o, "envs"):
            todo.append(o.envs[0])
    return out


def _find(venv: Any, cls_names: tuple[str, ...]) -> Any:
    return next((o for o in _layers(venv) if type(o).__name__ in cls_names), None)


def _check_driving(name: str, value: Any, venv: Any, model: Any, infos: list[dict[str, Any]]) -> None:
    if name == "tracks":
        names = {i["track"] for i in infos}
        allowed = {"procedural": set(), "catalogue": set(training_catalogue()),
                   "mixed": set(training_catalogue())}[value]
        assert all(n in allowed or (value != "catalogue" and n.startswith("procedural-")) for n in names), names
    elif name == "domain_randomization":
        assert venv.get_attr("domain_randomization")[0] is value
    elif name in ("frame_stack", "obs_width", "obs_height"):
        h, w, c = venv.observation_space.shape
        assert {"obs_width": w, "obs_height": h, "frame_stack": c}[name] == value  # grey: 1 channel a frame
    elif name == "steer_rate_limit":
        w = _find(venv, ("SteeringRateLimit", "VecSteeringRateLimit"))
        assert w is not None and w.max_step == pytest.approx(2 * value)
    elif name in ("throttle_min", "throttle_max"):
        w = _find(venv, ("ThrottleClamp", "VecThrottleClamp"))
        assert getattr(w, name) == pytest.approx(value)
    elif name == "reward":
        cls = {"progress": ("ProgressReward", "VecProgressReward"), "speed": ("SpeedReward", "VecSpeedReward")}
        assert _find(venv, cls[value]) is not None
    elif name == "crash_penalty":
        w = _find(venv, ("ProgressReward", "VecProgressReward", "SpeedReward", "VecSpeedReward"))
        assert w.crash_penalty == pytest.approx(value)
    elif name == "net_width":
        import torch

        widths = {m.out_features for m in model.policy.modules() if isinstance(m, torch.nn.Linear)}
        assert value in widths, widths
    else:  # pragma: no cover - a new driving knob needs a probe here
        raise AssertionError(f"no probe for searched parameter {name!r}: add one")


@pytest.mark.parametrize("agent", AGENTS)
def test_every_searched_value_reaches_the_env_or_the_model(agent, tmp_path):
    from donkeyrl.rl.agents import build_agent
    from donkeyrl.rl.envbuild import build_vec_env

    space = default_space(agent, 1000, 2000)
    rng = np.random.default_rng(7)
    for params in space.sample(rng, 2):
        argv = build_argv(DEFAULT_TRIAL_COMMAND, params=params, agent=agent, tracks=("generated_track",),
                          eval_episodes=1, seed=3, save_dir=tmp_path, result_file=tmp_path / "r.json",
                          reward=None, trial=1, study_dir=tmp_path, extra_args=("--n-envs", "2"))
        cfg = _parse(argv[argv.index("train"):])
        for name, value in params.items():  # 1. the config holds every searched value
            got = cfg.to_dict()[name]
            got = got[0] if name == "tracks" and isinstance(got, list) and len(got) == 1 else got
            if isinstance(value, float):
                assert math.isclose(got, value, rel_tol=1e-6), (name, got, value)
            else:
                assert got == value, (name, got, value)
        venv = build_vec_env(cfg)
        try:  # 2. the env and the model use it
            model = build_agent(cfg, venv)
            venv.reset()
            infos = [i for layer in _layers(venv) for i in (getattr(layer, "reset_infos", None) or [])
                     if "track" in i]
            assert infos, "the env reports no track in its reset infos"
            for name in DRIVING_SPACE:
                _check_driving(name, params[name], venv, model, infos)
        finally:
            venv.close()


def test_searched_false_reaches_the_trainer_as_false(tmp_path):
    """A searched ``grey=False`` used to be rendered by omitting the flag: the trainer then kept
    its default grey=True. Booleans now go out as ``--grey false``."""
    params = {"grey": False, "domain_randomization": False, "timesteps": 1000}
    argv = build_argv(DEFAULT_TRIAL_COMMAND, params=params, agent="ppo", tracks=("generated_track",),
                      eval_episodes=1, seed=3, save_dir=tmp_path, result_file=tmp_path / "r.json",
                      reward=None, trial=1, study_dir=tmp_path)
    assert "--grey" in argv and argv[argv.index("--grey") + 1] == "false"
    cfg = _parse(argv[argv.index("train"):])
    assert cfg.grey is False and cfg.domain_randomization is False
    argv = build_argv(DEFAULT_TRIAL_COMMAND, params={"grey": True}, agent="ppo", tracks=(),
                      eval_episodes=1, seed=3, save_dir=tmp_path, result_file=tmp_path / "r",
                      reward=None, trial=1, study_dir=tmp_path)
    assert _parse(argv[argv.index("train"):]).grey is True


def test_a_searched_tracks_replaces_the_controllers_track(tmp_path):
    """Both ``--track`` (the controller's) and ``--tracks`` (searched) used to go out: the last
    one silently won. A searched ``tracks`` is now the only one."""
    argv = build_argv(DEFAULT_TRIAL_COMMAND, params={"tracks": "procedural"}, agent="ppo",
                      tracks=("generated_track",), eval_episodes=1, seed=3, save_dir=tmp_path,
                      result_file=tmp_path / "r.json", reward=None, trial=1, study_dir=tmp_path,
                      extra_args=("--n-envs", "1"))
    assert "--track" not in argv and "generated_track" not in argv
    cfg = _parse(argv[argv.index("train"):])
    assert cfg.tracks == ("procedural",)
    from donkeyrl.research.result import unused_params
    assert unused_params({"tracks": "procedural"}, cfg.to_dict()) == []  # ["procedural"] == it
    assert unused_params({"tracks": "mixed"}, cfg.to_dict()) == [
        "tracks: searched 'mixed', trainer used 'procedural'"]
