"""Built-in simulator throughput: env steps per second with physics and full camera rendering.

Two measurements, both in this one process:

* single env: ``DonkeyEnv.step`` with a fixed action on a 120x160x3 camera. Only the ``step``
  calls are timed; the resets after an episode ends (the fixed action leaves the road on a bend
  and terminates on cte) are excluded from the timer. The rate with resets included is reported
  too (``single_env_steps_per_sec_with_resets``).
* vector env: ``DonkeyVecEnv`` with 16 cars (one batched physics call, one parallel batched render
  per step), aggregate car-steps per second = n_envs x steps / time. Its auto-resets happen inside
  ``step`` and are included.

CPU time (``time.process_time``, all threads of this process) is reported beside the wall-clock
rates: the machine's cores are shared with other jobs, so wall-clock rates move with their load
while CPU us per step is the simulator's own cost.

``realtime_ratio`` = single env rate / 20 steps/s (the DonkeyCar simulator's fixed control rate).
Goals (issue 3): single >= 5,000 steps/s, vector >= 20,000 aggregate.

Usage:
    .venv/bin/python benchmarks/sim_throughput.py [--steps 5000] [--vector-steps 600] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from donkeyrl.envs import make_env
from donkeyrl.envs.vector import DonkeyVecEnv

REAL_SIM_RATE = 20.0  # steps/s of the DonkeyCar simulator (0.05 s control period)


def bench_single(track: str, steps: int, warmup: int, action: np.ndarray) -> dict[str, float]:
    """Steps/s of one DonkeyEnv; resets excluded from ``steps_per_sec``, included in the other."""
    env = make_env(track, seed=0)
    for _ in range(warmup):  # compile / cache kernels, warm the raster
        if any(env.step(action)[2:4]):
            env.reset()
    env.reset(seed=0)
    stepping, cpu, episodes = 0.0, 0.0, 0
    t_all = time.perf_counter()
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        _, _, terminated, truncated, _ = env.step(action)
        stepping += time.perf_counter() - t0
        cpu += time.process_time() - c0
        if terminated or truncated:
            env.reset()
            episodes += 1
    total = time.perf_counter() - t_all
    env.close()
    return {"steps_per_sec": steps / stepping, "steps_per_sec_with_resets": steps / total,
            "episodes": episodes, "us_per_step": 1e6 * stepping / steps, "cpu_us_per_step": 1e6 * cpu / steps}


def bench_vector(track: str, n_envs: int, steps: int, warmup: int, action: np.ndarray) -> dict[str, float]:
    """Aggregate car-steps/s of a DonkeyVecEnv (auto-resets inside step are included)."""
    venv = DonkeyVecEnv(n_envs, track, seed=0)
    actions = np.tile(action, (n_envs, 1))
    venv.reset()
    for _ in range(warmup):
        venv.step(actions)
    dones = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        dones += int(venv.step(actions)[2].sum())
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    venv.close()
    return {"steps_per_sec": n_envs * steps / dt, "episodes": dones, "us_per_batch": 1e6 * dt / steps,
            "cpu_us_per_car_step": 1e6 * cpu / (n_envs * steps)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--track", default="generated_track", help="track to drive (default: %(default)s)")
    p.add_argument("--steps", type=int, default=5000, help="single-env steps timed (default: %(default)s)")
    p.add_argument("--vector-steps", type=int, default=600,
                   help="vector-env batch steps timed (default: %(default)s)")
    p.add_argument("--n-envs", type=int, default=16, help="cars in the vector env (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=200, help="untimed warm-up steps (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args(argv)
    if min(args.steps, args.vector_steps, args.n_envs) < 1 or args.warmup < 0:
        p.error("--steps, --vector-steps and --n-envs must be >= 1, --warmup >= 0")
    action = np.array([0.05, 0.5], np.float32)  # fixed: slight right steer, half throttle
    single = bench_single(args.track, args.steps, args.warmup, action)
    vector = bench_vector(args.track, args.n_envs, args.vector_steps, max(args.warmup // 4, 10), action)
    result = {
        "single_env_steps_per_sec": round(single["steps_per_sec"], 1),
        "vector_env_steps_per_sec": round(vector["steps_per_sec"], 1),
        "realtime_ratio": round(single["steps_per_sec"] / REAL_SIM_RATE, 1),
        "single_env_steps_per_sec_with_resets": round(single["steps_per_sec_with_resets"], 1),
        "single_env_cpu_us_per_step": round(single["cpu_us_per_step"], 1),
        "vector_env_cpu_us_per_car_step": round(vector["cpu_us_per_car_step"], 1),
        "single_env_episodes": single["episodes"], "vector_env_episodes": vector["episodes"],
        "n_envs": args.n_envs, "track": args.track, "camera": "120x160x3",
        "steps": args.steps, "vector_steps": args.vector_steps,
        "load_avg_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"single env : {result['single_env_steps_per_sec']:>10.0f} steps/s "
              f"({single['us_per_step']:.0f} us/step, resets excluded; "
              f"{result['single_env_steps_per_sec_with_resets']:.0f} with resets; "
              f"CPU {single['cpu_us_per_step']:.0f} us/step)  goal 5000")
        print(f"vector env : {result['vector_env_steps_per_sec']:>10.0f} steps/s aggregate "
              f"({args.n_envs} cars, {vector['us_per_batch']:.0f} us/batch; "
              f"CPU {vector['cpu_us_per_car_step']:.0f} us/car-step, all threads)  goal 20000")
        print(f"realtime   : {result['realtime_ratio']:>10.1f} x the real simulator's 20 steps/s")
        print(f"load avg   : {result['load_avg_1min']} on {result['cpu_count']} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
