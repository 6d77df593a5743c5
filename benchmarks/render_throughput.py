"""Camera renderer throughput: frames/s for one car and for a batch of 16, RGB and a small grey crop.

Run:  .venv/bin/python benchmarks/render_throughput.py [--json] [--seconds S]

Poses are cars driving along a 300-unit closed test loop (built with Track.from_waypoints, so the
benchmark does not depend on the track catalogue) with lateral offsets and heading errors, so the
frames show bends, edges and grass like real driving. Kernels are compiled (and the raster built)
before timing. Reports wall-clock frames/s and CPU microseconds per frame (process time, all
threads): on a shared machine the wall-clock numbers depend on other processes' load, the CPU cost
much less so. Also reports the raster build time and memory of a long (about 2,000-unit) road.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numba
import numpy as np

from donkeyrl.sim.camera import CameraConfig, Renderer
from donkeyrl.sim.raster import build_raster
from donkeyrl.sim.track import Track

BATCH = 16


def test_loop(scale: float = 1.2) -> Track:
    """A smooth closed loop with six bends of varying radius (about 300 units, half-width 4)."""
    th = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    wp = scale * np.stack([40 * np.sin(th) * (1 + 0.3 * np.cos(3 * th)), 30 * np.cos(th)], axis=1)
    return Track.from_waypoints("bench-loop", wp, 4.0, closed=True, barriers=True)


def long_road(seed: int = 1, steps: int = 250) -> Track:
    """An open random road of about 2,000 units (like the DonkeyCar generated road)."""
    rng = np.random.default_rng(seed)
    heading = np.cumsum(rng.uniform(-0.25, 0.25, steps))
    pts = np.cumsum(8.0 * np.stack([np.sin(heading), np.cos(heading)], 1), axis=0)
    return Track.from_waypoints("bench-road", pts, 5.0, closed=False, path_offset=2.5, check=False)


def poses(track: Track, n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) poses x, z, yaw near the path."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, track.n, n)
    lat = rng.uniform(-3.0, 3.0, n)
    p = track.points[idx] + track.normals[idx] * lat[:, None]
    yaw = np.arctan2(track.tangents[idx, 0], track.tangents[idx, 1]) + rng.uniform(-0.3, 0.3, n)
    return np.column_stack([p, yaw])


def _run(render_group, groups: list[np.ndarray], frames_per_group: int, seconds: float) -> tuple[float, float]:
    """(wall-clock frames/s, CPU microseconds per frame) of rendering ``groups`` repeatedly."""
    render_group(groups[0])
    frames, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        for g in groups:
            render_group(g)
        frames += frames_per_group * len(groups)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return frames / wall, cpu / frames * 1e6


def time_single(r: Renderer, ps: np.ndarray, seconds: float) -> tuple[float, float]:
    out = np.empty(r.camera.shape, np.uint8)

    def one(p: np.ndarray) -> None:
        r.render(p[0], p[1], p[2], out=out)
    return _run(one, list(ps), 1, seconds)


def time_batch(r: Renderer, ps: np.ndarray, seconds: float) -> tuple[float, float]:
    out = np.empty((BATCH, *r.camera.shape), np.uint8)

    def batch(g: np.ndarray) -> None:
        r.render_batch(g[:, 0], g[:, 1], g[:, 2], out=out)
    return _run(batch, [ps[i:i + BATCH] for i in range(0, len(ps) - BATCH + 1, BATCH)], BATCH, seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--seconds", type=float, default=2.0, help="timing duration of each measurement (s)")
    args = ap.parse_args()

    track = test_loop()
    ps = poses(track, 512)
    configs = {"rgb_120x160": CameraConfig(),
               "grey_crop_60x80": CameraConfig(width=80, height=60, grey=True, crop_top=1 / 3)}
    res: dict[str, object] = {"track_length": round(track.length, 1), "batch": BATCH,
                              "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                              "numba_threads": numba.get_num_threads(),
                              "load_avg_1min_before": round(os.getloadavg()[0], 2)}
    for name, cfg in configs.items():
        r = Renderer(track, cfg)
        fps, cpu_us = time_single(r, ps, args.seconds)
        res[f"{name}_single_fps"], res[f"{name}_single_cpu_us_per_frame"] = round(fps), round(cpu_us, 1)
        fps, cpu_us = time_batch(r, ps, args.seconds)
        res[f"{name}_batch{BATCH}_fps"], res[f"{name}_batch{BATCH}_cpu_us_per_frame"] = round(fps), round(cpu_us, 1)
    road = long_road()
    t0 = time.perf_counter()
    raster = build_raster(road)
    res["long_road_length"] = round(road.length, 1)
    res["long_road_raster_build_s"] = round(time.perf_counter() - t0, 3)
    res["long_road_raster_mb"] = round(raster.nbytes / 1e6, 1)
    res["long_road_raster_cell"] = round(raster.h, 3)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:40s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
