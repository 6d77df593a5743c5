"""Precomputed track geometry for the camera: a world-space grid of (lateral offset, arc length)
and the lateral zones of the road (paint, shoulders, ground, what lies beyond a wall).

Why: the renderer must classify ~12,000 ground points per frame in about 100 microseconds.
Projecting each point onto the path exactly costs far too much, so once per track we sample the
exact projection on a regular grid of nodes and the renderer interpolates it bilinearly. The
lateral offset is a smooth (almost linear) function of position near the road, so bilinear
interpolation keeps road edges sharp at any image resolution; only the thresholds (zone
boundaries) are applied per pixel, exactly.

Notation (a grid of nz x nx nodes, spacing ``h`` units, node (j, i) at (ox + i h, oz + j h);
nb zone boundaries on a uniform arc-length table of ntab samples, spacing ``dtab``):
    grid value (lateral offset (positive = right of path), arc length s) of a node; nodes further
               than ``band`` from the path hold (FAR, -1)
    tindex     (ntz, ntx) int32     tile of each TILE x TILE block of nodes, -1 = none
    tiles      (ntiles, TILE + 1, TILE + 1, 2) float32   the grid values of each stored tile
    bound      (nb, ntab) float32   lateral position of each boundary (a marking's centre for
                                    the two boundaries of a painted line)
    bound_hw   (nb,)                half-width of the line a boundary belongs to (0 for road
                                    edges and walls), signed: -hw for its left side, +hw right
    tangent    (2, ntab) float32    path direction (x, z) by arc length (not normalised between samples)
    zone_*     (nb + 1,)            per zone (left of boundary 0, between 0 and 1, ...): surface
                                    class, dash length and period, flags (see ZF_*)

Where the nearest path point jumps (the medial axis between two parts of the road, the centre of a
tight bend, the ends of an open road), interpolating across the jump would invent road; the
renderer detects a jump of s between the four nodes and then uses the nearest node instead.

Sparse tiles: only a band around the path holds road (10-45 % of a procedural track's bounding
box), so the grid is stored as tiles of TILE x TILE nodes, and only tiles with a node within the
band exist. A tile also repeats the first row and column of its right and lower neighbours, so
the four nodes of any grid cell lie in one tile (one lookup per sample). A missing tile means
"every node FAR", exactly what the dense grid held there, so frames do not depend on the storage.

Building: the value of a node is that of its nearest path segment (the first one, by index, at
equal distance), exactly as a brute-force scan of every segment gives (:func:`reference_grid`,
which the tests compare against bit for bit). Scanning each segment's bounding box extended by the
band visits every node dozens of times (60-150 ms per new track); instead each segment scans only
the nodes it can be nearest to: its own strip between the bisectors of its end normals, widened
to cover the vertex wedges on the outside of a bend (where two segments tie) and by a small
margin (see :func:`_segment_quad`). Each node is then evaluated about once or twice, by the same
arithmetic as the brute force, so the result is identical.

Memory: the grid spacing grows with the track's bounding box so that the (virtual) dense grid
never exceeds ``MAX_CELLS`` nodes; a 2,800-unit track gets about 0.6-unit cells, a small loop 0.25
(kept from the dense grid this replaced, so frames did not change). A procedural track's tiles
take 1-5 MB. A renderer plans a track (:func:`plan_raster`: which tiles, the zone tables) and has
the values computed straight into its own buffers (:func:`fill_tiles`), keeping no raster;
:func:`get_raster` builds a standalone :class:`TrackRaster` and caches it per Track object (an
LRU of at most ``RASTER_CACHE_BYTES``, forgetting a raster when its Track dies), for sharing and
for tools.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, fields

import numba as nb
import numpy as np

from donkeyrl.sim import appearance as ap
from donkeyrl.sim.track import Track

log = logging.getLogger(__name__)

#: Lateral value stored at nodes far from the road (anything above FAR / 2 means "far").
FAR = 1.0e4
#: Finest grid spacing (units); small tracks use it.
MIN_CELL = 0.25
#: Largest number of grid nodes of the (virtual) dense grid; larger tracks get coarser cells.
MAX_CELLS = 2_000_000
#: Spacing of the arc-length tables (units).
TABLE_DS = 0.25
#: Extra distance (units) beyond the furthest drawn feature that the grid still covers.
BAND_PAD = 3.0
#: Nodes per tile side (a power of two: the renderer splits node indices with shifts and masks).
TILE_SHIFT = 3
TILE = 1 << TILE_SHIFT
TILE_MASK = TILE - 1
#: Margin (units) by which a segment's scanned region exceeds the region where it can be nearest;
#: far above rounding (1e-12 units) and far below a node spacing, see :func:`_segment_quad`.
SCAN_MARGIN = 1.0e-3
#: Smallest cosine of the turn between two segments for which a segment's scan stops at the
#: bisector wedge; sharper turns (over 60 degrees) scan the whole half-disc behind the vertex.
MIN_TURN_COS = 0.5
#: Most bytes of rasters the :func:`get_raster` cache keeps (least recently used ones go first).
RASTER_CACHE_BYTES = 128 * 2**20
#: Zone flags (bits of ``zone_flags``): between the road edges; a centre-kind marking (for the
#: look's dash mode); ground beyond the left / right wall.
ZF_SURFACE, ZF_CENTRE, ZF_BEYOND_L, ZF_BEYOND_R = 1, 2, 4, 8
#: Wall styles in the kernels (index of ``track.WALL_STYLES``) and "no wall".
NO_WALL = -1
#: Start-line decals in the kernels (index of ``track.START_LINES``) and their depth along s (units).
START_DEPTH = (0.0, 1.2, 0.6)


@dataclass(frozen=True, eq=False)
class RasterPlan:
    """A raster without its tile values: where its tiles lie and its zone tables.

    Why separate: :func:`fill_tiles` computes the values into any array of ``ntiles`` tiles, so a
    renderer can have them written straight into its own (reused) buffer; fresh memory costs page
    faults that, on this machine, took as long as computing the values.
    """

    #: Tile number of each TILE x TILE block of nodes (-1: every node FAR), row-major numbering.
    tindex: np.ndarray
    ntiles: int
    nz: int
    nx: int
    ox: float
    oz: float
    h: float
    #: Distance (units) from the path within which nodes hold values.
    band: float
    dtab: float
    length: float
    closed: bool
    #: Largest s difference between neighbouring nodes still treated as continuous road.
    s_jump: float
    bound: np.ndarray
    bound_hw: np.ndarray
    tangent: np.ndarray
    zone_class: np.ndarray
    zone_dash: np.ndarray
    zone_period: np.ndarray
    zone_flags: np.ndarray
    #: Per side (left, right): wall style index (NO_WALL if none), height, fence height.
    wall_style: np.ndarray
    wall_height: np.ndarray
    wall_fence: np.ndarray
    #: Boundary index of each side's wall face (-1 if none).
    wall_bound: np.ndarray
    cones: np.ndarray
    start_line: int
    start_line_s: float


@dataclass(frozen=True, eq=False)
class TrackRaster(RasterPlan):
    """The per-track arrays the render kernels read (see the module notation)."""

    #: (ntiles, TILE + 1, TILE + 1, 2) float32 grid values of the tiles.
    tiles: np.ndarray

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (bytes)."""
        return int(self.tindex.nbytes + self.tiles.nbytes + self.bound.nbytes + self.tangent.nbytes)

    def dense(self) -> np.ndarray:
        """The grid as one (nz, nx, 2) float32 array (far nodes (FAR, -1)), for tests and tools."""
        out = np.empty((self.nz, self.nx, 2), dtype=np.float32)
        out[:, :, 0] = FAR
        out[:, :, 1] = -1.0
        for tj, ti in zip(*np.nonzero(self.tindex >= 0)):
            z0, x0 = tj * TILE, ti * TILE
            block = self.tiles[self.tindex[tj, ti], :TILE, :TILE]
            nzb, nxb = min(TILE, self.nz - z0), min(TILE, self.nx - x0)
            out[z0:z0 + nzb, x0:x0 + nxb] = block[:nzb, :nxb]
        return out

    def lookup(self, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated (lateral, s) at world points, as the renderer sees them (for tests/tools).

        Points off the grid or far from the road get lateral = FAR and s = -1.
        """
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        z = np.atleast_1d(np.asarray(z, dtype=np.float64))
        lat = np.empty(x.shape)
        s = np.empty(x.shape)
        for k in range(x.size):
            u = (x.flat[k] - self.ox) / self.h
            v = (z.flat[k] - self.oz) / self.h
            lat.flat[k], s.flat[k] = sample_grid(self.tindex, self.tiles, 0, self.nz, self.nx, u, v, self.length,
                                                 self.closed, self.s_jump)
        return lat, s


class _RasterCache:
    """Rasters by Track object: an entry lives while its Track lives, and the least recently used
    entries are dropped once the cache holds more than ``max_bytes``.

    Why both: catalogue tracks live for the whole process and their rasters are shared by every
    renderer; a procedural stream makes a new Track every episode, and tying rasters only to
    the Tracks' lifetime let a long run keep gigabytes of them.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, tuple[weakref.ref[Track], TrackRaster]] = OrderedDict()
        self.nbytes = 0

    def get(self, track: Track) -> TrackRaster | None:
        hit = self._entries.get(id(track))
        if hit is None or hit[0]() is not track:
            return None
        self._entries.move_to_end(id(track))
        return hit[1]

    def put(self, track: Track, raster: TrackRaster) -> None:
        key = id(track)
        self._drop(key)
        ref = weakref.ref(track, lambda dead, key=key: self._drop(key, dead))  # type: ignore[misc]
        self._entries[key] = (ref, raster)
        self.nbytes += raster.nbytes
        while self.nbytes > self.max_bytes and len(self._entries) > 1:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: int, dead: weakref.ref[Track] | None = None) -> None:
        hit = self._entries.get(key)
        if hit is not None and (dead is None or hit[0] is dead):
            del self._entries[key]
            self.nbytes -= hit[1].nbytes

    def __len__(self) -> int:
        return len(self._entries)


_CACHE = _RasterCache(RASTER_CACHE_BYTES)


def get_raster(track: Track) -> TrackRaster:
    """The raster of ``track``, built on first use and shared while it stays cached (see
    :class:`_RasterCache`)."""
    raster = _CACHE.get(track)
    if raster is None:
        raster = build_raster(track)
        _CACHE.put(track, raster)
    return raster


def cached_raster(track: Track) -> TrackRaster | None:
    """The raster of ``track`` if the cache holds one (nothing is built)."""
    return _CACHE.get(track)


def cached_rasters() -> tuple[int, int]:
    """(number, bytes) of rasters the cache holds now."""
    return len(_CACHE), _CACHE.nbytes


def _visible_walls(track: Track) -> dict[str, tuple[np.ndarray, object]]:
    """The innermost wall on each side: side -> (lateral position (N,), Wall)."""
    out: dict[str, tuple[np.ndarray, object]] = {}
    for w in track.all_walls:
        lat = track.wall_lateral(w)
        cur = out.get(w.side)
        inner = cur is None or (np.mean(lat) > np.mean(cur[0])) == (w.side == "left")
        if inner:
            out[w.side] = (lat, w)
    return out


@dataclass(frozen=True)
class GridGeometry:
    """Where the grid lies: origin (ox, oz), spacing h, nodes nz x nx, and the band (units) around
    the path within which nodes hold values."""

    ox: float
    oz: float
    h: float
    nz: int
    nx: int
    band: float


def grid_geometry(track: Track, min_cell: float = MIN_CELL, max_cells: int = MAX_CELLS) -> GridGeometry:
    """The grid of ``track``: its bounding box plus everything drawn beside the road, at the finest
    spacing that keeps the dense grid under ``max_cells`` nodes."""
    reach = float(max(np.max(-track.lat_left), np.max(track.lat_right)))
    for lat, _ in _visible_walls(track).values():
        reach = max(reach, float(np.max(np.abs(lat))))
    pts = track.points
    lo = pts.min(axis=0) - reach - BAND_PAD
    hi = pts.max(axis=0) + reach + BAND_PAD
    area = float(np.prod(hi - lo))
    h = max(min_cell, math.sqrt(area / max_cells))
    nx = int(math.ceil((hi[0] - lo[0]) / h)) + 2
    nz = int(math.ceil((hi[1] - lo[1]) / h)) + 2
    return GridGeometry(ox=float(lo[0]), oz=float(lo[1]), h=h, nz=nz, nx=nx, band=reach + BAND_PAD + 2.0 * h)


def plan_raster(track: Track, min_cell: float = MIN_CELL, max_cells: int = MAX_CELLS) -> RasterPlan:
    """The grid of ``track`` (which tiles exist) and its zone tables; values by :func:`fill_tiles`."""
    g = grid_geometry(track, min_cell, max_cells)
    tindex = np.full((-(-g.nz // TILE), -(-g.nx // TILE)), -1, dtype=np.int32)
    _mark_tiles(track.points, track.closed, g.ox, g.oz, g.h, g.band, g.nz, g.nx, tindex)
    marked = tindex == 0
    ntiles = int(np.count_nonzero(marked))
    tindex[marked] = np.arange(ntiles, dtype=np.int32)
    zones = _zone_tables(track, _visible_walls(track))
    return RasterPlan(tindex=tindex, ntiles=ntiles, nz=g.nz, nx=g.nx, ox=g.ox, oz=g.oz, h=g.h, band=g.band,
                      dtab=TABLE_DS, length=float(track.length), closed=track.closed, s_jump=1.0 + 8.0 * g.h,
                      **zones)  # type: ignore[arg-type]


def fill_tiles(plan: RasterPlan, track: Track, out: np.ndarray) -> None:
    """Write the tile values of ``plan`` (made from ``track``) into ``out`` ((ntiles, TILE + 1,
    TILE + 1, 2) float32, any contents)."""
    if out.shape != (plan.ntiles, TILE + 1, TILE + 1, 2) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 of shape {(plan.ntiles, TILE + 1, TILE + 1, 2)}, "
                         f"got {out.dtype} {out.shape}")
    if _SCRATCH.best.shape[0] < plan.ntiles:
        _SCRATCH.best = np.empty((max(plan.ntiles, int(1.25 * _SCRATCH.best.shape[0])), TILE, TILE))
    best = _SCRATCH.best[:plan.ntiles]
    best.fill(np.inf)
    out.reshape(-1).view(np.uint64).fill(_FAR_NODE)
    _fill_tiles(track.points, track.s, plan.length, plan.closed, plan.ox, plan.oz, plan.h, plan.band, plan.nz,
                plan.nx, plan.tindex, out, best)
    _copy_aprons(plan.tindex, out.view(np.uint64).reshape(out.shape[:3]))


#: A far node's (FAR, -1) as the 8 bytes of two float32 (filled 8 bytes at a time).
_FAR_NODE = np.array([FAR, -1.0], dtype=np.float32).view(np.uint64)[0]


@nb.njit(cache=True, error_model="numpy")
def _copy_aprons(tindex, nodes):  # pragma: no cover - jitted
    """Each tile's last row and column: its lower, right and lower-right neighbours' first row,
    column and node (left FAR where there is no neighbour). ``nodes``: the tiles with each node's
    two float32 as one uint64."""
    ntz, ntx = tindex.shape
    for tj in range(ntz):
        for ti in range(ntx):
            k = tindex[tj, ti]
            if k < 0:
                continue
            if tj + 1 < ntz:
                d = tindex[tj + 1, ti]
                if d >= 0:
                    nodes[k, TILE, :TILE] = nodes[d, 0, :TILE]
                if ti + 1 < ntx:
                    d = tindex[tj + 1, ti + 1]
                    if d >= 0:
                        nodes[k, TILE, TILE] = nodes[d, 0, 0]
            if ti + 1 < ntx:
                d = tindex[tj, ti + 1]
                if d >= 0:
                    nodes[k, :TILE, TILE] = nodes[d, :TILE, 0]


def build_raster(track: Track, min_cell: float = MIN_CELL, max_cells: int = MAX_CELLS) -> TrackRaster:
    """Sample the exact path projection of ``track`` on a tiled grid and build its zone tables."""
    plan = plan_raster(track, min_cell, max_cells)
    tiles = np.empty((plan.ntiles, TILE + 1, TILE + 1, 2), dtype=np.float32)
    fill_tiles(plan, track, tiles)
    raster = TrackRaster(tiles=tiles, **{f.name: getattr(plan, f.name) for f in fields(RasterPlan)})
    log.debug("raster for %s: %dx%d nodes, cell %.2f, %d tiles, %.1f MB", track.name, plan.nx, plan.nz, plan.h,
              plan.ntiles, raster.nbytes / 1e6)
    return raster


def reference_grid(track: Track, min_cell: float = MIN_CELL, max_cells: int = MAX_CELLS) -> np.ndarray:
    """The dense (nz, nx, 2) grid by brute force: every segment scans its bounding box extended by
    the band (the definition of the grid values; tests and benchmarks compare against it)."""
    g = grid_geometry(track, min_cell, max_cells)
    data = np.empty((g.nz, g.nx, 2), dtype=np.float32)
    data[:, :, 0] = FAR
    data[:, :, 1] = -1.0
    best = np.full((g.nz, g.nx), np.inf)
    _rasterize_dense(track.points, track.s, float(track.length), track.closed, g.ox, g.oz, g.h, g.band, data, best)
    return data


def _tables(track: Track, arrays: list[np.ndarray]) -> np.ndarray:
    """Per-sample arrays resampled on the uniform arc-length table: (len(arrays), ntab) float32."""
    end = track.length if track.closed else float(track.s[-1])
    q = np.arange(int(math.ceil(end / TABLE_DS)) + 2) * TABLE_DS
    out = np.empty((len(arrays), len(q)), dtype=np.float32)
    if track.closed:
        q = np.mod(q, track.length)
        xp = np.append(track.s, track.length)
        for k, arr in enumerate(arrays):
            out[k] = np.interp(q, xp, np.append(arr, arr[:1]))
    else:
        for k, arr in enumerate(arrays):
            out[k] = np.interp(q, track.s, arr)
    return out


def _zone_tables(track: Track, walls: dict[str, tuple[np.ndarray, object]]) -> dict[str, object]:
    """Boundaries and zones across the road, left to right: [beyond the left wall | ground |
    shoulder | line | road | line | ... | shoulder | ground | beyond the right wall]."""
    from donkeyrl.sim.track import WALL_STYLES

    bounds: list[tuple[np.ndarray, float]] = []
    classes: list[int] = []
    dash: list[float] = []
    period: list[float] = []
    flags: list[int] = []

    def zone(cls: int, flag: int = 0, d: float = 0.0, p: float = 0.0) -> None:
        classes.append(cls)
        flags.append(flag)
        dash.append(d)
        period.append(p)

    wall_style = np.full(2, NO_WALL, dtype=np.int64)
    wall_height = np.zeros(2)
    wall_fence = np.zeros(2)
    wall_bound = np.full(2, -1, dtype=np.int64)
    if "left" in walls:
        lat, w = walls["left"]
        zone(ap.BEYOND_L, ZF_BEYOND_L)
        wall_bound[0] = len(bounds)
        bounds.append((lat, 0.0))
        wall_style[0] = WALL_STYLES.index(w.style)  # type: ignore[attr-defined]
        wall_height[0], wall_fence[0] = w.height, w.fence_height  # type: ignore[attr-defined]
    zone(ap.GROUND)
    bounds.append((track.lat_left, 0.0))
    marks = sorted(track.markings or (), key=lambda m: float(np.mean(track.anchor_lat(m.anchor) + m.offset)))
    for i, m in enumerate(marks):
        centre = track.anchor_lat(m.anchor) + m.offset
        shoulder = i == 0 and m.anchor == "left" and m.kind == "edge" and m.offset > m.width
        zone(ap.SHOULDER if shoulder else ap.ROAD, ZF_SURFACE)
        bounds.append((centre, -m.width / 2))
        cls = {"edge": ap.EDGE, "centre": ap.CENTRE, "accent": ap.ACCENT}[m.kind]
        zone(cls, ZF_SURFACE | (ZF_CENTRE if m.kind == "centre" else 0), m.dash, m.period)
        bounds.append((centre, m.width / 2))
    last = marks[-1] if marks else None
    right_shoulder = last is not None and last.anchor == "right" and last.kind == "edge" and -last.offset > last.width
    zone(ap.SHOULDER if right_shoulder else ap.ROAD, ZF_SURFACE)
    bounds.append((track.lat_right, 0.0))
    zone(ap.GROUND)
    if "right" in walls:
        lat, w = walls["right"]
        wall_bound[1] = len(bounds)
        bounds.append((lat, 0.0))
        zone(ap.BEYOND_R, ZF_BEYOND_R)
        wall_style[1] = WALL_STYLES.index(w.style)  # type: ignore[attr-defined]
        wall_height[1], wall_fence[1] = w.height, w.fence_height  # type: ignore[attr-defined]
    from donkeyrl.sim.track import START_LINES

    return {
        "bound": _tables(track, [b for b, _ in bounds]),
        "bound_hw": np.array([hw for _, hw in bounds]),
        "tangent": _tables(track, [track.tangents[:, 0], track.tangents[:, 1]]),
        "zone_class": np.array(classes, dtype=np.int64),
        "zone_dash": np.array(dash),
        "zone_period": np.array(period),
        "zone_flags": np.array(flags, dtype=np.int64),
        "wall_style": wall_style, "wall_height": wall_height, "wall_fence": wall_fence, "wall_bound": wall_bound,
        "cones": np.ascontiguousarray(track.cones, dtype=np.float64),
        "start_line": START_LINES.index(track.start_line),
        "start_line_s": float(track.start_line_s),
    }


# ------------------------------------------------------------------------------ compiled builders
@nb.njit(cache=True, inline="always", error_model="numpy")
def _node_value(px, pz, ax, az, dx, dz, l2, seg_len, s_i, s_len, first, last, closed):  # pragma: no cover
    """(d2, lateral, s) of node (px, pz) against one segment: THE arithmetic of the grid values
    (both builders use it, so they agree to the bit). Beyond the ends of an open road the nearest
    point is the end cap: such nodes get (FAR, -1) so the road visibly ends."""
    tr = ((px - ax) * dx + (pz - az) * dz) / l2
    t = min(max(tr, 0.0), 1.0)
    qx = ax + t * dx - px
    qz = az + t * dz - pz
    d2 = qx * qx + qz * qz
    if not closed and ((first and tr < 0.0) or (last and tr > 1.0)):
        return d2, FAR, -1.0
    return d2, ((px - ax) * dz - (pz - az) * dx) / seg_len, s_i + t * s_len


@nb.njit(cache=True, error_model="numpy")
def _rasterize_dense(points, s, length, closed, ox, oz, h, band, data, best):  # pragma: no cover - jitted
    """Brute force: for every node within ``band`` of the path keep the nearest segment's
    (lateral, s), scanning each segment's bounding box extended by the band.

    The lateral offset is the signed distance to the nearest segment's line, like
    ``track.project_point`` (so the picture agrees with the cte). Ties go to the lowest segment
    index (strict comparison in index order).
    """
    n = points.shape[0]
    nz, nx = best.shape
    nseg = n if closed else n - 1
    band2 = band * band
    for i in range(nseg):
        j = i + 1
        if j == n:
            j = 0
        ax, az = points[i, 0], points[i, 1]
        dx, dz = points[j, 0] - ax, points[j, 1] - az
        l2 = dx * dx + dz * dz
        seg_len = math.sqrt(l2)
        s_len = (length - s[i]) if j == 0 else (s[j] - s[i])
        i0 = max(0, int(math.floor((min(ax, ax + dx) - band - ox) / h)))
        i1 = min(nx - 1, int(math.ceil((max(ax, ax + dx) + band - ox) / h)))
        j0 = max(0, int(math.floor((min(az, az + dz) - band - oz) / h)))
        j1 = min(nz - 1, int(math.ceil((max(az, az + dz) + band - oz) / h)))
        for jz in range(j0, j1 + 1):
            pz = oz + jz * h
            for ix in range(i0, i1 + 1):
                px = ox + ix * h
                d2, lat, sv = _node_value(px, pz, ax, az, dx, dz, l2, seg_len, s[i], s_len, i == 0, i == nseg - 1,
                                          closed)
                if d2 < best[jz, ix] and d2 <= band2:
                    best[jz, ix] = d2
                    data[jz, ix, 0] = lat
                    data[jz, ix, 1] = sv


@nb.njit(cache=True, inline="always", error_model="numpy")
def _turn(points, p, n, ux, uz, nx_, nz_):  # pragma: no cover - jitted
    """The neighbouring segment from node ``p`` to the next (wrapping at ``n``), against the
    direction (ux, uz) and its normal (nx_, nz_): (usable, cos along, sin across). Unusable when
    that segment is a repeated point or turns sharper than MIN_TURN_COS (see _segment_quad)."""
    q = p + 1
    if q == n:
        q = 0
    ex, ez = points[q, 0] - points[p, 0], points[q, 1] - points[p, 1]
    le = math.sqrt(ex * ex + ez * ez)
    if le < 1e-9:
        return False, 1.0, 0.0
    c = (ex * ux + ez * uz) / le
    sn = (ex * nx_ + ez * nz_) / le
    return c >= MIN_TURN_COS, c, sn


@nb.njit(cache=True, error_model="numpy")
def _segment_quad(points, i, n, nseg, closed, B, quad):  # pragma: no cover - jitted
    """Corners (4, 2) of a quadrilateral holding every point segment ``i`` can be nearest to.

    In the segment's frame (x along it from its start a, length L; y across), a point with x < 0
    is at distance |p - a| from it, and the previous segment (which also ends at a) is strictly
    closer unless the point also lies beyond the previous segment's end: p.d_prev >= 0. So the
    segment can be nearest only where x >= 0 or (p - a).d_prev >= 0, i.e. right of
    x_a(y) = min(0, -y sn / c) (c, sn: the previous direction's components along and across), and
    likewise left of its end's counterpart. Both bounds are piecewise linear, so the chord between
    y = -B and y = +B bounds them; every bound is widened by SCAN_MARGIN, which outweighs any
    rounding of the distances by orders of magnitude, so every segment at (computed) least
    distance from a node scans it. An open road's first and last segments and sharp turns scan
    the whole half-disc behind the vertex.
    """
    j = i + 1
    if j == n:
        j = 0
    ax, az = points[i, 0], points[i, 1]
    dx, dz = points[j, 0] - ax, points[j, 1] - az
    L = math.sqrt(dx * dx + dz * dz)
    eps = SCAN_MARGIN
    if L < 1e-9:  # a repeated point: its "segment" is the point, scan the square around it
        quad[0, 0], quad[0, 1] = ax - B, az - B
        quad[1, 0], quad[1, 1] = ax + B, az - B
        quad[2, 0], quad[2, 1] = ax + B, az + B
        quad[3, 0], quad[3, 1] = ax - B, az + B
        return
    ux, uz = dx / L, dz / L                    # along
    nx_, nz_ = uz, -ux                         # across (right-hand normal)
    prev_ok, cp, sp = False, 1.0, 0.0
    if closed or i > 0:
        prev_ok, cp, sp = _turn(points, i - 1 if i > 0 else nseg - 1, n, ux, uz, nx_, nz_)
    next_ok, cn, sn = False, 1.0, 0.0
    if closed or i < nseg - 1:
        next_ok, cn, sn = _turn(points, j, n, ux, uz, nx_, nz_)
    for k in range(2):
        sig = -1.0 if k == 0 else 1.0
        y = sig * B
        xa = -B
        if prev_ok:
            xa = min(-eps, (-eps - y * sp) / cp)
        xb = L + B
        if next_ok:
            xb = L + max(eps, (eps - y * sn) / cn)
        # corners in order around the quad: (xa, -B), (xb, -B), (xb, +B), (xa, +B)
        ka, kb = (0, 1) if k == 0 else (3, 2)
        quad[ka, 0], quad[ka, 1] = ax + xa * ux + y * nx_, az + xa * uz + y * nz_
        quad[kb, 0], quad[kb, 1] = ax + xb * ux + y * nx_, az + xb * uz + y * nz_


@nb.njit(cache=True, error_model="numpy")
def _quad_edges(quad, edges):  # pragma: no cover - jitted
    """The non-horizontal edges of ``quad`` as rows (z0, z1, x at z0, dx/dz) with z0 < z1; returns
    their number. (A horizontal edge's ends belong to its neighbouring edges.)"""
    ne = 0
    for e in range(4):
        f = e + 1 if e < 3 else 0
        x0, z0, x1, z1 = quad[e, 0], quad[e, 1], quad[f, 0], quad[f, 1]
        if z0 == z1:
            continue
        if z1 < z0:
            x0, z0, x1, z1 = x1, z1, x0, z0
        edges[ne, 0], edges[ne, 1], edges[ne, 2] = z0, z1, x0
        edges[ne, 3] = (x1 - x0) / (z1 - z0)
        ne += 1
    return ne


@nb.njit(cache=True, inline="always", error_model="numpy")
def _quad_span(edges, ne, zlo, zhi):  # pragma: no cover - jitted
    """(xmin, xmax) of the quad between heights zlo <= zhi (xmin > xmax: none)."""
    xlo, xhi = np.inf, -np.inf
    for e in range(ne):
        z0, z1 = edges[e, 0], edges[e, 1]
        a, b = max(z0, zlo), min(z1, zhi)
        if a <= b:   # the edge is linear: its extremes over [a, b] are at a and b
            xa = edges[e, 2] + (a - z0) * edges[e, 3]
            xb = edges[e, 2] + (b - z0) * edges[e, 3]
            xlo, xhi = min(xlo, xa, xb), max(xhi, xa, xb)
    return xlo, xhi


@nb.njit(cache=True, error_model="numpy")
def _mark_tiles(points, closed, ox, oz, h, band, nz, nx, tindex):  # pragma: no cover - jitted
    """Set ``tindex`` to 0 on every tile a segment's quad touches, and on the upper, left and
    upper-left neighbours of those (whose last row or column repeats their first ones)."""
    n = points.shape[0]
    nseg = n if closed else n - 1
    B = band + SCAN_MARGIN
    ntz, ntx = tindex.shape
    inv_h = 1.0 / h
    quad = np.empty((4, 2))
    edges = np.empty((4, 4))
    for i in range(nseg):
        _segment_quad(points, i, n, nseg, closed, B, quad)
        ne = _quad_edges(quad, edges)
        zmin = min(quad[0, 1], quad[1, 1], quad[2, 1], quad[3, 1])
        zmax = max(quad[0, 1], quad[1, 1], quad[2, 1], quad[3, 1])
        j0 = max(0, int(math.ceil((zmin - oz) * inv_h)))
        j1 = min(nz - 1, int(math.floor((zmax - oz) * inv_h)))
        if j0 > j1:
            continue
        for tj in range(j0 >> TILE_SHIFT, (j1 >> TILE_SHIFT) + 1):
            ja, jb = max(j0, tj << TILE_SHIFT), min(j1, (tj << TILE_SHIFT) + TILE_MASK)
            xlo, xhi = _quad_span(edges, ne, oz + ja * h, oz + jb * h)
            if xlo > xhi:
                continue
            i0 = max(0, int(math.floor((xlo - ox) * inv_h)))
            i1 = min(nx - 1, int(math.ceil((xhi - ox) * inv_h)))
            for ti in range(max(0, (i0 >> TILE_SHIFT) - 1), (i1 >> TILE_SHIFT) + 1):
                tindex[tj, ti] = 0
                if tj > 0:
                    tindex[tj - 1, ti] = 0


class _Scratch(threading.local):
    """Per-thread scratch of the tiled builder (nearest squared distance per node), reused across
    builds: a fresh multi-megabyte array per track cost more in page faults than the distances
    themselves. It grows to the largest track built (about 4 MB for a 1,600-unit track)."""

    best: np.ndarray = np.empty((0, TILE, TILE))


_SCRATCH = _Scratch()


@nb.njit(cache=True, error_model="numpy")
def _fill_tiles(points, s, length, closed, ox, oz, h, band, nz, nx, tindex, tiles, best):  # pragma: no cover
    """Every node of every segment's quad, in segment order with the brute force's arithmetic
    and strict comparison (so ties go to the same segment). ``tiles`` start all FAR and ``best``
    all infinite; tile edges repeating a neighbour are left to the caller.

    A quad is long across the path and short along it, so it is scanned in lines across the path:
    rows of constant z where the path runs mostly along z, columns of constant x otherwise.
    """
    n = points.shape[0]
    nseg = n if closed else n - 1
    band2 = band * band
    B = band + SCAN_MARGIN
    inv_h = 1.0 / h
    quad = np.empty((4, 2))
    tq = np.empty((4, 2))
    edges = np.empty((4, 4))
    for i in range(nseg):
        j = i + 1
        if j == n:
            j = 0
        ax, az = points[i, 0], points[i, 1]
        dx, dz = points[j, 0] - ax, points[j, 1] - az
        l2 = dx * dx + dz * dz
        seg_len = math.sqrt(l2)
        s_len = (length - s[i]) if j == 0 else (s[j] - s[i])
        first, last = i == 0, i == nseg - 1
        _segment_quad(points, i, n, nseg, closed, B, quad)
        cols = abs(dx) > abs(dz)
        for q in range(4):   # (outer, inner) coordinates: (z, x) for rows, (x, z) for columns
            tq[q, 0], tq[q, 1] = (quad[q, 1], quad[q, 0]) if cols else (quad[q, 0], quad[q, 1])
        o_out, o_in, n_out, n_in = (ox, oz, nx, nz) if cols else (oz, ox, nz, nx)
        ne = _quad_edges(tq, edges)
        lo = min(tq[0, 1], tq[1, 1], tq[2, 1], tq[3, 1])
        hi = max(tq[0, 1], tq[1, 1], tq[2, 1], tq[3, 1])
        j0 = max(0, int(math.ceil((lo - o_out) * inv_h)))
        j1 = min(n_out - 1, int(math.floor((hi - o_out) * inv_h)))
        for jo in range(j0, j1 + 1):
            po = o_out + jo * h
            a, b = _quad_span(edges, ne, po, po)
            if a > b:
                continue
            i0 = max(0, int(math.ceil((a - o_in) * inv_h)))
            i1 = min(n_in - 1, int(math.floor((b - o_in) * inv_h)))
            to = jo >> TILE_SHIFT
            lo_ = jo & TILE_MASK
            for ji in range(i0, i1 + 1):
                pi = o_in + ji * h
                if cols:
                    d2, lat, sv = _node_value(po, pi, ax, az, dx, dz, l2, seg_len, s[i], s_len, first, last, closed)
                    k = tindex[ji >> TILE_SHIFT, to]
                    lz, lx = ji & TILE_MASK, lo_
                else:
                    d2, lat, sv = _node_value(pi, po, ax, az, dx, dz, l2, seg_len, s[i], s_len, first, last, closed)
                    k = tindex[to, ji >> TILE_SHIFT]
                    lz, lx = lo_, ji & TILE_MASK
                # k < 0: a node within rounding of this quad's edge, which _mark_tiles (rows, not
                # columns) may have left out; this segment cannot be nearest there (SCAN_MARGIN)
                if k >= 0 and d2 < best[k, lz, lx] and d2 <= band2:
                    best[k, lz, lx] = d2
                    tiles[k, lz, lx, 0] = lat
                    tiles[k, lz, lx, 1] = sv


# ------------------------------------------------------------------------------ sampling
@nb.njit(cache=True, inline="always", error_model="numpy")
def _wrap(d, length, closed):  # pragma: no cover - jitted
    """Arc-length difference wrapped to (-length/2, length/2] on closed tracks."""
    if closed:
        if d > 0.5 * length:
            d -= length
        elif d < -0.5 * length:
            d += length
    return d


@nb.njit(cache=True, inline="always", error_model="numpy")
def sample_grid(tindex, tiles, toff, nz, nx, u, v, length, closed, s_jump):  # pragma: no cover - jitted
    """(lateral, s) at fractional grid coordinates (u, v); (FAR, -1) off the grid or off the road.

    ``tiles[toff + tindex[..]]`` are the track's tiles (an atlas holds many tracks' tiles in one
    array). Bilinear where the four nodes agree; nearest node across a jump of s (see module
    docstring). The four nodes of a cell lie in one tile; no tile means four FAR nodes.
    """
    if u < 0.0 or v < 0.0 or u >= nx - 1 or v >= nz - 1:
        return FAR, -1.0
    iu = int(u)
    iv = int(v)
    k = tindex[iv >> TILE_SHIFT, iu >> TILE_SHIFT]
    if k < 0:
        return FAR, -1.0
    k += toff
    au = u - iu
    av = v - iv
    iu &= TILE_MASK
    iv &= TILE_MASK
    l00 = tiles[k, iv, iu, 0]
    l01 = tiles[k, iv, iu + 1, 0]
    l10 = tiles[k, iv + 1, iu, 0]
    l11 = tiles[k, iv + 1, iu + 1, 0]
    s00 = tiles[k, iv, iu, 1]
    d01 = _wrap(tiles[k, iv, iu + 1, 1] - s00, length, closed)
    d10 = _wrap(tiles[k, iv + 1, iu, 1] - s00, length, closed)
    d11 = _wrap(tiles[k, iv + 1, iu + 1, 1] - s00, length, closed)
    half = 0.5 * FAR
    smooth = (l00 < half and l01 < half and l10 < half and l11 < half
              and abs(d01) < s_jump and abs(d10) < s_jump and abs(d11) < s_jump)
    if smooth:
        lat = l00 + au * (l01 - l00) + av * (l10 - l00) + au * av * (l11 - l10 - l01 + l00)
        s = s00 + au * d01 + av * d10 + au * av * (d11 - d10 - d01)
        if closed:
            if s < 0.0:
                s += length
            elif s >= length:
                s -= length
        return lat, s
    ju = iu + 1 if au >= 0.5 else iu
    jv = iv + 1 if av >= 0.5 else iv
    lat = tiles[k, jv, ju, 0]
    if lat >= half:
        return FAR, -1.0
    return lat, tiles[k, jv, ju, 1]
