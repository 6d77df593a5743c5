"""First-person camera of the built-in simulator: a compiled ground-plane renderer with walls.

What it draws, from the DonkeyCar simulator's camera pose (1.12 units above the car's origin,
which its wheels hold about 0.30 above the road, 0.55 ahead, pitched 15 degrees down, 90 degree
vertical field of view): the road with the track's paint (:class:`~donkeyrl.sim.track.Marking`:
edge lines, a solid or dashed centre line at the real offsets), shoulders, the ground, the start
line (checkered or dashed), the car's shadow, walls, barriers and chain-link fences standing along
the track (:class:`~donkeyrl.sim.track.Wall`), cones, a distant backdrop, haze toward the horizon
and a sky gradient. Colours, grain and lighting come from an
:class:`~donkeyrl.sim.appearance.Appearance`; without one each track gets its scene's look
(``Appearance.for_scene(track.scene)``). Hills are not drawn: the camera sees the road it stands
on as a plane (the DonkeyCar scenes climb at most about 11 %).

Why it is fast: the camera has no roll, so every image row sees the ground along one straight
world-space line at one distance. The row is walked in spans whose ends are looked up in the
track's precomputed raster of (lateral offset, arc length) (sim/raster.py); a span that lies in
one zone is painted without further geometry. Each pixel then costs a world-anchored noise lookup
and a colour-table lookup. Walls are raised per column where the ground crosses their foot.
Kernels (sim/render_kernels.py) are numba-compiled and cached on disk.

Many tracks in one call: a :class:`RenderAtlas` packs the arrays of every track in use into flat
buffers (a new track is appended, unused ones are dropped when space runs out), so
:meth:`Renderer.render_batch` renders cars on different tracks in ONE parallel call.

Domain randomisation: pass an :class:`Appearance` (``Appearance.random(rng)``) per frame or per
car; it carries colours, lighting, grain, line widths and dashes, shadow, walls on/off, haze,
backdrop and camera height/pitch/yaw jitter.

Geometry: full-frame normalised row y in [0, 1] (top to bottom) maps to the camera-plane height
``tan(fov/2) (1 - 2y)``; column x in [0, 1] to ``aspect tan(fov/2) (2x - 1)``. An image of
``height`` rows with ``crop_top = c`` samples y in [c, 1], so it equals cropping the top c of the
full frame and resizing the rest to height x width. ``aspect`` (default 4:3, the real 160x120
camera) fixes the horizontal field of view, so any output size is a resample of the real camera.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from donkeyrl.sim import appearance as ap
from donkeyrl.sim import render_kernels as rk
from donkeyrl.sim.appearance import Appearance
from donkeyrl.sim.raster import START_DEPTH, TrackRaster, get_raster
from donkeyrl.sim.track import Track

__all__ = ["Appearance", "CameraConfig", "RenderAtlas", "Renderer"]

#: Camera height above the road (units): 1.12 above the car's origin (the simulator's camera
#: mount) plus the origin's 0.30 above the road, fitted so that generated_track's verified paint
#: (yellow 2 left, white 2 right of the path) lands where it is in the simulator's car-camera
#: frame (see benchmarks/fidelity.py and docs/fidelity.md).
CAMERA_HEIGHT = 1.42


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
    #: Camera height above the road (units).
    cam_height: float = CAMERA_HEIGHT
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


class RenderAtlas:
    """The render arrays of many tracks packed into flat buffers, one slot per track.

    Why: a parallel numba kernel cannot take a list of differently shaped arrays cheaply (a typed
    list costs ~70 us per call), but it can slice flat buffers by offsets. A track is added once:
    its raster grid (the large array) is appended to a growing buffer, so adding a track never
    copies the others; the small per-track tables are repacked. :meth:`keep_only` drops tracks
    no longer used (and compacts the buffer). ``slot(track)`` returns a track's slot, adding it
    if needed.
    """

    def __init__(self) -> None:
        self._slots: dict[int, int] = {}
        self._tracks: list[weakref.ref[Track]] = []
        self._rasters: list[TrackRaster] = []
        self._goff: list[int] = []
        self._grid = np.zeros(1 << 16, dtype=np.float32)
        self._gused = 0
        self._dirty = True
        self._arrays: tuple[np.ndarray, ...] = ()

    def has(self, track: Track) -> bool:
        """Whether ``track`` has a slot."""
        k = self._slots.get(id(track))
        return k is not None and self._tracks[k]() is track

    def slot(self, track: Track) -> int:
        """Slot index of ``track`` (its raster is built on first use)."""
        k = self._slots.get(id(track))
        if k is not None and self._tracks[k]() is track:
            return k
        return self._add(track, get_raster(track))

    def _add(self, track: Track, raster: TrackRaster) -> int:
        size = raster.data.size
        if self._gused + size > self._grid.size:
            grown = np.zeros(max(2 * self._grid.size, self._gused + size), dtype=np.float32)
            grown[:self._gused] = self._grid[:self._gused]
            self._grid = grown
        self._grid[self._gused:self._gused + size] = raster.data.reshape(-1)
        k = len(self._rasters)
        self._slots[id(track)] = k
        self._tracks.append(weakref.ref(track))
        self._rasters.append(raster)
        self._goff.append(self._gused)
        self._gused += size
        self._dirty = True
        return k

    def keep_only(self, tracks: Sequence[Track]) -> None:
        """Drop every slot except those of ``tracks`` and compact the buffer."""
        keep = []
        for t in dict.fromkeys(tracks):
            k = self._slots.get(id(t))
            if k is not None and self._tracks[k]() is t:
                keep.append((t, self._rasters[k]))
        self._slots, self._tracks, self._rasters, self._goff, self._gused = {}, [], [], [], 0
        for t, raster in keep:
            self._add(t, raster)
        self._dirty = True

    def __len__(self) -> int:
        return len(self._rasters)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """(grid, gmeta, tparams, tabs, zarr, cones) for the kernels; repacked when slots changed."""
        if not self._dirty:
            return self._arrays
        rs = self._rasters
        gmeta = np.zeros((len(rs), rk.N_META), dtype=np.int64)
        tparams = np.zeros((len(rs), rk.N_TPARAMS))
        t_off = z_off = c_off = 0
        for k, r in enumerate(rs):
            nz, nx = r.data.shape[:2]
            nb, ntab = r.bound.shape
            gmeta[k] = (self._goff[k], nz, nx, t_off, ntab, nb, z_off, c_off, len(r.cones))
            t_off += (nb + 2) * ntab
            z_off += nb + 1
            c_off += len(r.cones)
            tparams[k, rk.T_OX:rk.T_START_DEPTH + 1] = (r.ox, r.oz, r.h, 1.0 / r.dtab, r.length, float(r.closed),
                                                       r.s_jump, r.start_line, START_DEPTH[r.start_line])
            tparams[k, rk.T_WL_STYLE:rk.T_START_S + 1] = (
                r.wall_style[0], r.wall_height[0], r.wall_fence[0], r.wall_style[1], r.wall_height[1],
                r.wall_fence[1], r.wall_bound[0], r.wall_bound[1], r.start_line_s)
        tabs = np.concatenate([np.concatenate([r.bound.reshape(-1), r.tangent.reshape(-1)]) for r in rs])
        zarr = np.concatenate([np.column_stack([r.zone_class, r.zone_dash, r.zone_period, r.zone_flags,
                                                np.append(r.bound_hw, 0.0)]) for r in rs])
        cones = np.concatenate([r.cones.reshape(-1, 4) for r in rs])
        self._arrays = (self._grid, gmeta, tparams, np.ascontiguousarray(tabs, dtype=np.float32),
                        np.ascontiguousarray(zarr), np.ascontiguousarray(cones))
        self._dirty = False
        return self._arrays


class Renderer:
    """Renders camera images of cars on one or many tracks (shared rasters; cheap to create).

    ``appearance`` is the default look for frames rendered without an explicit one (None: each
    track's scene look, :meth:`Appearance.for_scene`).
    """

    #: Most tracks kept packed before unused ones are dropped.
    MAX_SLOTS = 64

    def __init__(self, track: Track, camera: CameraConfig | None = None,
                 appearance: Appearance | None = None) -> None:
        self.camera = camera if camera is not None else CameraConfig()
        c = self.camera
        tan_v = math.tan(math.radians(c.fov_deg) / 2)
        self._cam = (c.cam_height, math.radians(c.pitch_deg), c.cam_forward, tan_v, c.aspect * tan_v, c.crop_top)
        self._shape = c.shape
        self._tex = ap.noise_texture()
        self._appearance = appearance
        self._packed: dict[int, tuple[Appearance, np.ndarray, np.ndarray]] = {}
        self._stacks: tuple[tuple[int, ...], np.ndarray, np.ndarray] | None = None
        self.atlas = RenderAtlas()
        self.set_track(track)

    @property
    def appearance(self) -> Appearance:
        """Default look of frames rendered without an explicit appearance (this track's scene look
        unless one was set)."""
        return self._appearance if self._appearance is not None else Appearance.for_scene(self.track.scene)

    @appearance.setter
    def appearance(self, value: Appearance | None) -> None:
        if value is not None and not isinstance(value, Appearance):
            raise TypeError(f"appearance must be an Appearance, got {type(value).__name__}")
        self._appearance = value

    @property
    def raster(self) -> TrackRaster:
        """The raster of the current track."""
        return get_raster(self.track)

    def set_track(self, track: Track) -> None:
        """Switch the default track (rasters are built once and cached per Track object)."""
        if not isinstance(track, Track):
            raise TypeError(f"track must be a Track, got {type(track).__name__}")
        self.track = track
        self.atlas.slot(track)

    def _look(self, appearance: Appearance | None, track: Track) -> Appearance:
        if appearance is not None:
            return appearance
        return self._appearance if self._appearance is not None else Appearance.for_scene(track.scene)

    def _tables(self, look: Appearance) -> tuple[np.ndarray, np.ndarray]:
        """Packed tables of a look, cached by identity (hashing a look costs microseconds)."""
        hit = self._packed.get(id(look))
        if hit is not None and hit[0] is look:
            return hit[1], hit[2]
        if len(self._packed) > 1024:
            self._packed.clear()
            self._stacks = None
        if not isinstance(look, Appearance):
            raise TypeError(f"appearance must be an Appearance, got {type(look).__name__}")
        lut, prm = ap.pack(look, self.camera.grey)
        self._packed[id(look)] = (look, lut, prm)
        return lut, prm

    def render(self, x: float, z: float, yaw: float, appearance: Appearance | None = None,
               out: np.ndarray | None = None, track: Track | None = None) -> np.ndarray:
        """Camera image (H, W, C) uint8 of a car at (x, z) with heading ``yaw`` (radians) on
        ``track`` (default: the renderer's track)."""
        out = self._out(out, self._shape)
        if not (math.isfinite(x) and math.isfinite(z) and math.isfinite(yaw)):
            raise ValueError(f"render pose must be finite, got x={x!r}, z={z!r}, yaw={yaw!r}")
        tr = self.track if track is None else track
        k = self.atlas.slot(tr) if self.atlas.has(tr) else self._slot(tr, [tr])
        grid, gmeta, tparams, tabs, zarr, cones = self.atlas.arrays()
        lut, prm = self._tables(self._look(appearance, tr))
        rk.render_one(out, float(x), float(z), float(yaw), *self._cam, grid, gmeta[k], tparams[k], tabs, zarr, cones,
                      lut, prm, self._tex)
        return out

    def render_batch(self, xs: np.ndarray, zs: np.ndarray, yaws: np.ndarray, out: np.ndarray | None = None,
                     appearances: Appearance | Sequence[Appearance | None] | None = None,
                     tracks: Sequence[Track] | None = None) -> np.ndarray:
        """Images (n, H, W, C) of n cars, rendered in ONE parallel call.

        ``appearances``: None (each track's look), one Appearance for all, or one per car (None
        entries use the default look). ``tracks``: None (all on the renderer's track) or one Track
        per car.
        """
        xs, zs, yaws = (np.ascontiguousarray(a, dtype=np.float64).reshape(-1) for a in (xs, zs, yaws))
        n = len(xs)
        if len(zs) != n or len(yaws) != n:
            raise ValueError(f"xs, zs, yaws must have the same length, got {len(xs)}, {len(zs)}, {len(yaws)}")
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(zs)) and np.all(np.isfinite(yaws))):
            raise ValueError("render_batch poses must be finite")
        track_list = [self.track] * n if tracks is None else list(tracks)
        if len(track_list) != n:
            raise ValueError(f"need one track per car ({n}), got {len(track_list)}")
        if appearances is None or isinstance(appearances, Appearance):
            apps: list[Appearance | None] = [appearances] * n
        else:
            apps = list(appearances)
            if len(apps) != n:
                raise ValueError(f"need one appearance per car ({n}), got {len(apps)}")
        out = self._out(out, (n, *self._shape))
        slots = np.array(self._slots(track_list, track_list), dtype=np.int64)
        grid, gmeta, tparams, tabs, zarr, cones = self.atlas.arrays()
        table: dict[int, int] = {}
        looks: list[Appearance] = []
        idx = np.empty(n, dtype=np.int64)
        for i, (a, t) in enumerate(zip(apps, track_list)):
            look = self._look(a, t)
            j = table.get(id(look))
            if j is None:
                j = table[id(look)] = len(looks)
                looks.append(look)
            idx[i] = j
        key = tuple(id(look) for look in looks)
        if self._stacks is None or self._stacks[0] != key:
            tables = [self._tables(look) for look in looks]
            self._stacks = (key, np.stack([tb[0] for tb in tables]), np.stack([tb[1] for tb in tables]))
        rk.render_many(out, xs, zs, yaws, slots, idx, *self._cam, grid, gmeta, tparams, tabs, zarr, cones,
                       self._stacks[1], self._stacks[2], self._tex)
        return out

    def _slot(self, track: Track, in_use: Sequence[Track]) -> int:
        return self._slots([track], in_use)[0]

    def _slots(self, tracks: Sequence[Track], in_use: Sequence[Track]) -> list[int]:
        """Atlas slots of ``tracks``; when new ones would overflow the atlas, every track not in
        ``in_use`` (nor the default track) is dropped first, so all returned slots stay valid."""
        new = {id(t) for t in tracks if not self.atlas.has(t)}
        if new and len(self.atlas) + len(new) > self.MAX_SLOTS:
            self.atlas.keep_only([*in_use, self.track])
        return [self.atlas.slot(t) for t in tracks]

    @staticmethod
    def _out(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
        if out is None:
            return np.empty(shape, dtype=np.uint8)
        if out.shape != shape or out.dtype != np.uint8 or not out.flags["C_CONTIGUOUS"]:
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}, "
                             f"got {out.dtype} {out.shape}")
        return out
