"""Precomputed track geometry for the camera: a world-space grid of (lateral offset, arc length)
and the lateral zones of the road (paint, shoulders, ground, what lies beyond a wall).

Why: the renderer must classify ~12,000 ground points per frame in about 100 microseconds.
Projecting each point onto the path exactly costs far too much, so once per track we sample the
exact projection on a regular grid of nodes and the renderer interpolates it bilinearly. The
lateral offset is a smooth (almost linear) function of position near the road, so bilinear
interpolation keeps road edges sharp at any image resolution; only the thresholds (zone
boundaries) are applied per pixel, exactly.

Notation (grid of nz x nx nodes, spacing ``h`` units, node (j, i) at (ox + i h, oz + j h);
nb zone boundaries on a uniform arc-length table of ntab samples, spacing ``dtab``):
    data       (nz, nx, 2) float32  [lateral offset (positive = right of path), arc length s]
                                    nodes further than ``band`` from the path hold (FAR, -1)
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

Memory: the grid spacing grows with the track's bounding box so that a grid never exceeds
``MAX_CELLS`` nodes (16 MB); a 2,800-unit track gets about 0.6-unit cells, a small loop 0.25.
Rasters are cached per Track object (weakly), so many renderers and cars share one.
"""

from __future__ import annotations

import logging
import math
import weakref
from dataclasses import dataclass

import numba as nb
import numpy as np

from donkeyrl.sim import appearance as ap
from donkeyrl.sim.track import Track

log = logging.getLogger(__name__)

#: Lateral value stored at nodes far from the road (anything above FAR / 2 means "far").
FAR = 1.0e4
#: Finest grid spacing (units); small tracks use it.
MIN_CELL = 0.25
#: Largest number of grid nodes; larger tracks get coarser cells instead of more memory.
MAX_CELLS = 2_000_000
#: Spacing of the arc-length tables (units).
TABLE_DS = 0.25
#: Extra distance (units) beyond the furthest drawn feature that the grid still covers.
BAND_PAD = 3.0
#: Zone flags (bits of ``zone_flags``): between the road edges; a centre-kind marking (for the
#: look's dash mode); ground beyond the left / right wall.
ZF_SURFACE, ZF_CENTRE, ZF_BEYOND_L, ZF_BEYOND_R = 1, 2, 4, 8
#: Wall styles in the kernels (index of ``track.WALL_STYLES``) and "no wall".
NO_WALL = -1
#: Start-line decals in the kernels (index of ``track.START_LINES``) and their depth along s (units).
START_DEPTH = (0.0, 1.2, 0.6)


@dataclass(frozen=True, eq=False)
class TrackRaster:
    """The per-track arrays the render kernels read (see the module notation)."""

    data: np.ndarray
    ox: float
    oz: float
    h: float
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

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (bytes)."""
        return int(self.data.nbytes + self.bound.nbytes + self.tangent.nbytes)

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
            lat.flat[k], s.flat[k] = sample_grid(self.data, u, v, self.length, self.closed, self.s_jump)
        return lat, s


_CACHE: weakref.WeakKeyDictionary[Track, TrackRaster] = weakref.WeakKeyDictionary()


def get_raster(track: Track) -> TrackRaster:
    """The raster of ``track``, built on first use and shared while the Track object lives."""
    raster = _CACHE.get(track)
    if raster is None:
        raster = build_raster(track)
        _CACHE[track] = raster
    return raster


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


def build_raster(track: Track, min_cell: float = MIN_CELL, max_cells: int = MAX_CELLS) -> TrackRaster:
    """Sample the exact path projection of ``track`` on a grid and build its zone tables."""
    walls = _visible_walls(track)
    reach = float(max(np.max(-track.lat_left), np.max(track.lat_right)))
    for lat, _ in walls.values():
        reach = max(reach, float(np.max(np.abs(lat))))
    drawn = reach
    pts = track.points
    lo = pts.min(axis=0) - drawn - BAND_PAD
    hi = pts.max(axis=0) + drawn + BAND_PAD
    area = float(np.prod(hi - lo))
    h = max(min_cell, math.sqrt(area / max_cells))
    band = drawn + BAND_PAD + 2.0 * h
    nx = int(math.ceil((hi[0] - lo[0]) / h)) + 2
    nz = int(math.ceil((hi[1] - lo[1]) / h)) + 2
    data = np.empty((nz, nx, 2), dtype=np.float32)
    data[:, :, 0] = FAR
    data[:, :, 1] = -1.0
    best = np.full((nz, nx), np.inf)
    _rasterize(pts, track.s, track.length, track.closed, float(lo[0]), float(lo[1]), h, band, data, best)
    zones = _zone_tables(track, walls)
    raster = TrackRaster(data=data, ox=float(lo[0]), oz=float(lo[1]), h=h, dtab=TABLE_DS,
                         length=float(track.length), closed=track.closed, s_jump=1.0 + 8.0 * h,
                         **zones)  # type: ignore[arg-type]
    log.debug("raster for %s: %dx%d nodes, cell %.2f, %.1f MB", track.name, nx, nz, h, raster.nbytes / 1e6)
    return raster


def _table(track: Track, arr: np.ndarray) -> np.ndarray:
    """A per-sample array resampled on the uniform arc-length table (float32)."""
    end = track.length if track.closed else float(track.s[-1])
    q = np.arange(int(math.ceil(end / TABLE_DS)) + 2) * TABLE_DS
    if track.closed:
        return np.interp(np.mod(q, track.length), np.append(track.s, track.length),
                         np.append(arr, arr[:1])).astype(np.float32)
    return np.interp(q, track.s, arr).astype(np.float32)


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
        "bound": np.ascontiguousarray(np.stack([_table(track, b) for b, _ in bounds])),
        "bound_hw": np.array([hw for _, hw in bounds]),
        "tangent": np.ascontiguousarray(np.stack([_table(track, track.tangents[:, 0]),
                                                  _table(track, track.tangents[:, 1])])),
        "zone_class": np.array(classes, dtype=np.int64),
        "zone_dash": np.array(dash),
        "zone_period": np.array(period),
        "zone_flags": np.array(flags, dtype=np.int64),
        "wall_style": wall_style, "wall_height": wall_height, "wall_fence": wall_fence, "wall_bound": wall_bound,
        "cones": np.ascontiguousarray(track.cones, dtype=np.float64),
        "start_line": START_LINES.index(track.start_line),
        "start_line_s": float(track.start_line_s),
    }


@nb.njit(cache=True, error_model="numpy")
def _rasterize(points, s, length, closed, ox, oz, h, band, data, best):  # pragma: no cover - jitted
    """For every node within ``band`` of the path keep the nearest segment's (lateral, s).

    The lateral offset is the signed distance to the nearest segment's line, like
    ``track.project_point`` (so the picture agrees with the cte). Beyond the ends of an open road
    the nearest point is the end cap: those nodes stay FAR so the road visibly ends.
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
                tr = ((px - ax) * dx + (pz - az) * dz) / l2
                t = min(max(tr, 0.0), 1.0)
                qx = ax + t * dx - px
                qz = az + t * dz - pz
                d2 = qx * qx + qz * qz
                if d2 < best[jz, ix] and d2 <= band2:
                    best[jz, ix] = d2
                    if not closed and ((i == 0 and tr < 0.0) or (i == nseg - 1 and tr > 1.0)):
                        data[jz, ix, 0] = FAR
                        data[jz, ix, 1] = -1.0
                    else:
                        data[jz, ix, 0] = ((px - ax) * dz - (pz - az) * dx) / seg_len
                        data[jz, ix, 1] = s[i] + t * s_len


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
def sample_grid(data, u, v, length, closed, s_jump):  # pragma: no cover - jitted
    """(lateral, s) at fractional grid coordinates (u, v); (FAR, -1) off the grid or off the road.

    Bilinear where the four nodes agree; nearest node across a jump of s (see module docstring).
    """
    nz = data.shape[0]
    nx = data.shape[1]
    if u < 0.0 or v < 0.0 or u >= nx - 1 or v >= nz - 1:
        return FAR, -1.0
    iu = int(u)
    iv = int(v)
    au = u - iu
    av = v - iv
    l00 = data[iv, iu, 0]
    l01 = data[iv, iu + 1, 0]
    l10 = data[iv + 1, iu, 0]
    l11 = data[iv + 1, iu + 1, 0]
    s00 = data[iv, iu, 1]
    d01 = _wrap(data[iv, iu + 1, 1] - s00, length, closed)
    d10 = _wrap(data[iv + 1, iu, 1] - s00, length, closed)
    d11 = _wrap(data[iv + 1, iu + 1, 1] - s00, length, closed)
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
    lat = data[jv, ju, 0]
    if lat >= half:
        return FAR, -1.0
    return lat, data[jv, ju, 1]
