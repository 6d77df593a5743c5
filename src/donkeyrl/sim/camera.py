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
from donkeyrl.sim.raster import (START_DEPTH, TILE, RasterPlan, TrackRaster, cached_raster, fill_tiles, get_raster,
                                 plan_raster)
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


class _Arena:
    """A growable array of rows (axis 0) that tracks' arrays are appended to, compacted in place.

    Why in place and never shrunk: copying into fresh memory costs page faults (on this machine
    a 3 MB track copied into new pages took several times as long as into pages in use), so an
    atlas reuses its memory; what it holds stays bounded by the renderer's budget, and the buffer
    is allocated up front at that size (pages are only backed once written).
    """

    def __init__(self, tail: tuple[int, ...], dtype: type, capacity: int) -> None:
        self.buf: np.ndarray = np.empty((max(1, capacity), *tail), dtype=dtype)
        self.used = 0

    def reserve(self, n: int) -> int:
        """Room for ``n`` more rows at the end (contents undefined); returns their offset."""
        if self.used + n > len(self.buf):
            grown = np.empty((max(2 * len(self.buf), self.used + n), *self.buf.shape[1:]), dtype=self.buf.dtype)
            grown[:self.used] = self.buf[:self.used]
            self.buf = grown
        off = self.used
        self.used += n
        return off

    def append(self, rows: np.ndarray) -> int:
        """Copy ``rows`` to the end; returns their offset."""
        off = self.reserve(len(rows))
        self.buf[off:off + len(rows)] = rows
        return off

    def compact(self, spans: Sequence[tuple[int, int]]) -> list[int]:
        """Keep only the (offset, rows) ``spans`` (in increasing offset order), moved to the front;
        returns their new offsets."""
        out = []
        used = 0
        for off, n in spans:
            if off != used:
                self.buf[used:used + n] = self.buf[off:off + n]   # numpy copes with the overlap
            out.append(used)
            used += n
        self.used = used
        return out

    @property
    def row_bytes(self) -> int:
        """Bytes of one row."""
        return self.buf.nbytes // len(self.buf)

    @property
    def nbytes(self) -> int:
        """Bytes in use (not the capacity)."""
        return self.used * self.row_bytes


@dataclass
class _Slot:
    """Where one track's arrays lie in the atlas' arenas (offset, rows) and its parameter row."""

    track: weakref.ref[Track]
    spans: dict[str, tuple[int, int]]
    meta: np.ndarray
    params: np.ndarray
    #: When it was last drawn (the owner's counter), to drop the least recently used first.
    last_use: int = 0


class RenderAtlas:
    """The render arrays of many tracks packed into flat buffers, one slot per track.

    Why: a parallel numba kernel cannot take a list of differently shaped arrays cheaply (a typed
    list costs ~70 us per call), but it can slice flat buffers by offsets. A track is added once:
    each of its arrays (tile index, tiles, tables, zones, cones) is appended to a buffer of its
    kind, so adding a track costs that track alone whatever the atlas holds, and its tile values
    are computed straight into the atlas (:func:`~donkeyrl.sim.raster.fill_tiles`) unless a
    raster of it is already cached. :meth:`keep_only` drops tracks no longer used and compacts
    the buffers in place. ``slot(track)`` returns a track's slot, adding it if needed. The atlas
    keeps no raster objects: what it holds is bounded by its owner's budget.
    """

    def __init__(self, max_bytes: int = 96 * 2**20) -> None:
        """``max_bytes``: the track data the owner keeps before dropping unused tracks; the
        buffers get room for half as much again, for the track added past the budget (they
        double if one still does not fit)."""
        self._slots: dict[int, int] = {}
        self._entries: list[_Slot] = []
        tile_bytes = (TILE + 1) ** 2 * 2 * 4
        self._arenas = {
            "tidx": _Arena((), np.int32, max_bytes // 32 // 4),
            "tiles": _Arena((TILE + 1, TILE + 1, 2), np.float32, max_bytes * 3 // 2 // tile_bytes),
            "tabs": _Arena((), np.float32, max_bytes // 32 // 4),
            "zarr": _Arena((rk.N_ZCOLS,), np.float64, 1024),
            "cones": _Arena((4,), np.float64, 1024),
        }
        self._gmeta = _Arena((rk.N_META,), np.int64, 64)
        self._tparams = _Arena((rk.N_TPARAMS,), np.float64, 64)

    def has(self, track: Track) -> bool:
        """Whether ``track`` has a slot."""
        k = self._slots.get(id(track))
        return k is not None and self._entries[k].track() is track

    def slot(self, track: Track) -> int:
        """Slot index of ``track`` (its tiles are computed on first use)."""
        k = self._slots.get(id(track))
        if k is not None and self._entries[k].track() is track:
            return k
        raster = cached_raster(track)
        plan = raster if raster is not None else plan_raster(track)
        parts, meta, params = _plan_arrays(plan)
        spans = {name: (self._arenas[name].append(a), len(a)) for name, a in parts.items()}
        tiles = self._arenas["tiles"]
        off = tiles.reserve(plan.ntiles)
        if raster is not None:
            tiles.buf[off:off + plan.ntiles] = raster.tiles
        else:   # computed straight into the atlas: no raster kept, no fresh memory
            fill_tiles(plan, track, tiles.buf[off:off + plan.ntiles])
        spans["tiles"] = (off, plan.ntiles)
        return self._register(track, spans, meta, params)

    def _register(self, track: Track, spans: dict[str, tuple[int, int]], meta: np.ndarray,
                  params: np.ndarray) -> int:
        """Give ``track`` the next slot, its arrays lying at ``spans`` (arena -> (offset, rows))."""
        meta = meta.copy()
        for name, col in (("tidx", rk.M_IOFF), ("tiles", rk.M_TILE0), ("tabs", rk.M_TOFF), ("zarr", rk.M_ZOFF),
                          ("cones", rk.M_COFF)):
            meta[col] = spans[name][0]
        k = len(self._entries)
        self._slots[id(track)] = k
        self._entries.append(_Slot(weakref.ref(track), spans, meta, params))
        self._gmeta.append(meta[None])
        self._tparams.append(params[None])
        return k

    def touch(self, k: int, tick: int) -> None:
        """Record that slot ``k`` was drawn at time ``tick`` (see :meth:`keep_recent`)."""
        self._entries[k].last_use = tick

    def keep_recent(self, required: Sequence[Track], max_slots: int, max_bytes: int) -> None:
        """Keep the slots of ``required`` and then, most recently drawn first, others while the
        atlas stays within ``max_slots`` slots and ``max_bytes``; drop the rest (:meth:`keep_only`).

        Why recency: a renderer drawing cars one by one sees one car's track per call, but every
        car's track is drawn at every step, so the tracks in use are the most recently drawn.
        """
        req = {id(t) for t in required}
        keep: list[Track] = []
        nbytes = 0
        live = [(t, e) for e in self._entries if (t := e.track()) is not None]
        for t, e in [*[x for x in live if id(x[0]) in req],
                     *sorted((x for x in live if id(x[0]) not in req), key=lambda x: -x[1].last_use)]:
            size = sum(self._arenas[name].row_bytes * n for name, (_, n) in e.spans.items())
            if id(t) in req or (len(keep) < max_slots and nbytes + size <= max_bytes):
                keep.append(t)
                nbytes += size
        self.keep_only(keep)

    def keep_only(self, tracks: Sequence[Track]) -> None:
        """Drop every slot except those of ``tracks`` and compact the buffers (in place)."""
        wanted = {id(t) for t in tracks}
        keep = [(t, e) for e in self._entries if (t := e.track()) is not None and id(t) in wanted]
        moved = {name: arena.compact([e.spans[name] for _, e in keep]) for name, arena in self._arenas.items()}
        self._slots, self._entries = {}, []
        self._gmeta.used = self._tparams.used = 0
        for q, (t, e) in enumerate(keep):
            spans = {name: (moved[name][q], e.spans[name][1]) for name in self._arenas}
            self._register(t, spans, e.meta, e.params)
            self._entries[-1].last_use = e.last_use

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes of track data the atlas holds (not its buffers' capacity, see ``__init__``)."""
        return sum(a.nbytes for a in self._arenas.values())

    def arrays(self) -> tuple[np.ndarray, ...]:
        """(tile index, tiles, gmeta, tparams, tabs, zarr, cones) for the kernels."""
        a = self._arenas
        return (a["tidx"].buf, a["tiles"].buf, self._gmeta.buf, self._tparams.buf, a["tabs"].buf, a["zarr"].buf,
                a["cones"].buf)


def _plan_arrays(r: RasterPlan) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """A raster's arrays but its tiles as the atlas stores them: by arena, its meta row (offsets
    filled in by the atlas) and its parameter row."""
    nb, ntab = r.bound.shape
    ntz, ntx = r.tindex.shape
    parts = {
        "tidx": r.tindex.reshape(-1),
        "tabs": np.concatenate([r.bound.reshape(-1), r.tangent.reshape(-1)]),
        "zarr": np.column_stack([r.zone_class, r.zone_dash, r.zone_period, r.zone_flags, np.append(r.bound_hw, 0.0)]),
        "cones": np.asarray(r.cones, dtype=np.float64).reshape(-1, 4),
    }
    meta = np.zeros(rk.N_META, dtype=np.int64)
    meta[[rk.M_NTZ, rk.M_NTX, rk.M_NZ, rk.M_NX, rk.M_NTAB, rk.M_NB, rk.M_NCONE]] = (
        ntz, ntx, r.nz, r.nx, ntab, nb, len(parts["cones"]))
    params = np.zeros(rk.N_TPARAMS)
    params[rk.T_OX:rk.T_START_DEPTH + 1] = (r.ox, r.oz, r.h, 1.0 / r.dtab, r.length, float(r.closed), r.s_jump,
                                            r.start_line, START_DEPTH[r.start_line])
    params[rk.T_WL_STYLE:rk.T_START_S + 1] = (r.wall_style[0], r.wall_height[0], r.wall_fence[0], r.wall_style[1],
                                              r.wall_height[1], r.wall_fence[1], r.wall_bound[0], r.wall_bound[1],
                                              r.start_line_s)
    return parts, meta, params


class Renderer:
    """Renders camera images of cars on one or many tracks (cheap to create; each renderer
    computes the tiles of the tracks it draws into its own atlas, a few ms per track).

    ``appearance`` is the default look for frames rendered without an explicit one (None: each
    track's scene look, :meth:`Appearance.for_scene`).
    """

    #: Most tracks kept packed before unused ones are dropped.
    MAX_SLOTS = 64
    #: Most bytes of track data kept packed; past it the atlas is cut to half, the tracks drawn
    #: most recently kept (a procedural track's tiles are 1-5 MB, so half holds 8 cars' tracks
    #: even at 5 MB each; see benchmarks/README.md, "Track switch").
    MAX_ATLAS_BYTES = 96 * 2**20

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
        self.atlas = RenderAtlas(self.MAX_ATLAS_BYTES)
        self._tick = 0
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
        """The raster of the current track (a standalone copy from :func:`get_raster`, for tools)."""
        return get_raster(self.track)

    def set_track(self, track: Track) -> None:
        """Switch the default track (its tiles are computed once, on first use)."""
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
        self._tick += 1
        self.atlas.touch(k, self._tick)
        tidx, tiles, gmeta, tparams, tabs, zarr, cones = self.atlas.arrays()
        lut, prm = self._tables(self._look(appearance, tr))
        rk.render_one(out, float(x), float(z), float(yaw), *self._cam, tidx, tiles, gmeta[k], tparams[k], tabs, zarr,
                      cones, lut, prm, self._tex)
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
        self._tick += 1
        for k in set(slots.tolist()):
            self.atlas.touch(k, self._tick)
        tidx, tiles, gmeta, tparams, tabs, zarr, cones = self.atlas.arrays()
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
        rk.render_many(out, xs, zs, yaws, slots, idx, *self._cam, tidx, tiles, gmeta, tparams, tabs, zarr, cones,
                       self._stacks[1], self._stacks[2], self._tex)
        return out

    def _slot(self, track: Track, in_use: Sequence[Track]) -> int:
        return self._slots([track], in_use)[0]

    def _slots(self, tracks: Sequence[Track], in_use: Sequence[Track]) -> list[int]:
        """Atlas slots of ``tracks``; when new ones would overflow the atlas, it is first cut to
        half its budget, keeping ``in_use``, the default track and the most recently drawn, so
        all returned slots stay valid."""
        new = {id(t) for t in tracks if not self.atlas.has(t)}
        if new and (len(self.atlas) + len(new) > self.MAX_SLOTS or self.atlas.nbytes > self.MAX_ATLAS_BYTES):
            self.atlas.keep_recent([*in_use, self.track], self.MAX_SLOTS // 2, self.MAX_ATLAS_BYTES // 2)
        return [self.atlas.slot(t) for t in tracks]

    @staticmethod
    def _out(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
        if out is None:
            return np.empty(shape, dtype=np.uint8)
        if out.shape != shape or out.dtype != np.uint8 or not out.flags["C_CONTIGUOUS"]:
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}, "
                             f"got {out.dtype} {out.shape}")
        return out
