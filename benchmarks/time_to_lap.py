"""Time to the first full lap from pixels with the default `donkeyrl train` pipeline.

Trains on one track, evaluates the deterministic policy every --check-every steps (one episode on
the same track, evaluation time excluded from the training clock but included in wall_sec), and
stops at the first evaluation that completes a lap (a plausible one: the guards end too-short laps).

    .venv/bin/python benchmarks/time_to_lap.py --track generated_track --json

Prints {"track", "lapped", "wall_sec_to_lap", "steps_to_lap", "train_steps_per_sec", ...}.
Goal on the 2-core machine: a lap within 300 s wall-clock and 50k steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time

from donkeyrl.rl.callbacks import LapCheckCallback
from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.evaluate import evaluate
from donkeyrl.rl.train import run_trial


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--track", default="generated_track", help="training track (default: generated_track)")
    p.add_argument("--agent", default="ppo", choices=("ppo", "dqn", "sac"), help="agent (default: ppo)")
    p.add_argument("--max-steps", type=int, default=50_000, help="training step budget (default: 50000)")
    p.add_argument("--check-every", type=int, default=2048, help="steps between lap checks (default: 2048)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="TrialConfig overrides, e.g. n_envs=8 learning_rate=0.001")
    p.add_argument("--json", action="store_true", help="print only the JSON result")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    cfg = TrialConfig(agent=args.agent, tracks=(args.track,), timesteps=args.max_steps, seed=args.seed,
                      eval_episodes=0, **overrides)
    holder: dict = {}

    def lap_check() -> dict:
        ev = evaluate(holder["cb"].model, cfg, episodes=1)
        return {"laps": ev["total_laps"], "lap_times": ev["lap_times"], "completion": ev["completion"],
                "driving_score": ev["driving_score"], "mean_reward": ev["mean_reward"]}

    cb = LapCheckCallback(args.check_every, lap_check, stop_on_lap=True)
    holder["cb"] = cb
    lines: list[str] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_trial(cfg, tmp, callbacks=[cb], progress_interval_sec=15.0,
                           report=lambda s: lines.append(s) if args.json else print(s, flush=True))
    out = {
        "track": args.track, "agent": args.agent, "lapped": cb.lapped_at is not None,
        "wall_sec_to_lap": round(cb.lapped_at["wall_sec"], 1) if cb.lapped_at else None,
        "train_sec_to_lap": round(cb.lapped_at["train_sec"], 1) if cb.lapped_at else None,
        "steps_to_lap": cb.lapped_at["steps"] if cb.lapped_at else None,
        "lap_time": cb.lapped_at["lap_times"][0] if cb.lapped_at else None,
        "train_steps_per_sec": round(result["train_steps_per_sec"] or 0.0, 1),
        "total_wall_sec": round(time.perf_counter() - t0, 1), "run_status": result["run_status"],
        "checks": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in h.items()
                    if k != "lap_times"} for h in cb.history],
        "config": {k: v for k, v in result["params"].items() if v is not None and k != "extra"},
    }
    if result["run_status"] != "ok":
        out["message"] = result["message"]
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0 if result["run_status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
