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
Goals: single >= 5,000 steps/s, vector >= 20,000 aggregate (on an idle 2-core machine).

``--compare-old``: also run both measurements with the previous renderer (flat ground, kerbs; loaded
from git history by benchmarks/render_throughput.py) swapped into the same environments, in the
same run, so the new renderer's cost is a ratio free of the machine's load. The previous renderer
draws the same track geometry (path, edges, centre line) in its own look.

Usage:
    .venv/bin/python benchmarks/sim_throughput.py [--steps 5000] [--vector-steps 600] [--json] [--compare-old]
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
from donkeyrl.sim.track import Track

REAL_SIM_RATE = 20.0  # steps/s of the DonkeyCar simulator (0.05 s control period)


class OldRenderer:
    """The previous renderer behind the current renderer's interface (for --compare-old).

    It draws the same track geometry (path, edges, centre line, barriers) in its own flat look;
    appearances are ignored (the benchmark runs without domain randomisation).
    """

    def __init__(self, track: Track, camera: object) -> None:
        import importlib

        from render_throughput import load_old_renderer

        self._old = load_old_renderer()
        self._old_track = importlib.import_module(self._old.__name__.rsplit(".", 1)[0] + ".track")
        self._camera = self._old.CameraConfig(width=camera.width, height=camera.height,  # type: ignore[attr-defined]
                                              grey=camera.grey, crop_top=camera.crop_top)  # type: ignore[attr-defined]
        self.camera = camera
        self.set_track(track)

    def set_track(self, track: Track) -> None:
        old = self._old_track.Track(name=track.name, points=track.points, lat_left=track.lat_left,
                                    lat_right=track.lat_right, centre_lat=track.centre_lat, closed=track.closed,
                                    barriers=track.barriers, barrier_margin=track.barrier_margin)
        self.track = track
        self._r = self._old.Renderer(old, self._camera)

    def render(self, x: float, z: float, yaw: float, appearance: object = None, out: np.ndarray | None = None,
               track: Track | None = None) -> np.ndarray:
        return self._r.render(x, z, yaw, out=out)

    def render_batch(self, xs: np.ndarray, zs: np.ndarray, yaws: np.ndarray, out: np.ndarray | None = None,
                     appearances: object = None, tracks: object = None) -> np.ndarray:
        return self._r.render_batch(xs, zs, yaws, out=out)


def _use_old_renderer(sim: object) -> None:
    sim.renderer = OldRenderer(sim.track, sim.renderer.camera)  # type: ignore[attr-defined]


def bench_single(track: str, steps: int, warmup: int, action: np.ndarray, old: bool = False) -> dict[str, float]:
    """Steps/s of one DonkeyEnv; resets excluded from ``steps_per_sec``, included in the other."""
    env = make_env(track, seed=0)
    if old:
        _use_old_renderer(env.unwrapped.sim)  # type: ignore[attr-defined]
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


def bench_vector(track: str, n_envs: int, steps: int, warmup: int, action: np.ndarray,
                 old: bool = False) -> dict[str, float]:
    """Aggregate car-steps/s of a DonkeyVecEnv (auto-resets inside step are included)."""
    venv = DonkeyVecEnv(n_envs, track, seed=0)
    if old:
        _use_old_renderer(venv.sim)
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
    p.add_argument("--compare-old", action="store_true",
                   help="also measure with the previous renderer, in the same run")
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
    if args.compare_old:
        old_single = bench_single(args.track, args.steps, args.warmup, action, old=True)
        old_vector = bench_vector(args.track, args.n_envs, args.vector_steps, max(args.warmup // 4, 10), action,
                                  old=True)
        result.update({
            "old_renderer_single_env_steps_per_sec": round(old_single["steps_per_sec"], 1),
            "old_renderer_vector_env_steps_per_sec": round(old_vector["steps_per_sec"], 1),
            "old_renderer_single_env_cpu_us_per_step": round(old_single["cpu_us_per_step"], 1),
            "old_renderer_vector_env_cpu_us_per_car_step": round(old_vector["cpu_us_per_car_step"], 1),
            "single_env_new_over_old_rate": round(single["steps_per_sec"] / old_single["steps_per_sec"], 3),
            "vector_env_new_over_old_rate": round(vector["steps_per_sec"] / old_vector["steps_per_sec"], 3),
            "load_avg_1min_after": round(os.getloadavg()[0], 2)})
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
        if args.compare_old:
            print(f"old render : single {result['old_renderer_single_env_steps_per_sec']:.0f} steps/s, "
                  f"vector {result['old_renderer_vector_env_steps_per_sec']:.0f}; new/old rate: single "
                  f"{result['single_env_new_over_old_rate']:.2f}, vector {result['vector_env_new_over_old_rate']:.2f}")
        print(f"load avg   : {result['load_avg_1min']} on {result['cpu_count']} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
