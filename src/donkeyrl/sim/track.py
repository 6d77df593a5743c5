"""Track geometry: a path, the road around it, its paint, its height and its scenery.

Coordinates follow the DonkeyCar (Unity) simulator seen from above: the ground plane is (x, z),
x to the right and z forward when yaw = 0; yaw turns clockwise seen from above, so the car's
forward vector is (sin yaw, cos yaw) and its right vector is (cos yaw, -sin yaw). All lengths are
simulator units (1 telemetry unit = 8 simulator units). Height is y (up).

Notation (N = number of path samples, spaced about ``ds`` apart):
    points      (N, 2)  path (the line cte is measured from) in (x, z)
    tangents    (N, 2)  unit direction of travel at each sample
    normals     (N, 2)  unit right-hand normal (positive lateral = right of the path)
    s           (N,)    arc length of each sample from sample 0
    lat_left    (N,)    lateral position of the left road edge (negative)
    lat_right   (N,)    lateral position of the right road edge (positive)
    centre_lat  (N,)    lateral position of the road centre (0 unless the path is a lane)
    curvature   (N,)    signed curvature 1/radius, positive when the path turns right
    heights     (N,)    height y of the road at the path (the ground is level across the road)
    grade       (N,)    dy/ds, the slope along the path

The road model of the DonkeyCar simulator's built roads (its ``RoadBuilder``): a road of
half-width W whose centre lies o units LEFT of the path, so the path is the centre of the right
lane (W = 5, o = 2 on generated_track: edges at -7 and +3, white lines at -6 and +2, the yellow
centre line at -2). :class:`Marking` describes the paint relative to the edges, the road centre or
the path; :class:`Wall` the walls, fences and barriers along the road (the car hits ``solid``
ones); ``cones`` the cones as plain (x, z, radius, height) rows. :meth:`Track.scene_objects` gives
all vertical objects as plain arrays (for a lidar).

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
#: Lateral offsets are anchored to one of these (see :class:`Marking` and :class:`Wall`).
ANCHORS = ("left", "right", "centre", "path")
#: Paint kinds; the renderer's look (:class:`~donkeyrl.sim.appearance.Appearance`) colours them.
MARKING_KINDS = ("edge", "centre", "accent")
#: Wall styles the renderer knows: a plain wall, a striped barrier, a low kerb-like barrier.
WALL_STYLES = ("wall", "barrier")
#: Start-line decals the renderer knows.
START_LINES = ("none", "checkered", "dashed")


class TrackError(ValueError):
    """A track definition is invalid (self-intersecting, too short, bad widths...)."""


@dataclass(frozen=True)
class Marking:
    """A painted line along the whole road.

    Its centre lies ``offset`` units right of ``anchor`` (``left``/``right`` road edge, road
    ``centre`` or the ``path``). ``dash`` > 0 paints ``dash`` units out of every ``period``.
    """

    anchor: str
    offset: float
    kind: str = "edge"
    width: float = 0.25
    dash: float = 0.0
    period: float = 0.0

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise TrackError(f"Marking.anchor must be one of {ANCHORS}, got {self.anchor!r}")
        if self.kind not in MARKING_KINDS:
            raise TrackError(f"Marking.kind must be one of {MARKING_KINDS}, got {self.kind!r}")
        if not self.width > 0 or self.dash < 0 or (self.dash > 0 and not self.period > self.dash):
            raise TrackError(f"Marking needs width > 0 and 0 < dash < period when dashed, got {self}")


@dataclass(frozen=True)
class Wall:
    """A vertical object along the whole road on one ``side``, ``offset`` right of ``anchor``.

    ``height``: top of the wall (units above the road); ``fence_height`` > height adds a see-through
    chain-link fence on poles above it. ``solid`` walls stop the car and report a hit.
    """

    side: str
    anchor: str
    offset: float
    height: float = 1.0
    fence_height: float = 0.0
    style: str = "wall"
    solid: bool = True

    def __post_init__(self) -> None:
        if self.side not in ("left", "right"):
            raise TrackError(f"Wall.side must be 'left' or 'right', got {self.side!r}")
        if self.anchor not in ANCHORS or self.style not in WALL_STYLES:
            raise TrackError(f"Wall.anchor must be one of {ANCHORS} and style one of {WALL_STYLES}: {self}")
        if not self.height > 0 or self.fence_height < 0:
            raise TrackError(f"Wall.height must be > 0 and fence_height >= 0, got {self}")


def two_lane_markings(half_width: float, *, centre_dash: tuple[float, float] | None = None,
                      centre_kind: str = "centre") -> tuple[Marking, ...]:
    """The DonkeyCar road texture's paint: white lines at 0.8 W from the road centre (0.2 W
    inside each edge), a centre line, each 0.05 W wide (0.25 units when W = 5)."""
    w = 0.05 * half_width
    dash, period = centre_dash or (0.0, 0.0)
    return (Marking("left", 0.2 * half_width, "edge", w),
            Marking("centre", 0.0, centre_kind, w, dash, period),
            Marking("right", -0.2 * half_width, "edge", w))


def single_lane_markings(*, dashed_centre: bool = True, line_width: float = 0.25,
                         edge_kind: str = "edge") -> tuple[Marking, ...]:
    """A tape track: lines on both edges and, optionally, a dashed centre line on the path."""
    out = [Marking("left", line_width / 2, edge_kind, line_width),
           Marking("right", -line_width / 2, edge_kind, line_width)]
    if dashed_centre:
        out.insert(1, Marking("path", 0.0, "centre", line_width * 0.8, 1.0, 2.0))
    return tuple(out)


def _empty_cones() -> np.ndarray:
    return np.zeros((0, 4))


@dataclass(frozen=True, eq=False)
class Track:
    """A drivable track: a sampled path plus the road, paint, heights and scenery around it.

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
    #: Road height y at each sample (scalar = flat).
    heights: np.ndarray | float = 0.0
    #: Paint; None = the two-lane DonkeyCar paint of the road's mean half-width.
    markings: tuple[Marking, ...] | None = None
    #: Walls along the road besides the ``barriers`` (which become solid walls automatically).
    walls: tuple[Wall, ...] = ()
    #: Cones: (K, 4) rows of x, z, base radius, height. Cones are solid (a hit).
    cones: np.ndarray = field(default_factory=_empty_cones)
    #: Start-line decal: "none", "checkered" or "dashed", painted from arc length ``start_line_s``
    #: on (the lap line itself is always s = 0; the real scenes paint theirs a little off it).
    start_line: str = "none"
    start_line_s: float = 0.0
    #: Lateral offset of the car's spawn point (the real simulator spawns some cars off the path).
    start_lateral: float = 0.0
    #: Lateral offset of the lane a driver keeps to (e.g. the right lane when the path is not in it).
    drive_lateral: float = 0.0
    #: Name of the scene look (a preset in :mod:`donkeyrl.sim.appearance`).
    scene: str = "default"
    tangents: np.ndarray = field(init=False, repr=False)
    normals: np.ndarray = field(init=False, repr=False)
    s: np.ndarray = field(init=False, repr=False)
    curvature: np.ndarray = field(init=False, repr=False)
    grade: np.ndarray = field(init=False, repr=False)
    length: float = field(init=False)

    def __post_init__(self) -> None:
        pts = np.ascontiguousarray(self.points, dtype=np.float64)
        n = len(pts)
        if pts.ndim != 2 or pts.shape[1] != 2 or n < 4:
            raise TrackError(f"track {self.name!r}: points must be (N>=4, 2), got {pts.shape}")
        if not np.all(np.isfinite(pts)):
            raise TrackError(f"track {self.name!r}: points contain NaN or inf")
        for attr in ("lat_left", "lat_right", "centre_lat", "heights"):
            arr = np.ascontiguousarray(np.broadcast_to(getattr(self, attr), (n,)), dtype=np.float64)
            object.__setattr__(self, attr, arr)
        if np.any(self.lat_left >= 0) or np.any(self.lat_right <= 0):
            raise TrackError(f"track {self.name!r}: the path must lie inside the road")
        if self.start_line not in START_LINES:
            raise TrackError(f"track {self.name!r}: start_line must be one of {START_LINES}")
        cones = np.ascontiguousarray(np.asarray(self.cones, dtype=np.float64).reshape(-1, 4))
        object.__setattr__(self, "cones", cones)
        if self.markings is None:
            object.__setattr__(self, "markings", two_lane_markings(float(np.mean(self.lat_right - self.lat_left)) / 2))
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
        h = self.heights
        dh = (np.roll(h, -1) - h) if self.closed else np.append(np.diff(h), 0.0)
        grade = dh / seg_len
        grade = 0.5 * (grade + (np.roll(grade, 1) if self.closed else np.concatenate([[grade[0]], grade[:-1]])))
        for name, value in (("points", pts), ("tangents", avg), ("normals", normals), ("s", s),
                            ("curvature", curv), ("grade", grade), ("length", length)):
            object.__setattr__(self, name, value)
        for arr in (pts, avg, normals, s, curv, grade, cones, self.lat_left, self.lat_right,
                    self.centre_lat, np.asarray(self.heights)):
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
        heights: float | np.ndarray = 0.0,
        waypoints_are: str = "centre",
        check: bool = True,
        **kwargs: object,
    ) -> Track:
        """Fit a smooth cubic spline through ``waypoints`` and resample it every ``ds`` units.

        ``half_width`` is the road half-width (scalar or one per waypoint, interpolated along the
        track). ``path_offset`` moves the path sideways off the road centre (positive = right), e.g.
        2 with a half-width of 5 is the DonkeyCar road model (path = right-lane centre).
        ``heights`` gives the road height (scalar or one per waypoint). ``waypoints_are`` says which
        line the waypoints trace: the road ``centre`` (the path is then displaced) or the ``path``
        itself (the road is then laid around it). With ``check`` the road must not overlap itself.
        """
        if waypoints_are not in ("centre", "path"):
            raise TrackError(f"waypoints_are must be 'centre' or 'path', got {waypoints_are!r}")
        wp = np.asarray(waypoints, dtype=np.float64)
        if wp.ndim != 2 or wp.shape[1] != 2 or len(wp) < 3:
            raise TrackError(f"track {name!r}: need at least 3 waypoints of (x, z), got {wp.shape}")
        m = len(wp)
        hw = np.broadcast_to(np.asarray(half_width, dtype=np.float64), (m,)).copy()
        off = np.broadcast_to(np.asarray(path_offset, dtype=np.float64), (m,)).copy()
        hy = np.broadcast_to(np.asarray(heights, dtype=np.float64), (m,)).copy()
        if closed and np.allclose(wp[0], wp[-1]):
            wp, hw, off, hy = wp[:-1], hw[:-1], off[:-1], hy[:-1]
        if np.any(hw <= 0) or not np.all(np.isfinite(hw)):
            raise TrackError(f"track {name!r}: half_width must be positive, got {half_width!r}")
        if closed:
            wp_c = np.vstack([wp, wp[:1]])
            hw_c, off_c, hy_c = np.append(hw, hw[0]), np.append(off, off[0]), np.append(hy, hy[0])
        else:
            wp_c, hw_c, off_c, hy_c = wp, hw, off, hy
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
        hy_s = np.interp(u_at, u, hy_c)
        if waypoints_are == "path" or np.all(off_s == 0.0):
            path = centre
        else:  # the spline is the road centre; the path is displaced by `off` along the right normal
            tmp = cls(name=name + ":centre", points=centre, lat_left=-hw_s, lat_right=hw_s,
                      centre_lat=np.zeros(len(centre)), closed=closed)
            path = centre + tmp.normals * off_s[:, None]
        track = cls(name=name, points=path, lat_left=-hw_s - off_s, lat_right=hw_s - off_s,
                    centre_lat=-off_s, closed=closed, heights=hy_s, **kwargs)  # type: ignore[arg-type]
        if check:
            track.validate()
        return track

    def validate(self) -> None:
        """Refuse roads that overlap themselves or bend tighter than their inside edge.

        Two samples far apart along the track must be further apart in space than the two road
        reaches plus any barrier margin; otherwise the road would cross or touch itself. A bend
        must be wider than the road's reach on its inside (the right edge on right-hand bends).
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
        inside = np.where(self.curvature > 0, self.lat_right, -self.lat_left)
        if np.any(np.abs(self.curvature) * inside > 0.95):
            i = int(np.argmax(np.abs(self.curvature) * inside))
            raise TrackError(f"track {self.name!r}: a bend at s={self.s[i]:.1f} has radius "
                             f"{1 / abs(self.curvature[i]):.2f}, tighter than the road's inside reach "
                             f"{inside[i]:.2f}")

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

    def height_at(self, s_at: float) -> float:
        """Road height y at arc length ``s_at`` (wraps if closed)."""
        h = np.asarray(self.heights)
        if self.closed:
            return float(np.interp(s_at % self.length, np.append(self.s, self.length), np.append(h, h[0])))
        return float(np.interp(s_at, self.s, h))

    def edges_at(self, index: int) -> tuple[float, float]:
        """(left, right) lateral road edge positions at sample ``index``."""
        return float(self.lat_left[index]), float(self.lat_right[index])

    # ------------------------------------------------------------------ paint and scenery
    def anchor_lat(self, anchor: str) -> np.ndarray:
        """Lateral position (N,) of an anchor: a road edge, the road centre or the path (0)."""
        if anchor == "left":
            return self.lat_left
        if anchor == "right":
            return self.lat_right
        if anchor == "centre":
            return self.centre_lat
        if anchor == "path":
            return np.zeros(self.n)
        raise TrackError(f"unknown anchor {anchor!r}; valid: {ANCHORS}")

    @property
    def all_walls(self) -> tuple[Wall, ...]:
        """Every wall: the explicit ones plus, with ``barriers``, solid barriers on both sides."""
        if not self.barriers:
            return self.walls
        sides = {w.side for w in self.walls if w.solid}
        extra = tuple(Wall(side, side, (-1 if side == "left" else 1) * self.barrier_margin, 0.8,
                           style="barrier") for side in ("left", "right") if side not in sides)
        return self.walls + extra

    def wall_lateral(self, wall: Wall) -> np.ndarray:
        """Lateral position (N,) of a wall's face."""
        return self.anchor_lat(wall.anchor) + wall.offset

    def solid_wall_lats(self) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) lateral positions (N,) of the innermost solid wall on each side
        (-inf / +inf where there is none): where the car's side is stopped."""
        left = np.full(self.n, -np.inf)
        right = np.full(self.n, np.inf)
        for w in self.all_walls:
            if not w.solid:
                continue
            lat = self.wall_lateral(w)
            if w.side == "left":
                left = np.maximum(left, lat)
            else:
                right = np.minimum(right, lat)
        return left, right

    def scene_objects(self) -> SceneObjects:
        """Every vertical object of the scene as plain arrays (e.g. for a lidar)."""
        segs, heights, solid = [], [], []
        for w in self.all_walls:
            lat = self.wall_lateral(w)
            pts = self.points + self.normals * lat[:, None]
            nxt = np.roll(pts, -1, axis=0) if self.closed else pts[1:]
            a = pts if self.closed else pts[:-1]
            segs.append(np.concatenate([a, nxt], axis=1))
            top = max(w.height, w.fence_height)
            heights.append(np.full(len(a), top))
            solid.append(np.full(len(a), w.solid))
        if segs:
            seg_arr = np.concatenate(segs)
            h_arr = np.concatenate(heights)
            s_arr = np.concatenate(solid)
        else:
            seg_arr, h_arr, s_arr = np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=bool)
        return SceneObjects(wall_segments=seg_arr, wall_heights=h_arr, wall_solid=s_arr, cones=self.cones.copy())


@dataclass(frozen=True)
class SceneObjects:
    """Vertical objects of a scene as plain arrays (simulator units, ground plane (x, z)).

    wall_segments  (M, 4)  x0, z0, x1, z1 of each straight wall piece (walls follow the road)
    wall_heights   (M,)    height of each piece's top above the road (fence included)
    wall_solid     (M,)    True where the car is stopped (a hit), False for see-through scenery
    cones          (K, 4)  x, z, base radius, height of each cone
    """

    wall_segments: np.ndarray
    wall_heights: np.ndarray
    wall_solid: np.ndarray
    cones: np.ndarray


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
