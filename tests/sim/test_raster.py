"""The camera raster: the tiled build equals the brute-force grid bit for bit, the tiled sampler
equals the dense one, frames equal the dense-raster renderer's, and memory stays bounded over
many fresh procedural tracks."""

from __future__ import annotations

import gc
import importlib
import itertools
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from donkeyrl.sim import raster as R
from donkeyrl.sim.appearance import Appearance
from donkeyrl.sim.camera import CameraConfig, Renderer
from donkeyrl.sim.generators import generate_track
from donkeyrl.sim.track import Marking, Track
from donkeyrl.sim.tracks import get_track

#: Last commit whose renderer used dense rasters (sim/camera.py, raster.py, render_kernels.py).
DENSE_REV = "73f6f73"
REPO = Path(__file__).resolve().parents[2]


def polygon_track(corners: list[tuple[float, float]], closed: bool, ds: float = 0.5, hw: float = 3.0) -> Track:
    """A track along straight lines between ``corners`` sampled every ``ds`` (sharp corners: the
    scan's half-disc case), built directly, without a spline."""
    pts = []
    ring = [*corners, corners[0]] if closed else corners
    for (x0, z0), (x1, z1) in itertools.pairwise(ring):
        n = int(round(np.hypot(x1 - x0, z1 - z0) / ds))
        pts += [(x0 + (x1 - x0) * k / n, z0 + (z1 - z0) * k / n) for k in range(n)]
    if not closed:
        pts.append(ring[-1])
    return Track(name="polygon", points=np.array(pts), lat_left=-hw, lat_right=hw, centre_lat=0.0, closed=closed,
                 markings=(Marking("path", 0.0, "centre", 0.2),))


def hairpin_pair() -> Track:
    """A narrow stadium: its two straights run 7 units apart, so their bands overlap (the nearest
    segment is decided between far-apart parts of the path)."""
    th = np.linspace(0.0, np.pi, 12, endpoint=False)
    side = np.arange(5.0, 40.0, 5.0)
    wp = np.concatenate([
        np.stack([3.5 - 3.5 * np.cos(th), -3.5 * np.sin(th)], 1),          # bottom bend, (0,0) -> (7,0)
        np.stack([np.full_like(side, 7.0), side], 1),                       # up the right straight
        np.stack([3.5 + 3.5 * np.cos(th), 40.0 + 3.5 * np.sin(th)], 1),    # top bend, (7,40) -> (0,40)
        np.stack([np.zeros_like(side), side[::-1]], 1),                     # down the left straight
    ])
    return Track.from_waypoints("hairpin-pair", wp, 1.5, closed=True, check=False)


def open_road() -> Track:
    """An open road with bends (its ends are capped: nodes beyond them stay FAR)."""
    rng = np.random.default_rng(3)
    heading = np.cumsum(rng.uniform(-0.4, 0.4, 30))
    pts = np.cumsum(6.0 * np.stack([np.sin(heading), np.cos(heading)], 1), axis=0)
    return Track.from_waypoints("open-road", pts, 5.0, closed=False, path_offset=2.0, check=False)


CASES = {
    "procedural-train": lambda: generate_track(1_234_567),
    "procedural-validation": lambda: get_track("procedural-10003"),
    "mini_monaco (barriers)": lambda: get_track("mini_monaco"),
    "waveshare (tiny)": lambda: get_track("waveshare"),
    "open road": open_road,
    "square (sharp corners)": lambda: polygon_track([(0, 0), (30, 0), (30, 30), (0, 30)], closed=True),
    "zigzag (open, sharp)": lambda: polygon_track([(0, 0), (10, 0), (2, 6), (12, 12)], closed=False),
    "hairpin pair": hairpin_pair,
}


@pytest.mark.parametrize("case", list(CASES))
def test_tiled_grid_equals_brute_force_bit_for_bit(case: str) -> None:
    track = CASES[case]()
    raster = R.build_raster(track)
    dense = raster.dense()
    ref = R.reference_grid(track)
    assert dense.shape == ref.shape
    assert np.array_equal(dense.view(np.uint32), ref.view(np.uint32))
    assert (ref[:, :, 0] < R.FAR / 2).any()                      # there is road to compare
    if case == "procedural-train":  # only tiles with road or next to it: far less than the dense grid
        assert raster.tiles.shape[0] * R.TILE**2 < 0.5 * ref.shape[0] * ref.shape[1]


def test_tiled_grid_equals_brute_force_on_a_coarse_grid() -> None:
    track = generate_track(987_654)
    coarse = R.build_raster(track, max_cells=150_000)
    assert coarse.h > R.MIN_CELL
    ref = R.reference_grid(track, max_cells=150_000)
    assert np.array_equal(coarse.dense().view(np.uint32), ref.view(np.uint32))


def dense_sample(data: np.ndarray, u: float, v: float, length: float, closed: bool,
                 s_jump: float) -> tuple[float, float]:
    """The dense grid's sampler (the renderer's before tiles) in Python, with the compiled
    kernel's types: node values float32 (their differences too), everything else float64."""
    nz, nx = data.shape[:2]
    if u < 0.0 or v < 0.0 or u >= nx - 1 or v >= nz - 1:
        return R.FAR, -1.0
    iu, iv = int(u), int(v)
    au, av = np.float64(u - iu), np.float64(v - iv)
    length = np.float64(length)

    def wrap(d: np.floating) -> np.floating:
        if closed:
            if d > 0.5 * length:
                return d - length
            if d < -0.5 * length:
                return d + length
        return d

    l00, l01, l10, l11 = data[iv, iu, 0], data[iv, iu + 1, 0], data[iv + 1, iu, 0], data[iv + 1, iu + 1, 0]
    s00 = data[iv, iu, 1]
    d01 = wrap(data[iv, iu + 1, 1] - s00)
    d10 = wrap(data[iv + 1, iu, 1] - s00)
    d11 = wrap(data[iv + 1, iu + 1, 1] - s00)
    half = 0.5 * R.FAR
    if (max(l00, l01, l10, l11) < half and abs(d01) < s_jump and abs(d10) < s_jump and abs(d11) < s_jump):
        lat = l00 + au * (l01 - l00) + av * (l10 - l00) + au * av * (l11 - l10 - l01 + l00)
        s = s00 + au * d01 + av * d10 + au * av * (d11 - d10 - d01)
        if closed:
            s = s + length if s < 0.0 else (s - length if s >= length else s)
        return float(lat), float(s)
    ju = iu + 1 if au >= 0.5 else iu
    jv = iv + 1 if av >= 0.5 else iv
    lat = data[jv, ju, 0]
    return (R.FAR, -1.0) if lat >= half else (float(lat), float(data[jv, ju, 1]))


@pytest.mark.parametrize("case", ["procedural-train", "open road", "hairpin pair"])
def test_tiled_sampler_equals_dense_sampler(case: str) -> None:
    track = CASES[case]()
    raster = R.build_raster(track)
    dense = R.reference_grid(track)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, track.n, 1500)
    off = rng.uniform(-1.0, 1.0, 1500) * (raster.band + 3.0)   # across the band and beyond it
    pts = track.points[idx] + track.normals[idx] * off[:, None]
    pts[:100] = rng.uniform(-50, 400, (100, 2))                  # anywhere, off the grid too
    lat, s = raster.lookup(pts[:, 0], pts[:, 1])
    for k, (x, z) in enumerate(pts):
        u, v = (x - raster.ox) / raster.h, (z - raster.oz) / raster.h
        assert (lat[k], s[k]) == dense_sample(dense, u, v, raster.length, raster.closed, raster.s_jump), k
    assert (lat < R.FAR / 2).sum() > 500 and (lat >= R.FAR / 2).sum() > 100


def test_fill_tiles_refuses_a_wrong_buffer() -> None:
    track = CASES["square (sharp corners)"]()
    plan = R.plan_raster(track)
    with pytest.raises(ValueError, match="shape"):
        R.fill_tiles(plan, track, np.empty((plan.ntiles + 1, R.TILE + 1, R.TILE + 1, 2), np.float32))


# ------------------------------------------------------------------------------ frames
def load_dense_renderer() -> object:
    """sim/camera.py of :data:`DENSE_REV` with its raster and kernels (today's tracks and looks)."""
    pkg = "dense_renderer_" + DENSE_REV
    if pkg in sys.modules:
        return sys.modules[pkg + ".camera"]
    root = Path(__import__("tempfile").mkdtemp(prefix="donkeyrl_dense_"))
    (root / pkg).mkdir()
    (root / pkg / "__init__.py").write_text("")
    mods = ("camera", "raster", "render_kernels")
    for mod in mods:
        res = subprocess.run(["git", "show", f"{DENSE_REV}:src/donkeyrl/sim/{mod}.py"], cwd=REPO,
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"git history with {DENSE_REV} not available: {res.stderr.strip()[:80]}")
        src = res.stdout
        for m in mods:
            src = src.replace(f"from donkeyrl.sim import {m}", f"from {pkg} import {m}")
            src = src.replace(f"donkeyrl.sim.{m}", f"{pkg}.{m}")
        (root / pkg / f"{mod}.py").write_text(src)
    sys.path.insert(0, str(root))
    return importlib.import_module(f"{pkg}.camera")


@pytest.mark.slow
def test_frames_equal_the_dense_raster_renderer() -> None:
    old = load_dense_renderer()
    tracks = [generate_track(2_000_001), get_track("mini_monaco"), open_road(), hairpin_pair()]
    cams = [CameraConfig(), CameraConfig(width=64, height=32, grey=True, crop_top=1 / 3)]
    rng = np.random.default_rng(1)
    n = 0
    for cam in cams:
        for track in tracks:
            new_r, old_r = Renderer(track, cam), old.Renderer(track, cam)  # type: ignore[attr-defined]
            idx = rng.integers(0, track.n, 6)
            lat = rng.uniform(-8.0, 8.0, 6)
            for i, la, look in zip(idx, lat, [None, Appearance.random(5), None, Appearance.random(9), None, None]):
                x, z = track.points[i] + track.normals[i] * la
                yaw = float(np.arctan2(*track.tangents[i]) + rng.uniform(-0.6, 0.6))
                a = new_r.render(x, z, yaw, look)
                b = old_r.render(x, z, yaw, look)
                assert np.array_equal(a, b), (track.name, i, la)
                n += 1
    assert n == 48


# ------------------------------------------------------------------------------ memory
def test_atlas_memory_stays_bounded_over_many_fresh_tracks(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = 12 * 2**20
    monkeypatch.setattr(Renderer, "MAX_ATLAS_BYTES", budget)
    cam = CameraConfig(width=32, height=16, grey=True)
    r = Renderer(generate_track(3_000_000), cam)
    capacity = len(r.atlas._arenas["tiles"].buf)
    # the builder's scratch grows to the largest track seen (bounded); start it at its largest
    monkeypatch.setattr(R._SCRATCH, "best", np.empty((20_000, R.TILE, R.TILE)))
    tracemalloc.start()
    try:
        traced = []
        for k in range(45):   # fresh Track objects, like the procedural regime's episodes
            track = generate_track(3_000_001 + k)
            r.render(*track.start_pose(), track=track)
            assert r.atlas.nbytes <= budget + 8 * 2**20
            assert len(r.atlas) <= Renderer.MAX_SLOTS
            del track
            if k in (14, 44):
                gc.collect()
                traced.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert len(r.atlas._arenas["tiles"].buf) == capacity         # compacted in place, never regrown
    assert traced[1] - traced[0] < 4 * 2**20, traced              # 30 more tracks, no more memory
    assert R.cached_raster(r.track) is None                       # the atlas path keeps no raster


def test_raster_cache_is_bounded_and_drops_dead_tracks(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = R._RasterCache(6 * 2**20)
    monkeypatch.setattr(R, "_CACHE", cache)
    kept = [generate_track(4_000_000 + k) for k in range(8)]
    for t in kept:
        assert R.get_raster(t) is R.get_raster(t)                  # cached while it fits
        assert cache.nbytes <= 6 * 2**20 or len(cache) == 1
    assert len(cache) < 8                                          # the oldest were dropped
    newest = kept[-1]
    assert R.cached_raster(newest) is not None
    del kept, t
    gc.collect()
    assert len(cache) == 1 and cache.nbytes == R.cached_raster(newest).nbytes  # type: ignore[union-attr]
    del newest
    gc.collect()
    assert len(cache) == 0 and cache.nbytes == 0


def test_procedural_track_cache_is_bounded() -> None:
    from donkeyrl.sim import tracks as T

    assert T._build_procedural.cache_info().maxsize == T.PROCEDURAL_CACHE_SIZE <= 64


def test_cars_drawn_one_by_one_keep_their_tracks_when_the_atlas_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    # The training path draws each car with its own render() call; when a new track overflows the
    # atlas, the other cars' tracks (drawn every step) must stay, not be computed again.
    from donkeyrl.sim import camera as C

    monkeypatch.setattr(Renderer, "MAX_ATLAS_BYTES", 40 * 2**20)   # half of it holds 4 tracks of 5 MB
    fills: list[str] = []
    real_fill = C.fill_tiles

    def counting_fill(plan: R.RasterPlan, track: Track, out: np.ndarray) -> None:
        fills.append(track.name)
        real_fill(plan, track, out)

    monkeypatch.setattr(C, "fill_tiles", counting_fill)
    cars = [generate_track(5_000_000 + k) for k in range(4)]
    r = Renderer(cars[0], CameraConfig(width=32, height=16, grey=True))
    cuts = 0
    for step in range(40):
        cars[step % 4] = generate_track(5_000_100 + step)      # one car starts an episode on a new track
        before = len(r.atlas)
        for t in cars:
            r.render(*t.start_pose(), track=t)
        cuts += len(r.atlas) < before
    assert cuts >= 2                                           # the budget was hit, more than once
    assert len(fills) == len(set(fills))                       # and no track was computed twice
