"""First-person camera of the built-in simulator: a compiled ground-plane renderer.

What it draws, from the DonkeyCar simulator's camera pose (protocol doc section 6: 1.12 units above
the car origin, 0.55 ahead, pitched 15 degrees down, 90 degree vertical field of view): asphalt
with white edge lines at ``track.lat_left/lat_right``, a (dashed) yellow centre line at
``track.centre_lat``, grass-like ground, red/white kerb bands where ``track.barriers`` stand (at
``track.barrier_margin`` beyond the edge; drawn flat on the ground, not as a raised wall), haze
toward the horizon and a sky gradient.

Why it is fast (about 15x a numpy renderer, ~65 us for a 120x160x3 frame): the camera has no
roll, so every image row sees the ground along one straight world-space line at one distance. The
row is walked in spans whose ends are looked up in the track's precomputed raster of (lateral
offset, arc length) (sim/raster.py); a span that lies in one zone (grass, road half, edge line...)
is painted without further geometry, only spans containing a boundary are split. Each pixel then
costs a world-anchored noise lookup and a colour-table lookup (sim/appearance.py). Kernels
(sim/render_kernels.py) are numba-compiled and cached on disk; render_batch renders many cars in
parallel threads.

Domain randomisation: pass an :class:`Appearance` (``Appearance.random(rng)``) per frame or per
car; it carries colours, lighting, texture noise, line widths, haze and camera height/pitch jitter.

Geometry: full-frame normalised row y in [0, 1] (top to bottom) maps to the camera-plane height
``tan(fov/2) (1 - 2y)``; column x in [0, 1] to ``aspect tan(fov/2) (2x - 1)``. An image of
``height`` rows with ``crop_top = c`` samples y in [c, 1], so it equals cropping the top c of the
full frame and resizing the rest to height x width. ``aspect`` (default 4:3, the real 160x120
camera) fixes the horizontal field of view, so any output size is a resample of the real camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np

from donkeyrl.sim import appearance as ap
from donkeyrl.sim.appearance import Appearance
from donkeyrl.sim.raster import TrackRaster, get_raster
from donkeyrl.sim.render_kernels import render_many, render_one
from donkeyrl.sim.track import Track

__all__ = ["Appearance", "CameraConfig", "Renderer"]

@dataclass(frozen=True)
class CameraConfig:
    """Camera image format and mounting (defaults: the DonkeyCar simulator's camera)."""

    #: Image width (pixels).
    width: int = 160
    #: Image height (pixels).
    height: int = 120
    #: One grey channel (luminance) instead of RGB.
    grey: bool = False
    #: Fraction of the full frame's rows, from the top (sky), that are not rendered; the image
    #: covers the rest of the vertical field of view at height x width (= crop, then resize).
    crop_top: float = 0.0
    #: Vertical field of view of the full frame (degrees).
    fov_deg: float = 90.0
    #: Camera height above the ground (units).
    cam_height: float = 1.12
    #: Camera position ahead of the car origin (units).
    cam_forward: float = 0.55
    #: Downward pitch of the camera (degrees).
    pitch_deg: float = 15.0
    #: Width / height of the full uncropped frame, i.e. the horizontal field of view; 4:3 is the
    #: real 160x120 camera, so other sizes are resamples of it (non-square pixels if they differ).
    aspect: float = 160 / 120

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= 4096:
                raise ValueError(f"CameraConfig.{name} must be an integer in 1..4096, got {v!r}")
        checks = (("crop_top", 0.0 <= self.crop_top < 1.0, "in [0, 1)"),
                  ("fov_deg", 0.0 < self.fov_deg < 180.0, "in (0, 180)"),
                  ("cam_height", 0.0 < self.cam_height < 1e3, "in (0, 1000)"),
                  ("cam_forward", abs(self.cam_forward) < 1e3, "in (-1000, 1000)"),
                  ("pitch_deg", -89.0 < self.pitch_deg < 89.0, "in (-89, 89)"),
                  ("aspect", 0.0 < self.aspect < 20.0, "in (0, 20)"))
        for name, ok, valid in checks:
            if not ok:
                raise ValueError(f"CameraConfig.{name} must be {valid}, got {getattr(self, name)!r}")

    @property
    def channels(self) -> int:
        """1 for grey, 3 for RGB."""
        return 1 if self.grey else 3

    @property
    def shape(self) -> tuple[int, int, int]:
        """Image shape (H, W, C)."""
        return (self.height, self.width, self.channels)


class Renderer:
    """Renders camera images of one track (shared raster; cheap to create many).

    ``appearance`` is the default look for frames rendered without an explicit one.
    """

    def __init__(self, track: Track, camera: CameraConfig | None = None,
                 appearance: Appearance | None = None) -> None:
        self.camera = camera if camera is not None else CameraConfig()
        c = self.camera
        tan_v = math.tan(math.radians(c.fov_deg) / 2)
        self._cam = (c.cam_height, math.radians(c.pitch_deg), c.cam_forward, tan_v, c.aspect * tan_v,
                     c.crop_top)
        self._shape = c.shape
        self._tex = ap.noise_texture()
        self.appearance = appearance if appearance is not None else Appearance.default()
        self.set_track(track)

    @property
    def appearance(self) -> Appearance:
        """Default look of frames rendered without an explicit appearance."""
        return self._appearance

    @appearance.setter
    def appearance(self, value: Appearance) -> None:
        if not isinstance(value, Appearance):
            raise TypeError(f"appearance must be an Appearance, got {type(value).__name__}")
        self._appearance = value
        self._tables = ap.pack(value, self.camera.grey)

    def set_track(self, track: Track) -> None:
        """Switch to another track (its raster is built once and cached per Track object)."""
        self.track = track
        self.raster: TrackRaster = get_raster(track)
        r = self.raster
        self._args = (*self._cam, r.data, r.ox, r.oz, r.h, r.left, r.right, r.centre, 1.0 / r.dtab,
                      r.length, r.closed, r.s_jump, r.barriers, r.barrier_margin)

    def render(self, x: float, z: float, yaw: float, appearance: Appearance | None = None,
               out: np.ndarray | None = None, track: Track | None = None) -> np.ndarray:
        """Camera image (H, W, C) uint8 of a car at (x, z) with heading ``yaw`` (radians)."""
        if track is not None and track is not self.track:
            keep = self.track
            self.set_track(track)
            try:
                return self.render(x, z, yaw, appearance, out)
            finally:
                self.set_track(keep)
        out = self._out(out, self._shape)
        if not (math.isfinite(x) and math.isfinite(z) and math.isfinite(yaw)):
            raise ValueError(f"render pose must be finite, got x={x!r}, z={z!r}, yaw={yaw!r}")
        lut, prm = self._tables if appearance is None else ap.pack(appearance, self.camera.grey)
        render_one(out, float(x), float(z), float(yaw), *self._args, lut, prm, self._tex)
        return out

    def render_batch(self, xs: np.ndarray, zs: np.ndarray, yaws: np.ndarray, out: np.ndarray | None = None,
                     appearances: Appearance | Sequence[Appearance | None] | None = None,
                     tracks: Sequence[Track] | None = None) -> np.ndarray:
        """Images (n, H, W, C) of n cars, rendered in parallel.

        ``appearances``: None (the default look), one Appearance for all, or one per car (None
        entries use the default look).
        """
        xs, zs, yaws = (np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in (xs, zs, yaws))
        n = len(xs)
        if len(zs) != n or len(yaws) != n:
            raise ValueError(f"xs, zs, yaws must have the same length, got {len(xs)}, {len(zs)}, {len(yaws)}")
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(zs)) and np.all(np.isfinite(yaws))):
            raise ValueError("render_batch poses must be finite")
        out = self._out(out, (n, *self._shape))
        if tracks is not None and any(t is not self.track for t in tracks):
            for i in range(n):
                app = appearances if appearances is None or isinstance(appearances, Appearance) else appearances[i]
                self.render(xs[i], zs[i], yaws[i], app, out[i], track=tracks[i])
            return out
        if appearances is None or isinstance(appearances, Appearance):
            tables = [self._tables if appearances is None else ap.pack(appearances, self.camera.grey)]
            idx = np.zeros(n, dtype=np.int64)
        else:
            apps = list(appearances)
            if len(apps) != n:
                raise ValueError(f"need one appearance per car ({n}), got {len(apps)}")
            slot: dict[int, int] = {}
            tables, idx = [], np.empty(n, dtype=np.int64)
            for i, a in enumerate(apps):
                a = self._appearance if a is None else a
                if id(a) not in slot:
                    slot[id(a)] = len(tables)
                    tables.append(ap.pack(a, self.camera.grey))
                idx[i] = slot[id(a)]
        luts = np.stack([t[0] for t in tables])
        prms = np.stack([t[1] for t in tables])
        render_many(out, xs, zs, yaws, idx, *self._args, luts, prms, self._tex)
        return out

    @staticmethod
    def _out(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
        if out is None:
            return np.empty(shape, dtype=np.uint8)
        if out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}, "
                             f"got {out.dtype} {out.shape}")
        return out
