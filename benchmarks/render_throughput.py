"""Camera renderer throughput: frames/s for one car and for a batch of 16, RGB and a small grey crop.

Run:  .venv/bin/python benchmarks/render_throughput.py [--json] [--seconds S]

Poses are cars driving along a 300-unit closed test loop (built with Track.from_waypoints, so the
benchmark does not depend on the track catalogue) with lateral offsets and heading errors, so the
frames show bends, edges and grass like real driving. Kernels are compiled (and the raster built)
before timing. Also reports the raster build time and memory of a long (about 2,000-unit) road.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

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


def time_single(r: Renderer, ps: np.ndarray, seconds: float) -> float:
    out = np.empty(r.camera.shape, np.uint8)
    r.render(*ps[0], out=out)
    frames, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for x, z, yaw in ps:
            r.render(x, z, yaw, out=out)
        frames += len(ps)
    return frames / (time.perf_counter() - t0)


def time_batch(r: Renderer, ps: np.ndarray, seconds: float) -> float:
    out = np.empty((BATCH, *r.camera.shape), np.uint8)
    groups = [ps[i:i + BATCH] for i in range(0, len(ps) - BATCH + 1, BATCH)]
    r.render_batch(groups[0][:, 0], groups[0][:, 1], groups[0][:, 2], out=out)
    frames, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for g in groups:
            r.render_batch(g[:, 0], g[:, 1], g[:, 2], out=out)
        frames += BATCH * len(groups)
    return frames / (time.perf_counter() - t0)


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
                              "cpu": platform.processor() or platform.machine()}
    for name, cfg in configs.items():
        r = Renderer(track, cfg)
        res[f"{name}_single_fps"] = round(time_single(r, ps, args.seconds))
        res[f"{name}_batch{BATCH}_fps"] = round(time_batch(r, ps, args.seconds))
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
            print(f"{k:34s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
