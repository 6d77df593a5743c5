"""Env-only and PPO training steps/s of the per-env and the batched training paths, in one run.

    .venv/bin/python benchmarks/pipeline_speed.py [--steps 8192] [--only default procedural] [--json]

For each regime (the default pipeline on generated_track; the training catalogue with domain
randomisation, i.e. the multi-track recipe; the procedural stream) and each path (``dummy``: one
EmbeddedDonkeyEnv per car wrapped one by one, the path training used before; ``batched``: one
BatchedDonkeyEnv for all cars with the batch wrappers), with the same TrialConfig (the default
one: PPO, 8 cars, 64x32 grey crop, 2 stacked frames, CompactCNN, 1 torch thread):

- ``env_only_steps_per_sec``: random actions through the whole stack for 3 s, no learning;
- ``train_steps_per_sec``: a fresh PPO learns ``--steps`` steps (after one warm-up rollout +
  update that compiles kernels and fills caches);
- ``env_share``: the fraction of that training time spent inside the VecEnv (stepping, resets,
  wrappers, frame stacking), measured by a timing wrapper around the stack; the rest is the
  learner (policy forward passes while collecting, PPO updates).

Paths of one regime run back to back in the same process, so their ratio is the claim; absolute
numbers depend on the machine's load (record ``uptime`` with them).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from donkeyrl.rl.agents import build_agent
from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.envbuild import build_vec_env

#: Regime name -> TrialConfig overrides (everything else: the defaults of ``donkeyrl train``).
REGIMES: dict[str, dict[str, Any]] = {
    "default": {},
    "catalogue-dr": {"tracks": ("catalogue",), "domain_randomization": True},
    "procedural": {"tracks": ("procedural",)},
}
PATHS = ("dummy", "batched")


class StepTimer(VecEnvWrapper):
    """Accumulates the wall time spent in the wrapped VecEnv (reset, step_async, step_wait)."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.seconds = 0.0

    def reset(self) -> Any:
        t = time.perf_counter()
        obs = self.venv.reset()
        self.seconds += time.perf_counter() - t
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        t = time.perf_counter()
        self.venv.step_async(actions)
        self.seconds += time.perf_counter() - t

    def step_wait(self) -> Any:
        t = time.perf_counter()
        out = self.venv.step_wait()
        self.seconds += time.perf_counter() - t
        return out


def env_only(venv: VecEnv, seconds: float = 3.0) -> float:
    """Car-steps/s of random actions through the stack."""
    venv.action_space.seed(0)
    venv.reset()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        venv.step(np.array([venv.action_space.sample() for _ in range(venv.num_envs)]))
        n += venv.num_envs
    return n / (time.perf_counter() - t0)


def measure(regime: str, path: str, steps: int) -> dict[str, Any]:
    cfg = TrialConfig(**REGIMES[regime])
    venv = StepTimer(build_vec_env(cfg, vec_env=path))
    try:
        env_rate = env_only(venv)
        model = build_agent(cfg, venv)
        rollout = cfg.n_steps * venv.num_envs
        model.learn(rollout)  # warm-up: one rollout + update
        total = max(steps, rollout)
        venv.seconds = 0.0
        t = time.perf_counter()
        model.learn(total, reset_num_timesteps=False)
        learn_sec = time.perf_counter() - t
    finally:
        venv.close()
    return {"regime": regime, "path": path, "n_envs": venv.num_envs, "steps": total,
            "env_only_steps_per_sec": round(env_rate), "train_steps_per_sec": round(total / learn_sec, 1),
            "env_share": round(venv.seconds / learn_sec, 3), "learner_share": round(1 - venv.seconds / learn_sec, 3),
            "obs_shape": list(venv.observation_space.shape)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8192, help="learning steps per row (default: 8192)")
    p.add_argument("--only", nargs="*", choices=sorted(REGIMES), help="regimes to run (default: all)")
    p.add_argument("--json", action="store_true", help="JSON lines output")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for regime in args.only or REGIMES:
        rows = [measure(regime, path, args.steps) for path in PATHS]
        dummy, batched = rows
        for key in ("train_steps_per_sec", "env_only_steps_per_sec"):
            batched[f"{key.removesuffix('_steps_per_sec')}_speedup_vs_dummy"] = round(batched[key] / dummy[key], 2)
        for row in rows:
            print(json.dumps(row) if args.json else
                  f"{regime:<13} {row['path']:<8} env-only {row['env_only_steps_per_sec']:>6} steps/s   "
                  f"train {row['train_steps_per_sec']:>7} steps/s   env share {row['env_share']:.0%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
