"""Track geometry: a centre path with a road around it, and exact queries on it.

Coordinates follow the DonkeyCar (Unity) simulator seen from above: the ground plane is (x, z),
x to the right and z forward when yaw = 0; yaw turns clockwise seen from above, so the car's
forward vector is (sin yaw, cos yaw) and its right vector is (cos yaw, -sin yaw). All lengths are
simulator units (1 telemetry unit = 8 simulator units).

Notation (N = number of path samples, spaced about ``ds`` apart):
    points      (N, 2)  path (the line cte is measured from) in (x, z)
    tangents    (N, 2)  unit direction of travel at each sample
    normals     (N, 2)  unit right-hand normal (positive lateral = right of the path)
    s           (N,)    arc length of each sample from sample 0
    lat_left    (N,)    lateral position of the left road edge (negative)
    lat_right   (N,)    lateral position of the right road edge (positive)
    centre_lat  (N,)    lateral position of the painted centre line (0 unless the path is a lane)
    curvature   (N,)    signed curvature 1/radius, positive when the path turns right

Why a dense polyline: every query (projection, cte, progress) becomes a short local search over
segments that numba compiles to a few hundred nanoseconds, and the same arrays feed the renderer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numba as nb
import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial import cKDTree

log = logging.getLogger(__name__)

#: Window (in samples, each side) searched around the previous projection: 40 samples of 0.5 units
#: is 20 units, more than a car can travel in one 0.05 s control step.
PROJECT_WINDOW = 40


class TrackError(ValueError):
    """A track definition is invalid (self-intersecting, too short, bad widths...)."""


@dataclass(frozen=True, eq=False)
class Track:
    """A drivable track: a sampled path plus the road edges around it.

    Build one with :meth:`from_waypoints`; the constructor expects already-resampled arrays.
    """

    name: str
    points: np.ndarray
    lat_left: np.ndarray
    lat_right: np.ndarray
    centre_lat: np.ndarray
    closed: bool
    barriers: bool = False
    split: str = "train"
    description: str = ""
    #: Distance beyond a road edge at which a barrier (wall) stands, when ``barriers`` is set.
    barrier_margin: float = 0.6
    tangents: np.ndarray = field(init=False, repr=False)
    normals: np.ndarray = field(init=False, repr=False)
    s: np.ndarray = field(init=False, repr=False)
    curvature: np.ndarray = field(init=False, repr=False)
    length: float = field(init=False)

    def __post_init__(self) -> None:
        pts = np.ascontiguousarray(self.points, dtype=np.float64)
        n = len(pts)
        if pts.ndim != 2 or pts.shape[1] != 2 or n < 4:
            raise TrackError(f"track {self.name!r}: points must be (N>=4, 2), got {pts.shape}")
        if not np.all(np.isfinite(pts)):
            raise TrackError(f"track {self.name!r}: points contain NaN or inf")
        for attr in ("lat_left", "lat_right", "centre_lat"):
            arr = np.ascontiguousarray(np.broadcast_to(getattr(self, attr), (n,)), dtype=np.float64)
            object.__setattr__(self, attr, arr)
        if np.any(self.lat_left >= 0) or np.any(self.lat_right <= 0):
            raise TrackError(f"track {self.name!r}: the path must lie inside the road")
        nxt = np.roll(pts, -1, axis=0) if self.closed else np.vstack([pts[1:], 2 * pts[-1] - pts[-2]])
        seg = nxt - pts
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        if np.any(seg_len <= 1e-9):
            raise TrackError(f"track {self.name!r}: repeated consecutive points")
        tangents = seg / seg_len[:, None]
        # Tangent at a sample = mean of the adjacent segment directions (smoother normals).
        prev_t = np.roll(tangents, 1, axis=0) if self.closed else np.vstack([tangents[:1], tangents[:-1]])
        avg = tangents + prev_t
        avg /= np.maximum(np.hypot(avg[:, 0], avg[:, 1]), 1e-12)[:, None]
        normals = np.stack([avg[:, 1], -avg[:, 0]], axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg_len[:-1])])
        length = float(s[-1] + (seg_len[-1] if self.closed else 0.0))
        # Signed curvature from the turn between segment headings (positive = turning right).
        heading = np.arctan2(tangents[:, 0], tangents[:, 1])
        dpsi = np.angle(np.exp(1j * (np.roll(heading, -1) - heading)))
        curv = dpsi / seg_len
        if not self.closed:
            curv[-1] = curv[-2]
        curv = 0.5 * (curv + (np.roll(curv, 1) if self.closed else np.concatenate([[curv[0]], curv[:-1]])))
        for name, value in (("points", pts), ("tangents", avg), ("normals", normals), ("s", s),
                            ("curvature", curv), ("length", length)):
            object.__setattr__(self, name, value)
        for arr in (pts, avg, normals, s, curv, self.lat_left, self.lat_right, self.centre_lat):
            arr.setflags(write=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_waypoints(
        cls,
        name: str,
        waypoints: np.ndarray,
        half_width: float | np.ndarray,
        *,
        closed: bool,
        ds: float = 0.5,
        path_offset: float | np.ndarray = 0.0,
        check: bool = True,
        **kwargs: object,
    ) -> Track:
        """Fit a smooth cubic spline through ``waypoints`` and resample it every ``ds`` units.

        ``half_width`` is the road half-width (scalar or one per waypoint, interpolated along the
        track). ``path_offset`` moves the path sideways off the road centre (positive = right), e.g.
        ``half_width / 2`` puts the path in the middle of the right lane like the DonkeyCar
        generated road. With ``check`` the road must not overlap itself.
        """
        wp = np.asarray(waypoints, dtype=np.float64)
        if wp.ndim != 2 or wp.shape[1] != 2 or len(wp) < 3:
            raise TrackError(f"track {name!r}: need at least 3 waypoints of (x, z), got {wp.shape}")
        if closed and np.allclose(wp[0], wp[-1]):
            wp = wp[:-1]
        m = len(wp)
        hw = np.broadcast_to(np.asarray(half_width, dtype=np.float64), (m,)).copy()
        off = np.broadcast_to(np.asarray(path_offset, dtype=np.float64), (m,)).copy()
        if np.any(hw <= 0) or not np.all(np.isfinite(hw)):
            raise TrackError(f"track {name!r}: half_width must be positive, got {half_width!r}")
        if closed:
            wp_c = np.vstack([wp, wp[:1]])
            hw_c, off_c = np.append(hw, hw[0]), np.append(off, off[0])
        else:
            wp_c, hw_c, off_c = wp, hw, off
        chord = np.hypot(*np.diff(wp_c, axis=0).T)
        if np.any(chord <= 1e-9):
            raise TrackError(f"track {name!r}: repeated waypoints")
        u = np.concatenate([[0.0], np.cumsum(chord)])
        bc = "periodic" if closed else "not-a-knot"
        spline = CubicSpline(u, wp_c, bc_type=bc)
        # Resample uniformly in arc length: dense evaluation, then invert the cumulative length.
        uu = np.linspace(0.0, u[-1], max(200, int(u[-1] / ds * 8)))
        dense = spline(uu)
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(dense, axis=0).T))])
        n = max(8, int(round(arc[-1] / ds)))
        targets = np.linspace(0.0, arc[-1], n, endpoint=not closed)
        u_at = np.interp(targets, arc, uu)
        centre = spline(u_at)
        hw_s = np.interp(u_at, u, hw_c)
        off_s = np.interp(u_at, u, off_c)
        # Road centre is `centre`; the path is displaced by `off` along the right normal.
        tmp = cls(name=name + ":centre", points=centre, lat_left=-hw_s, lat_right=hw_s,
                  centre_lat=0.0, closed=closed)
        path = centre + tmp.normals * off_s[:, None]
        track = cls(name=name, points=path, lat_left=-hw_s - off_s, lat_right=hw_s - off_s,
                    centre_lat=-off_s, closed=closed, **kwargs)  # type: ignore[arg-type]
        if check:
            track.validate()
        return track

    def validate(self) -> None:
        """Refuse roads that overlap themselves or bend tighter than their own width.

        Two samples far apart along the track must be further apart in space than the two road
        half-widths plus any barrier margin; otherwise the road would cross or touch itself.
        """
        reach = float(np.max(np.maximum(-self.lat_left, self.lat_right)))
        margin = 2 * reach + 2 * (self.barrier_margin if self.barriers else 0.3)
        tree = cKDTree(self.points)
        pairs = tree.query_pairs(r=margin, output_type="ndarray")
        if len(pairs):
            gap = np.abs(self.s[pairs[:, 0]] - self.s[pairs[:, 1]])
            if self.closed:
                gap = np.minimum(gap, self.length - gap)
            bad = gap > np.pi * margin
            if np.any(bad):
                i, j = pairs[np.argmax(bad)]
                raise TrackError(
                    f"track {self.name!r} overlaps itself near s={self.s[i]:.1f} and s={self.s[j]:.1f}")
        if np.any(np.abs(self.curvature) * reach > 0.95):
            i = int(np.argmax(np.abs(self.curvature)))
            raise TrackError(f"track {self.name!r}: a bend at s={self.s[i]:.1f} has radius "
                             f"{1 / abs(self.curvature[i]):.2f}, tighter than the road half-width {reach:.2f}")

    # ------------------------------------------------------------------ queries
    @property
    def n(self) -> int:
        """Number of path samples."""
        return len(self.points)

    @property
    def half_width(self) -> float:
        """Mean road half-width (for listings)."""
        return float(np.mean(self.lat_right - self.lat_left) / 2)

    def start_pose(self) -> tuple[float, float, float]:
        """(x, z, yaw) of the start: on the path at sample 0, facing along it."""
        tx, tz = self.tangents[0]
        return float(self.points[0, 0]), float(self.points[0, 1]), float(np.arctan2(tx, tz))

    def project(self, x: float, z: float, hint: int = -1) -> Projection:
        """Project a ground point onto the path (exact nearest point on the polyline).

        ``hint`` is the previous sample index; -1 searches the whole track.
        """
        idx, t, lat, s_at = project_point(self.points, self.tangents, self.s, self.length,
                                          self.closed, float(x), float(z), int(hint), PROJECT_WINDOW)
        # Interpolate the sample tangents along the segment: the tangent at sample idx alone is off
        # by up to ds x curvature (4 degrees on a radius-7 bend) in the middle of the segment.
        nxt = (idx + 1) % self.n if self.closed else min(idx + 1, self.n - 1)
        tan = (1.0 - t) * self.tangents[idx] + t * self.tangents[nxt]
        heading = float(np.arctan2(tan[0], tan[1]))
        return Projection(index=int(idx), s=float(s_at), lateral=float(lat), heading=heading)

    def heading_error(self, x: float, z: float, yaw: float, hint: int = -1) -> float:
        """Car yaw minus path heading, wrapped to [-pi, pi] (positive = pointing right of the path)."""
        p = self.project(x, z, hint)
        return float(np.angle(np.exp(1j * (yaw - p.heading))))

    def curvature_ahead(self, s_at: float, distances: np.ndarray | list[float]) -> np.ndarray:
        """Signed path curvature at ``distances`` ahead of arc length ``s_at`` (wraps if closed)."""
        q = s_at + np.asarray(distances, dtype=np.float64)
        q = np.mod(q, self.length) if self.closed else np.clip(q, 0.0, self.s[-1])
        return np.interp(q, self.s, self.curvature)

    def point_at(self, s_at: float) -> np.ndarray:
        """Path point at arc length ``s_at`` (wraps if closed)."""
        q = s_at % self.length if self.closed else min(max(s_at, 0.0), float(self.s[-1]))
        return np.array([np.interp(q, self.s, self.points[:, 0]), np.interp(q, self.s, self.points[:, 1])])

    def edges_at(self, index: int) -> tuple[float, float]:
        """(left, right) lateral road edge positions at sample ``index``."""
        return float(self.lat_left[index]), float(self.lat_right[index])


@dataclass(frozen=True)
class Projection:
    """Result of projecting a point onto the path."""

    index: int       #: sample index of the segment start
    s: float         #: arc length of the projected point from sample 0
    lateral: float   #: signed distance from the path, positive = right (this is the cte)
    heading: float   #: path heading (yaw convention) at the projected point


@nb.njit(cache=True, fastmath=False)
def project_point(points, tangents, s, length, closed, x, z, hint, window):  # pragma: no cover - jitted
    """Nearest point on the polyline to (x, z). Returns (index, t, lateral, s_at).

    Searches ``window`` samples each side of ``hint`` (or everything when hint < 0). The lateral
    sign comes from the segment direction: positive when the point is right of travel.
    """
    n = points.shape[0]
    nseg = n if closed else n - 1
    if hint < 0 or 2 * window + 1 >= nseg:
        lo, cnt = 0, nseg
    else:
        lo, cnt = hint - window, 2 * window + 1
    best_d2 = 1e300
    best_i, best_t, best_lat = 0, 0.0, 0.0
    for k in range(cnt):
        i = lo + k
        if closed:
            i = i % n
        elif i < 0 or i >= nseg:
            continue
        j = i + 1
        if j == n:
            j = 0
        ax, az = points[i, 0], points[i, 1]
        dx, dz = points[j, 0] - ax, points[j, 1] - az
        l2 = dx * dx + dz * dz
        t = ((x - ax) * dx + (z - az) * dz) / l2
        if t < 0.0:
            t = 0.0
        elif t > 1.0:
            t = 1.0
        px, pz = ax + t * dx - x, az + t * dz - z
        d2 = px * px + pz * pz
        if d2 < best_d2:
            best_d2 = d2
            best_i, best_t = i, t
            # right of travel: cross((dx, dz), (p - a)) with right normal (dz, -dx)
            best_lat = ((x - ax) * dz - (z - az) * dx) / np.sqrt(l2)
    j = best_i + 1
    seg_len = (length - s[best_i]) if j == n else (s[j] - s[best_i])
    return best_i, best_t, best_lat, s[best_i] + best_t * seg_len
