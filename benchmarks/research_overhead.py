"""Controller overhead of `donkeyrl research` per trial, with instant fake trials.

Runs a study of --trials trials of tests/research/fake_trial.py (a trial is ~50 ms of Python
start-up; ``--lenient``: it takes every flag of the default space, which is why the preflight,
a one-off check against the real trainer, is off) with --cooldown 0 on the default search space
of --agent, and reports the wall time
per trial over the first and the last 10 trials (proposal + launch + record + champion), plus
the processes left behind (must be 0). It also times the trial leader (research/leader.py) in
the same run: ``--launches`` launches of an empty Python process directly and through the
leader (interleaved), so the leader's cost per trial is a difference of two numbers measured
under the same load. Usage:

    .venv/bin/python benchmarks/research_overhead.py --trials 100 --agent ppo [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from donkeyrl.research import Controller, Journal, LogReporter, StudyConfig
from donkeyrl.research.procs import group_alive
from donkeyrl.research.runner import leader_argv

FAKE = Path(__file__).resolve().parents[1] / "tests" / "research" / "fake_trial.py"


def time_launches(n: int) -> tuple[float, float]:
    """Median seconds to run ``python -c pass`` directly and through the leader (n each)."""
    cmd = [sys.executable, "-c", "pass"]
    direct, led = [], []
    for _ in range(n):
        for argv, out in ((cmd, direct), (leader_argv(cmd, 1.0), led)):
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, start_new_session=True)
            out.append(time.perf_counter() - t0)
    return statistics.median(direct), statistics.median(led)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=100, help="trials in the study")
    p.add_argument("--agent", default="ppo", help="agent whose default space is searched")
    p.add_argument("--workers", type=int, default=1, help="parallel trials")
    p.add_argument("--launches", type=int, default=30, help="launches timed per path")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study"
        cfg = StudyConfig(study_dir=study, trials=args.trials, agent=args.agent, cooldown=0.0,
                          workers=args.workers, poll_interval=0.01,
                          trial_command=f"{sys.executable} {FAKE} --lenient", preflight=False)
        t0 = time.perf_counter()
        Controller(cfg, LogReporter()).run()
        wall = time.perf_counter() - t0
        recs = Journal(study / "results.jsonl").read().records
        stamps = [dt.datetime.fromisoformat(r.timestamp).timestamp() for r in recs]
        first = (stamps[9] - stamps[0]) / 9 if len(stamps) >= 10 else float("nan")
        last = (stamps[-1] - stamps[-10]) / 9 if len(stamps) >= 10 else float("nan")
        leftovers = sum(group_alive(r.metrics["pgid"]) for r in recs)
        out = {"trials": len(recs), "agent": args.agent, "workers": args.workers,
               "wall_s": round(wall, 2), "s_per_trial_first10": round(first, 3),
               "s_per_trial_last10": round(last, 3), "leftover_groups": leftovers,
               "load": os.getloadavg()[0]}
    direct, led = time_launches(args.launches)
    out.update(launch_direct_ms=round(direct * 1000, 1), launch_leader_ms=round(led * 1000, 1),
               leader_cost_ms=round((led - direct) * 1000, 1))
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
