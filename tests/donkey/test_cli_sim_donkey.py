"""`donkeyrl train`, `evaluate` and `research` on the real-simulator path (--sim donkey), against
the project's own protocol server over loopback in fast mode."""

from __future__ import annotations

import json

import pytest

from donkeyrl.cli import build_parser, main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_train_then_evaluate_through_the_protocol(fast_server, tmp_path, capsys):
    save = tmp_path / "trial"
    port = str(fast_server.port)
    code = main(["train", "--sim", "donkey", "--host", "127.0.0.1", "--port", port, "--track", "generated_track",
                 "--timesteps", "256", "--n-envs", "1", "--n-steps", "128", "--batch-size", "64",
                 "--eval-episodes", "1", "--max-steps", "60", "--save-dir", str(save),
                 "--result-file", str(save / "result.json")])
    assert code == 0, capsys.readouterr().err
    result = json.loads((save / "result.json").read_text())
    assert result["run_status"] == "ok"
    assert result["params"]["sim"] == "donkey" and result["params"]["port"] == fast_server.port
    assert result["train_timesteps"] >= 256
    capsys.readouterr()
    # the saved model is evaluated over TCP too; --sim/--port override what the model recorded
    code = main(["evaluate", "--model", str(save), "--sim", "donkey", "--port", port,
                 "--track", "generated_track", "--episodes", "1", "--json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["track"] == "generated_track" and len(row["episode_rewards"]) == 1


def test_research_passes_the_simulator_to_every_trial(tmp_path):
    from donkeyrl.cli.research import build_config

    args = build_parser().parse_args(["research", "--study-dir", str(tmp_path), "--sim", "donkey",
                                      "--port", "9200", "--sim-path", "/opt/sim/donkey_sim.x86_64",
                                      "--train-arg=--n-envs", "--train-arg=1"])
    cfg = build_config(args)
    assert list(cfg.extra_args) == ["--sim", "donkey", "--port", "9200", "--sim-path",
                                    "/opt/sim/donkey_sim.x86_64", "--n-envs", "1"]
    plain = build_config(build_parser().parse_args(["research", "--study-dir", str(tmp_path)]))
    assert "--sim" not in plain.extra_args
