"""A fast stand-in for ``donkeyrl train`` used by the research controller tests.

It accepts the train flags the controller passes, derives a deterministic objective from the
params, writes a small "model" and the result file. Behaviour per trial number (taken from
``--save-dir .../trial-N``) is chosen with ``--plan N=MODE,M=MODE`` or for every trial with
``--mode MODE``:

ok (default) | hang (sleep forever) | stubborn (hang, ignoring SIGTERM) | crash (exit 3, no
result) | garbage (non-JSON result) | nan (NaN objective) | noresult (exit 0, no result) |
diverged (trainer-reported failure) | hack (reward_hacking_flag) | spawn (leave a sleeping
grandchild in the process group, pid written to <save-dir>/grandchild.pid, then finish ok) |
spawnhang (spawn, then hang)

``--rewards 50,80,...`` sets trial N's reward to the N-th value; ``--sleep S`` makes a trial
take S seconds; ``--fail-file PATH`` makes trials crash while PATH exists.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import time


def objective(args: argparse.Namespace) -> float:
    """Deterministic function of the params, maximal near lr=1e-3, n_steer=5."""
    lr = args.learning_rate or 1e-3
    score = 1.0 - (math.log10(lr) + 3.0) ** 2 / 4.0
    if args.n_steer is not None:
        score -= ((args.n_steer - 5) / 6.0) ** 2
    if args.timesteps is not None:
        score += 0.1 * args.timesteps / 20000
    return score


def main() -> int:
    p = argparse.ArgumentParser()
    for flag in ("--agent", "--save-dir", "--result-file", "--reward", "--plan", "--mode",
                 "--rewards", "--fail-file"):
        p.add_argument(flag)
    p.add_argument("--track", nargs="+")
    for flag in ("--eval-episodes", "--seed", "--timesteps", "--n-steer", "--n-throttle",
                 "--n-steps", "--batch-size"):
        p.add_argument(flag, type=int)
    for flag in ("--learning-rate", "--gamma", "--ent-coef", "--sleep"):
        p.add_argument(flag, type=float)
    p.add_argument("--domain-randomization", action="store_true")
    args = p.parse_args()
    match = re.search(r"trial-(\d+)$", args.save_dir.rstrip("/"))
    trial = int(match.group(1)) if match else 0
    plan = dict(item.split("=") for item in args.plan.split(",")) if args.plan else {}
    mode = plan.get(str(trial), args.mode or "ok")
    if args.fail_file and os.path.exists(args.fail_file):
        mode = "crash"
    started = time.time()
    print(f"fake trial {trial} mode={mode} pgid={os.getpgid(0)}", flush=True)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode in ("hang", "stubborn"):
        while True:
            time.sleep(1)
    if mode in ("spawn", "spawnhang"):  # a grandchild in the trial's process group, outliving the leader
        os.makedirs(args.save_dir, exist_ok=True)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(os.path.join(args.save_dir, "grandchild.pid"), "w") as fh:
            fh.write(str(child.pid))
    if mode == "spawnhang":
        while True:
            time.sleep(1)
    if args.sleep:
        time.sleep(args.sleep)
    if mode == "crash":
        print("Traceback: simulated crash", file=sys.stderr, flush=True)
        return 3
    if mode == "noresult":
        return 0
    os.makedirs(args.save_dir, exist_ok=True)
    if mode == "garbage":
        with open(args.result_file, "w") as fh:
            fh.write('{"mean_reward": 12, "driv')
        return 0
    model = os.path.join(args.save_dir, "model.zip")
    with open(model, "wb") as fh:
        fh.write(f"fake model of trial {trial}".encode())
    if args.rewards:
        value = float(args.rewards.split(",")[trial - 1])
    else:
        value = objective(args)
    if mode == "nan":
        value = float("nan")
    n = args.eval_episodes or 5
    result = {
        "params": {k: v for k, v in vars(args).items() if v is not None},
        "mean_reward": value, "std_reward": 0.5, "episode_rewards": [value] * n,
        "driving_score": value, "completion": 1.0, "laps": 1, "mean_abs_cte": 0.3,
        "reward_hacking_flag": mode == "hack", "model_path": model,
        "elapsed_sec": time.time() - started, "seed": args.seed,
        "run_status": "diverged" if mode == "diverged" else "ok",
        "message": "loss became NaN" if mode == "diverged" else "",
        "started_at": started, "ended_at": time.time(), "pgid": os.getpgid(0),
    }
    with open(args.result_file + ".tmp", "w") as fh:
        json.dump(result, fh, allow_nan=True)
    os.replace(args.result_file + ".tmp", args.result_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
