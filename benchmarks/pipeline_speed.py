"""Training steps/s of observation pipelines x n_envs (PPO, embedded simulator).

    .venv/bin/python benchmarks/pipeline_speed.py [--steps 2048] [--json]

Each row: a fresh PPO on generated_track learns --steps steps (after one warm-up rollout that
compiles numba kernels and fills caches); steps/s = steps / learn time. Also the env-only rate
(random actions, no learning) so the learner's share of the time is visible.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np

from donkeyrl.rl.agents import build_agent
from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.envbuild import build_vec_env

RAW = dict(obs_width=160, obs_height=120, grey=False, crop_top=0.0, frame_stack=1, policy_net="nature")
SMALL = dict(obs_width=64, obs_height=32, grey=True, crop_top=0.4, frame_stack=2, policy_net="compact")
MEDIUM = dict(obs_width=80, obs_height=48, grey=True, crop_top=0.4, frame_stack=2, policy_net="compact")
PIPELINES = {
    "raw-120x160x3-nature-1env": (RAW, 1, "dummy"),
    "raw-120x160x3-nature-4env": (RAW, 4, "dummy"),
    "medium-48x80g-compact-4env": (MEDIUM, 4, "dummy"),
    "small-32x64g-compact-1env": (SMALL, 1, "dummy"),
    "small-32x64g-compact-4env": (SMALL, 4, "dummy"),
    "small-32x64g-compact-8env": (SMALL, 8, "dummy"),
    "small-32x64g-compact-4env-subproc": (SMALL, 4, "subproc"),
}


def measure(name: str, steps: int) -> dict:
    obs, n_envs, vec = PIPELINES[name]
    n_steps = 256 if not name.startswith("raw") else 64
    cfg = TrialConfig(n_envs=n_envs, vec_env=vec, n_steps=n_steps, batch_size=256 if n_steps * n_envs >= 256
                      else n_steps * n_envs, **obs)
    venv = build_vec_env(cfg)
    try:
        venv.reset()
        t = time.perf_counter()
        n_env_steps = 0
        while time.perf_counter() - t < 3.0:
            venv.step(np.array([venv.action_space.sample() for _ in range(n_envs)]))
            n_env_steps += n_envs
        env_rate = n_env_steps / (time.perf_counter() - t)
        model = build_agent(cfg, venv)
        model.learn(n_steps * n_envs)  # warm-up: one rollout + update
        total = max(steps, n_steps * n_envs)
        t = time.perf_counter()
        model.learn(total, reset_num_timesteps=False)
        rate = total / (time.perf_counter() - t)
    finally:
        venv.close()
    return {"pipeline": name, "n_envs": n_envs, "vec_env": vec, "env_only_steps_per_sec": round(env_rate),
            "train_steps_per_sec": round(rate, 1), "steps": total,
            "obs_shape": list(venv.observation_space.shape)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4096, help="learning steps per pipeline (default: 4096)")
    p.add_argument("--only", nargs="*", choices=sorted(PIPELINES), help="pipelines to run (default: all)")
    p.add_argument("--json", action="store_true", help="JSON lines output")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for name in args.only or PIPELINES:
        steps = args.steps if not name.startswith("raw") else min(args.steps, 1024)
        row = measure(name, steps)
        print(json.dumps(row) if args.json else
              f"{name:<36} env-only {row['env_only_steps_per_sec']:>6} steps/s   "
              f"train {row['train_steps_per_sec']:>7} steps/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
