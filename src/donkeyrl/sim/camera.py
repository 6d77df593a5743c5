"""First-person camera of the built-in simulator: a compiled ground-plane renderer.

What it draws, from the DonkeyCar simulator's camera pose (protocol doc section 6: 1.12 units above
the car origin, 0.55 ahead, pitched 15 degrees down, 90 degree vertical field of view): asphalt
with white edge lines at ``track.lat_left/lat_right``, a (dashed) yellow centre line at
``track.centre_lat``, grass-like ground, red/white kerb bands where ``track.barriers`` stand (at
``track.barrier_margin`` beyond the edge; drawn flat on the ground, not as a raised wall), haze
toward the horizon and a sky gradient.

Why it is fast (about 10x a numpy renderer): the camera has no roll, so every image row sees the
ground along a straight world-space line at one distance; a row costs one division and each pixel
is an incremental add, a bilinear lookup in the track's precomputed raster (sim/raster.py), a few
comparisons and one colour-table lookup (sim/appearance.py); along a row whole spans of one
surface skip even that. Kernels (sim/render_kernels.py) are numba-compiled and cached on disk;
render_batch renders many cars in parallel.

Geometry: full-frame normalised row y in [0, 1] (top to bottom) maps to the camera-plane height
``tan(fov/2) (1 - 2y)``; column x in [0, 1] to ``aspect tan(fov/2) (2x - 1)``. An image of
``height`` rows with ``crop_top = c`` samples y in [c, 1], so it equals cropping the top c of the
full frame and resizing the rest to height x width. ``aspect`` (default 4:3, the real 160x120
camera) fixes the horizontal field of view, so any output size is a resample of the real camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

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
        self.appearance = appearance if appearance is not None else Appearance.default()
        self.set_track(track)

    def set_track(self, track: Track) -> None:
        """Switch to another track (its raster is built once and cached per Track object)."""
        self.track = track
        self.raster: TrackRaster = get_raster(track)

    def render(self, x: float, z: float, yaw: float, appearance: Appearance | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """Camera image (H, W, C) uint8 of a car at (x, z) with heading ``yaw`` (radians)."""
        out = self._out(out, self.camera.shape)
        if not (math.isfinite(x) and math.isfinite(z) and math.isfinite(yaw)):
            raise ValueError(f"render pose must be finite, got x={x!r}, z={z!r}, yaw={yaw!r}")
        lut, prm = ap.pack(appearance or self.appearance, self.camera.grey)
        render_one(out, float(x), float(z), float(yaw), *self._cam(), *self._geo(), lut, prm,
                    ap.noise_texture())
        return out

    def render_batch(self, xs: np.ndarray, zs: np.ndarray, yaws: np.ndarray, out: np.ndarray | None = None,
                     appearances: Appearance | Sequence[Appearance] | None = None) -> np.ndarray:
        """Images (n, H, W, C) of n cars, rendered in parallel; one appearance or one per car."""
        xs, zs, yaws = (np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in (xs, zs, yaws))
        n = len(xs)
        if len(zs) != n or len(yaws) != n:
            raise ValueError(f"xs, zs, yaws must have the same length, got {len(xs)}, {len(zs)}, {len(yaws)}")
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(zs)) and np.all(np.isfinite(yaws))):
            raise ValueError("render_batch poses must be finite")
        out = self._out(out, (n, *self.camera.shape))
        if appearances is None or isinstance(appearances, Appearance):
            apps: Sequence[Appearance] = [appearances or self.appearance]
            idx = np.zeros(n, dtype=np.int64)
        else:
            apps = list(appearances)
            if len(apps) != n:
                raise ValueError(f"need one appearance per car ({n}), got {len(apps)}")
            idx = np.arange(n, dtype=np.int64)
        packed = [ap.pack(a, self.camera.grey) for a in apps]
        luts = np.stack([p[0] for p in packed]) if len(packed) > 1 else packed[0][0][None]
        prms = np.stack([p[1] for p in packed]) if len(packed) > 1 else packed[0][1][None]
        render_many(out, xs, zs, yaws, idx, *self._cam(), *self._geo(), luts, prms, ap.noise_texture())
        return out

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _out(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
        if out is None:
            return np.empty(shape, dtype=np.uint8)
        if out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}, "
                             f"got {out.dtype} {out.shape}")
        return out

    def _cam(self) -> tuple[float, ...]:
        c = self.camera
        tan_v = math.tan(math.radians(c.fov_deg) / 2)
        return (c.cam_height, math.radians(c.pitch_deg), c.cam_forward, tan_v, c.aspect * tan_v, c.crop_top)

    def _geo(self) -> tuple[object, ...]:
        r = self.raster
        return (r.data, r.ox, r.oz, r.h, r.left, r.right, r.centre, 1.0 / r.dtab, r.length, r.closed,
                r.s_jump, r.barriers, r.barrier_margin)
