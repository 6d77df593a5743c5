"""Camera renderer throughput: the current renderer against the previous one, in the same run.

Run:  .venv/bin/python benchmarks/render_throughput.py [--json] [--seconds S] [--old-rev REV]

The previous renderer (flat ground-plane renderer with kerbs, before walls, cones, scene looks
and the multi-track atlas) is loaded from git history (``--old-rev``, default the last commit
that had it) into a temporary package, so both are timed in this one process on the same poses.

Poses are cars driving along a 288-unit closed test loop (built with Track.from_waypoints, the
same waypoints for both renderers, barriers on) with lateral offsets and heading errors, so the
frames show bends, edges, barriers and grass like real driving; plus the real mountain_track
scene (walls and fences on both sides) for the current renderer. Kernels are compiled (and
rasters built) before timing. Reports wall-clock frames/s and CPU microseconds per frame (process
time, all threads): on a shared machine wall-clock numbers depend on other processes' load, the
CPU cost much less so. Also the raster build time and memory of a long (about 2,000-unit) road.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numba
import numpy as np

from donkeyrl.sim.camera import CameraConfig, Renderer
from donkeyrl.sim.raster import build_raster
from donkeyrl.sim.track import Track

BATCH = 16
#: Last commit with the previous renderer (flat ground, kerbs; sim/camera.py, raster.py,
#: render_kernels.py, appearance.py and the track module it reads).
OLD_RENDERER_REV = "9c03b55"
OLD_MODULES = ("appearance", "camera", "raster", "render_kernels", "track")
REPO = Path(__file__).resolve().parents[1]


def load_old_renderer(rev: str = OLD_RENDERER_REV) -> ModuleType:
    """The previous renderer's package (``camera``, ``track``...) imported from git revision ``rev``.

    Its modules are written to a temporary directory as package ``oldsim_<rev>`` with their
    ``donkeyrl.sim`` imports pointed at it, so both renderers live side by side.
    """
    pkg = f"oldsim_{re.sub(r'[^0-9A-Za-z]', '_', rev)}"
    root = Path(tempfile.mkdtemp(prefix="donkeyrl_old_renderer_"))
    (root / pkg).mkdir()
    (root / pkg / "__init__.py").write_text("")
    for mod in OLD_MODULES:
        src = subprocess.run(["git", "show", f"{rev}:src/donkeyrl/sim/{mod}.py"], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout
        src = src.replace("from donkeyrl.sim import", f"from {pkg} import").replace("donkeyrl.sim.", f"{pkg}.")
        (root / pkg / f"{mod}.py").write_text(src)
    sys.path.insert(0, str(root))
    return importlib.import_module(f"{pkg}.camera")


def test_loop_waypoints(scale: float = 1.2) -> np.ndarray:
    """A smooth closed loop with six bends of varying radius (about 290 units)."""
    th = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    return scale * np.stack([40 * np.sin(th) * (1 + 0.3 * np.cos(3 * th)), 30 * np.cos(th)], axis=1)


def long_road(seed: int = 1, steps: int = 250) -> Track:
    """An open random road of about 2,000 units (like the DonkeyCar generated road)."""
    rng = np.random.default_rng(seed)
    heading = np.cumsum(rng.uniform(-0.25, 0.25, steps))
    pts = np.cumsum(8.0 * np.stack([np.sin(heading), np.cos(heading)], 1), axis=0)
    return Track.from_waypoints("bench-road", pts, 5.0, closed=False, path_offset=2.0, check=False)


def poses(track: object, n: int, seed: int = 0, lateral: float = 0.0) -> np.ndarray:
    """(n, 3) poses x, z, yaw near the path (+- 3 units around ``lateral``, +- 0.3 rad)."""
    rng = np.random.default_rng(seed)
    pts, nrm, tan = track.points, track.normals, track.tangents  # type: ignore[attr-defined]
    idx = rng.integers(0, len(pts), n)
    lat = lateral + rng.uniform(-3.0, 3.0, n)
    p = pts[idx] + nrm[idx] * lat[:, None]
    yaw = np.arctan2(tan[idx, 0], tan[idx, 1]) + rng.uniform(-0.3, 0.3, n)
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


def time_single(r: object, shape: tuple[int, ...], ps: np.ndarray, seconds: float) -> tuple[float, float]:
    out = np.empty(shape, np.uint8)

    def one(p: np.ndarray) -> None:
        r.render(p[0], p[1], p[2], out=out)  # type: ignore[attr-defined]
    return _run(one, list(ps), 1, seconds)


def time_batch(r: object, shape: tuple[int, ...], ps: np.ndarray, seconds: float) -> tuple[float, float]:
    out = np.empty((BATCH, *shape), np.uint8)

    def batch(g: np.ndarray) -> None:
        r.render_batch(g[:, 0], g[:, 1], g[:, 2], out=out)  # type: ignore[attr-defined]
    return _run(batch, [ps[i:i + BATCH] for i in range(0, len(ps) - BATCH + 1, BATCH)], BATCH, seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--seconds", type=float, default=2.0, help="timing duration of each measurement (s)")
    ap.add_argument("--old-rev", default=OLD_RENDERER_REV, help="git revision of the previous renderer "
                    "(default: %(default)s)")
    args = ap.parse_args()

    old = load_old_renderer(args.old_rev)
    old_track_mod = importlib.import_module(old.__name__.rsplit(".", 1)[0] + ".track")
    wp = test_loop_waypoints()
    new_track = Track.from_waypoints("bench-loop", wp, 4.0, closed=True, barriers=True)
    old_track = old_track_mod.Track.from_waypoints("bench-loop", wp, 4.0, closed=True, barriers=True)
    ps = poses(new_track, 512)
    configs = {"rgb_120x160": dict(), "grey_crop_60x80": dict(width=80, height=60, grey=True, crop_top=1 / 3)}
    res: dict[str, object] = {"track_length": round(new_track.length, 1), "batch": BATCH, "old_rev": args.old_rev,
                              "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                              "numba_threads": numba.get_num_threads(),
                              "load_avg_1min_before": round(os.getloadavg()[0], 2)}
    for name, kw in configs.items():
        # the same camera pose for both (the previous renderer's default height was 1.12)
        new_r = Renderer(new_track, CameraConfig(cam_height=1.12, **kw))  # type: ignore[arg-type]
        old_r = old.Renderer(old_track, old.CameraConfig(**kw))
        shape = new_r.camera.shape
        for label, r in (("old", old_r), ("new", new_r)):
            fps, cpu_us = time_single(r, shape, ps, args.seconds)
            res[f"{name}_single_fps_{label}"], res[f"{name}_single_cpu_us_{label}"] = round(fps), round(cpu_us, 1)
            fps, cpu_us = time_batch(r, shape, ps, args.seconds)
            res[f"{name}_batch{BATCH}_fps_{label}"] = round(fps)
            res[f"{name}_batch{BATCH}_cpu_us_{label}"] = round(cpu_us, 1)
        res[f"{name}_single_new_over_old_cpu"] = round(res[f"{name}_single_cpu_us_new"] /  # type: ignore[operator]
                                                      res[f"{name}_single_cpu_us_old"], 2)
    from donkeyrl.sim.tracks import get_track

    mt = get_track("mountain_track")
    fps, cpu_us = time_single(Renderer(mt), CameraConfig().shape, poses(mt, 256, lateral=mt.drive_lateral),
                              args.seconds)
    res["mountain_track_rgb_single_fps_new"], res["mountain_track_rgb_single_cpu_us_new"] = round(fps), round(cpu_us, 1)
    road = long_road()
    t0 = time.perf_counter()
    raster = build_raster(road)
    res["long_road_length"] = round(road.length, 1)
    res["long_road_raster_build_s"] = round(time.perf_counter() - t0, 3)
    res["long_road_raster_mb"] = round(raster.nbytes / 1e6, 1)
    res["long_road_raster_cell"] = round(raster.h, 3)
    res["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:45s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
