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
  learner (policy forward passes while collecting, PPO updates);
- the same split in CPU time per step (``env_cpu_us_per_step``, ``learner_cpu_us_per_step``):
  process time (one torch thread, one render thread: the process runs one thread at a time). It
  is less sensitive to the other processes than wall time, not immune: on the shared 2 vCPUs
  their load also slows each instruction (shared caches, sibling hyperthreads).

Both paths of a regime live in the same process and are measured in alternating rounds (drive,
drive, learn, learn, repeated ``--rounds`` times), so they share the machine's load; their ratio
is the claim. Absolute wall-clock numbers depend on the load (record ``uptime`` with them).
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
    """Accumulates the wall and CPU time spent in the wrapped VecEnv (reset, step_async, step_wait)."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.wall = self.cpu = 0.0

    def _timed(self, fn: Any, *args: Any) -> Any:
        w, c = time.perf_counter(), time.process_time()
        out = fn(*args)
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c
        return out

    def reset(self) -> Any:
        return self._timed(self.venv.reset)

    def step_async(self, actions: np.ndarray) -> None:
        self._timed(self.venv.step_async, actions)

    def step_wait(self) -> Any:
        return self._timed(self.venv.step_wait)


class PathRun:
    """One path of a regime: its env stack (timed) and a PPO model on it, warmed up."""

    def __init__(self, cfg: TrialConfig, path: str) -> None:
        self.name = path
        self.venv = StepTimer(build_vec_env(cfg, vec_env=path))
        self.venv.action_space.seed(0)
        self.model = build_agent(cfg, self.venv)
        self.rollout = cfg.n_steps * self.venv.num_envs
        self.model.learn(self.rollout)  # warm-up: one rollout + update (kernels compiled, caches full)
        self.env_steps = self.train_steps = 0
        self.env_wall = self.env_cpu = 0.0
        self.train_wall = self.train_cpu = self.train_env_wall = self.train_env_cpu = 0.0

    def drive(self, seconds: float) -> None:
        """Random actions through the stack, no learning."""
        n = self.venv.num_envs
        self.venv.reset()
        w, c = time.perf_counter(), time.process_time()
        while time.perf_counter() - w < seconds:
            self.venv.step(np.array([self.venv.action_space.sample() for _ in range(n)]))
            self.env_steps += n
        self.env_wall += time.perf_counter() - w
        self.env_cpu += time.process_time() - c

    def learn(self, steps: int) -> None:
        self.venv.wall = self.venv.cpu = 0.0
        w, c = time.perf_counter(), time.process_time()
        self.model.learn(steps, reset_num_timesteps=False)
        self.train_wall += time.perf_counter() - w
        self.train_cpu += time.process_time() - c
        self.train_env_wall += self.venv.wall
        self.train_env_cpu += self.venv.cpu
        self.train_steps += steps

    def row(self, regime: str) -> dict[str, Any]:
        us = 1e6 / self.train_steps
        return {"regime": regime, "path": self.name, "n_envs": self.venv.num_envs, "steps": self.train_steps,
                "env_only_steps_per_sec": round(self.env_steps / self.env_wall),
                "env_only_cpu_us_per_step": round(1e6 * self.env_cpu / self.env_steps, 1),
                "train_steps_per_sec": round(self.train_steps / self.train_wall, 1),
                "env_share": round(self.train_env_wall / self.train_wall, 3),
                "env_cpu_us_per_step": round(us * self.train_env_cpu, 1),
                "learner_cpu_us_per_step": round(us * (self.train_cpu - self.train_env_cpu), 1),
                "obs_shape": list(self.venv.observation_space.shape)}


def measure(regime: str, steps: int, rounds: int) -> list[dict[str, Any]]:
    """Both paths of a regime, in alternating rounds so that they share the machine's load."""
    cfg = TrialConfig(**REGIMES[regime])
    runs = [PathRun(cfg, name) for name in PATHS]
    rollout = runs[0].rollout
    chunk = max(rollout, steps // rounds // rollout * rollout)
    try:
        for _ in range(rounds):
            for run in runs:
                run.drive(1.0)
            for run in runs:
                run.learn(chunk)
    finally:
        for run in runs:
            run.venv.close()
    dummy, batched = rows = [run.row(regime) for run in runs]
    for key in ("train_steps_per_sec", "env_only_steps_per_sec"):
        batched[f"{key.removesuffix('_steps_per_sec')}_speedup_vs_dummy"] = round(batched[key] / dummy[key], 2)
    batched["env_cpu_ratio_vs_dummy"] = round(batched["env_cpu_us_per_step"] / dummy["env_cpu_us_per_step"], 2)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8192, help="learning steps per path and regime (default: 8192)")
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds per regime (default: 4)")
    p.add_argument("--only", nargs="*", choices=sorted(REGIMES), help="regimes to run (default: all)")
    p.add_argument("--json", action="store_true", help="JSON lines output")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for regime in args.only or REGIMES:
        for row in measure(regime, args.steps, args.rounds):
            print(json.dumps(row) if args.json else
                  f"{regime:<13} {row['path']:<8} env-only {row['env_only_steps_per_sec']:>6} steps/s   "
                  f"train {row['train_steps_per_sec']:>7} steps/s   env share {row['env_share']:.0%} "
                  f"(CPU per step: env {row['env_cpu_us_per_step']} us, learner {row['learner_cpu_us_per_step']} us)",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
