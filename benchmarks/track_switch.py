"""Cost of a fresh procedural track, the dense raster renderer against the tiled one, in one run.

Run:  .venv/bin/python benchmarks/track_switch.py [--seeds 20] [--rounds 3] [--warm 40] [--env-seconds 4] [--json]

The ``procedural`` and ``mixed`` training regimes put each car on a new procedural track every
episode, so everything a new track needs before its first frame is paid once per episode. Per
track, for seeds drawn like the training stream (``TRAIN_SEED_RANGE``):

- ``generate``: :func:`donkeyrl.sim.generators.generate_track` (the same code for both renderers);
- ``set_track``: the simulator's :meth:`Simulator.set_track` for one of its 8 cars (physics arrays);
- ``first_frame``: that car's first frame: the raster build, the renderer's slot for the track
  and the frame itself (``raster`` alone is also timed, on the same Track, as ``raster_only``);
- frames: every track is also rendered at several poses (on and off the road, scene and random
  looks, RGB and the training's grey crop) by both renderers, and the frames are compared.

The previous renderer (dense rasters: ``sim/camera.py``, ``raster.py``, ``render_kernels.py``) is
loaded from git history (``--old-rev``) into a temporary package; everything else (tracks,
looks, simulator) is today's code, so both paths see the same Track objects and the only
difference is the raster and its slot. The simulator's 8 cars keep their earlier tracks while one
car switches, as in training, so the renderers' atlases are in their steady state.

Then the env-only rate of the training path on the procedural regime: ``build_vec_env`` (the
default TrialConfig, ``tracks=("procedural",)``, batched, 8 cars) driven with random actions
(so episodes are short, like early training), once with each renderer, in alternating rounds
so that both share the machine's load. The two envs draw different seeds (the track cache would
otherwise hand the second one the first one's tracks).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from donkeyrl.sim import camera as new_camera
from donkeyrl.sim import raster as new_raster
from donkeyrl.sim.appearance import Appearance
from donkeyrl.sim.camera import CameraConfig
from donkeyrl.sim.generators import generate_track
from donkeyrl.sim.simulator import Simulator
from donkeyrl.sim.track import Track
from donkeyrl.sim.tracksets import TRAIN_SEED_RANGE

#: Last commit with the dense-raster renderer.
OLD_REV = "73f6f73"
OLD_MODULES = ("camera", "raster", "render_kernels")
REPO = Path(__file__).resolve().parents[1]
N_CARS = 8


def load_old(rev: str) -> ModuleType:
    """The renderer modules of git revision ``rev`` as a temporary package (today's tracks and looks)."""
    pkg = f"oldraster_{re.sub(r'[^0-9A-Za-z]', '_', rev)}"
    root = Path(tempfile.mkdtemp(prefix="donkeyrl_old_raster_"))
    (root / pkg).mkdir()
    (root / pkg / "__init__.py").write_text("")
    for mod in OLD_MODULES:
        src = subprocess.run(["git", "show", f"{rev}:src/donkeyrl/sim/{mod}.py"], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout
        for m in OLD_MODULES:
            src = src.replace(f"from donkeyrl.sim import {m}", f"from {pkg} import {m}")
            src = src.replace(f"donkeyrl.sim.{m}", f"{pkg}.{m}")
        (root / pkg / f"{mod}.py").write_text(src)
    sys.path.insert(0, str(root))
    importlib.import_module(f"{pkg}.camera")
    return importlib.import_module(pkg)


@contextlib.contextmanager
def renderer_class(cls: type) -> Iterator[None]:
    """Simulators created inside use ``cls`` as their renderer (they import it when created)."""
    saved = new_camera.Renderer
    new_camera.Renderer = cls  # type: ignore[misc]
    try:
        yield
    finally:
        new_camera.Renderer = saved  # type: ignore[misc]


def training_seeds(n: int, seed: int = 0) -> list[int]:
    """``n`` seeds drawn like the procedural training stream."""
    rng = np.random.default_rng(seed)
    return [int(rng.integers(TRAIN_SEED_RANGE.start, TRAIN_SEED_RANGE.stop)) for _ in range(n)]


def poses(track: Track, n: int, seed: int) -> np.ndarray:
    """(n, 3) poses: along the path with lateral offsets up to beyond the road and heading errors,
    the last one well off the road looking back at it."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, track.n, n)
    lat = rng.uniform(-1.0, 1.0, n) * (np.abs(track.lat_left[idx]) + 2.0)
    lat[-1] = track.lat_right[idx[-1]] + 12.0
    p = track.points[idx] + track.normals[idx] * lat[:, None]
    yaw = np.arctan2(track.tangents[idx, 0], track.tangents[idx, 1]) + rng.uniform(-0.5, 0.5, n)
    yaw[-1] += np.pi / 2
    return np.column_stack([p, yaw])


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall ms, CPU ms, result) of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return 1e3 * (time.perf_counter() - w), 1e3 * (time.process_time() - c), out


def compare_frames(old: ModuleType, track: Track, cams: list[CameraConfig], k: int) -> tuple[int, int, int]:
    """(frames compared, frames differing, largest channel difference) at several poses and looks."""
    n = diff = worst = 0
    looks: list[Appearance | None] = [None, Appearance.random(k)]
    for cam in cams:
        ro, rn = old.camera.Renderer(track, cam), new_camera.Renderer(track, cam)
        for look in looks:
            for x, z, yaw in poses(track, 6, k):
                a = ro.render(x, z, yaw, look)
                b = rn.render(x, z, yaw, look)
                n += 1
                d = int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())
                diff += d > 0
                worst = max(worst, d)
    return n, diff, worst


def per_track(old: ModuleType, seeds: list[int], rounds: int, warm: int) -> dict[str, Any]:
    """Per-track costs of both paths (alternating, fresh Track objects each time) and frame checks,
    after ``warm`` other tracks went through both simulators."""
    cam = CameraConfig(width=64, height=32, grey=True, crop_top=1 / 3)   # the default training image
    first = generate_track(seeds[0])
    with renderer_class(old.camera.Renderer):
        sims = {"old": Simulator(first, N_CARS, camera=cam)}
    sims["new"] = Simulator(first, N_CARS, camera=cam)
    for sim in sims.values():   # compile, then reach the steady state: atlases past their budget once
        sim.render(0)
        for k, seed in enumerate(training_seeds(warm, seed=1)):
            sim.set_track(generate_track(seed), car=k % N_CARS)
            sim.render(k % N_CARS)
    old.raster.build_raster(first)
    new_raster.build_raster(first)
    keys = ("generate", "set_track", "first_frame", "raster_only")
    rows: dict[str, dict[str, list[float]]] = {p: {f"{k}_{u}": [] for k in keys for u in ("ms", "cpu_ms")}
                                               for p in sims}
    mb: dict[str, list[float]] = {p: [] for p in sims}
    car = 0
    for r in range(rounds):
        for i, seed in enumerate(seeds):
            car = (car + 1) % N_CARS
            order = ("old", "new") if (i + r) % 2 == 0 else ("new", "old")
            for path in order:
                sim, row = sims[path], rows[path]
                build = old.raster.build_raster if path == "old" else new_raster.build_raster
                steps: list[tuple[str, Callable[[], Any]]] = [
                    ("generate", functools.partial(generate_track, seed)),
                    ("set_track", lambda: sim.set_track(track, car=car)),  # noqa: B023 - called at once
                    ("first_frame", lambda: sim.render(car)),  # noqa: B023
                    ("raster_only", lambda: build(track)),  # noqa: B023
                ]
                for key, fn in steps:
                    wall, cpu, res = timed(fn)
                    row[f"{key}_ms"].append(wall)
                    row[f"{key}_cpu_ms"].append(cpu)
                    if key == "generate":
                        track = res
                mb[path].append(res.nbytes / 1e6)
    out: dict[str, Any] = {"tracks_per_path": len(seeds) * rounds, "warm_up_tracks": warm}
    for path, row in rows.items():
        for u in ("ms", "cpu_ms"):
            row[f"total_{u}"] = list(np.add(np.add(row[f"generate_{u}"], row[f"set_track_{u}"]),
                                            row[f"first_frame_{u}"]))
        for key, vals in row.items():
            out[f"{path}_{key}_median"] = round(float(np.median(vals)), 2)
            out[f"{path}_{key}_mean"] = round(float(np.mean(vals)), 2)
        out[f"{path}_raster_mb_median"] = round(float(np.median(mb[path])), 2)
        out[f"{path}_raster_mb_max"] = round(float(np.max(mb[path])), 2)
    out["new_atlas_mb"] = round(sims["new"].renderer.atlas.nbytes / 1e6, 1)  # type: ignore[union-attr]
    for key in ("first_frame_ms", "first_frame_cpu_ms", "total_ms", "total_cpu_ms"):
        out[f"{key}_old_over_new_median"] = round(out[f"old_{key}_median"] / out[f"new_{key}_median"], 2)
    # frames: same Track object, both renderers
    cams = [cam, CameraConfig()]
    n = diff = worst = 0
    for k, seed in enumerate(seeds):
        a, b, c = compare_frames(old, generate_track(seed), cams, k)
        n, diff, worst = n + a, diff + b, max(worst, c)
    out["frames_compared"], out["frames_differing"], out["frames_max_channel_diff"] = n, diff, worst
    return out


def frame_cost(old: ModuleType, seeds: list[int], rounds: int = 5) -> dict[str, Any]:
    """CPU microseconds per frame of both renderers once a track is in place (the tiled raster
    adds a tile lookup per sample), RGB and the training's grey crop, poses along the path."""
    tracks = [generate_track(s) for s in seeds[:6]]
    out: dict[str, Any] = {}
    for label, cam in (("grey_64x32", CameraConfig(width=64, height=32, grey=True, crop_top=1 / 3)),
                       ("rgb_160x120", CameraConfig())):
        rends = {"old": old.camera.Renderer(tracks[0], cam), "new": new_camera.Renderer(tracks[0], cam)}
        ps = [poses(t, 64, k) for k, t in enumerate(tracks)]
        for r in rends.values():   # slots and kernels ready
            for t in tracks:
                r.render(*t.start_pose(), track=t)
        cpu = {p: 0.0 for p in rends}
        frames = 0
        for _ in range(rounds):
            for path, r in rends.items():
                c = time.process_time()
                for t, pp in zip(tracks, ps):
                    for x, z, yaw in pp:
                        r.render(x, z, yaw, track=t)
                cpu[path] += time.process_time() - c
            frames += sum(len(pp) for pp in ps)
        for path in rends:
            out[f"{path}_frame_{label}_cpu_us"] = round(1e6 * cpu[path] / frames, 1)
        out[f"frame_{label}_new_over_old_cpu"] = round(cpu["new"] / cpu["old"], 3)
    return out


def env_only(old: ModuleType, seconds: float, rounds: int) -> dict[str, Any]:
    """Env-only car-steps/s of the batched procedural training env, old vs new renderer."""
    from donkeyrl.rl.config import TrialConfig
    from donkeyrl.rl.envbuild import build_vec_env

    cfg = TrialConfig(tracks=("procedural",))
    with renderer_class(old.camera.Renderer):
        envs = {"old": build_vec_env(cfg, vec_env="batched", seed=1)}
    envs["new"] = build_vec_env(cfg, vec_env="batched", seed=1_000_003)
    stats = {p: {"steps": 0, "wall": 0.0, "cpu": 0.0, "episodes": 0} for p in envs}
    for venv in envs.values():
        venv.action_space.seed(0)
        venv.reset()
        for _ in range(50):   # warm-up: compile, first tracks
            venv.step(np.array([venv.action_space.sample() for _ in range(venv.num_envs)]))
    for _ in range(rounds):
        for path, venv in envs.items():
            st = stats[path]
            w, c = time.perf_counter(), time.process_time()
            while time.perf_counter() - w < seconds:
                _, _, dones, _ = venv.step(np.array([venv.action_space.sample() for _ in range(venv.num_envs)]))
                st["steps"] += venv.num_envs
                st["episodes"] += int(np.sum(dones))
            st["wall"] += time.perf_counter() - w
            st["cpu"] += time.process_time() - c
    out: dict[str, Any] = {"n_envs": envs["new"].num_envs, "obs_shape": list(envs["new"].observation_space.shape)}
    for path, st in stats.items():
        out[f"{path}_env_only_steps_per_sec"] = round(st["steps"] / st["wall"])
        out[f"{path}_env_only_cpu_us_per_step"] = round(1e6 * st["cpu"] / st["steps"], 1)
        out[f"{path}_mean_episode_steps"] = round(st["steps"] / max(1, st["episodes"]), 1)
    out["env_only_new_over_old"] = round(out["new_env_only_steps_per_sec"] / out["old_env_only_steps_per_sec"], 2)
    for venv in envs.values():
        venv.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="procedural tracks (training-stream seeds)")
    ap.add_argument("--rounds", type=int, default=3, help="passes over the seeds (fresh Tracks each time)")
    ap.add_argument("--warm", type=int, default=40, help="tracks through both simulators before timing "
                    "(steady state: the new atlas passes its byte budget once)")
    ap.add_argument("--env-seconds", type=float, default=4.0, help="driving time per env and round (s)")
    ap.add_argument("--env-rounds", type=int, default=3, help="alternating env-only rounds")
    ap.add_argument("--old-rev", default=OLD_REV, help="git revision of the dense-raster renderer "
                    "(default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args()
    res: dict[str, Any] = {"old_rev": args.old_rev, "cores": os.cpu_count(),
                           "load_avg_1min_before": round(os.getloadavg()[0], 2)}
    old = load_old(args.old_rev)
    seeds = training_seeds(args.seeds)
    res.update(per_track(old, seeds, args.rounds, args.warm))
    res.update(frame_cost(old, seeds))
    res.update(env_only(old, args.env_seconds, args.env_rounds))
    res["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:40s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
