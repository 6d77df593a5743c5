"""Track shape generators: hand-designed layouts from turtle segments, the DonkeyCar-style random
open road, and the procedural closed-track generator.

Why turtle segments: a race track is straights and constant-radius arcs. Describing a layout as
``S(40), R(12, 90), ...`` makes every bend radius explicit (so drivability is guaranteed by design:
no radius below :data:`MIN_RADIUS`), and integrating a curvature profile makes closing a loop an
exact, tiny linear problem instead of fiddling with coordinates. The curvature profile is smoothed
with a Gaussian before integration, which turns each straight/arc junction into an easement
(clothoid-like): the steering a driver needs changes gradually, never in a step.

Notation (M = number of profile samples, spaced ``STEP`` apart along the path):
    kappa   (M,)    signed curvature, positive = turning right (yaw increases clockwise)
    psi     (M,)    heading in the yaw convention, forward = (sin psi, cos psi)
    xy      (M, 2)  positions (x, z)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from donkeyrl.sim.track import Marking, Track, TrackError, single_lane_markings, two_lane_markings

log = logging.getLogger(__name__)

#: Smallest bend radius (simulator units) allowed anywhere on a path. The car (wheelbase 1.6,
#: steering limit 16 degrees) turns no tighter than 1.6 / tan(16 deg) = 5.58 units; 7 leaves margin.
MIN_RADIUS = 7.0
#: Spacing (simulator units) of the integrated curvature profile.
STEP = 0.25
#: Spacing (simulator units) of the waypoints handed to the spline fit.
WAYPOINT_SPACING = 2.0


# ---------------------------------------------------------------------------------------- turtle
@dataclass(frozen=True)
class Seg:
    """One piece of a layout: a straight (``radius`` = inf) or an arc turning ``degrees``."""

    length: float  #: arc length in simulator units
    curvature: float  #: signed 1/radius, positive = right turn, 0 = straight


def S(length: float) -> Seg:
    """A straight of ``length`` units."""
    return Seg(float(length), 0.0)


def R(radius: float, degrees: float) -> Seg:
    """A right-hand arc of ``radius`` units turning ``degrees``."""
    return Seg(float(radius) * np.radians(degrees), 1.0 / float(radius))


def L(radius: float, degrees: float) -> Seg:
    """A left-hand arc of ``radius`` units turning ``degrees``."""
    return Seg(float(radius) * np.radians(degrees), -1.0 / float(radius))


def _straight_dirs(segs: Sequence[Seg]) -> list[tuple[int, np.ndarray]]:
    """(index, unit direction) of every straight in a layout starting at heading 0."""
    psi, out = 0.0, []
    for i, sg in enumerate(segs):
        if sg.curvature == 0.0:
            out.append((i, np.array([np.sin(psi), np.cos(psi)])))
        psi += sg.curvature * sg.length
    return out


def _adjust_straights(segs: list[Seg], gap: np.ndarray, min_len: float = 3.0) -> list[Seg]:
    """Change straight lengths (smallest least-squares change, none shorter than ``min_len``) so
    the end point moves by ``-gap``. The end point is linear in the straight lengths, so this is a
    2x2 solve, repeated while a straight would get too short (it is then pinned at ``min_len``)."""
    dirs = _straight_dirs(segs)
    delta = {i: 0.0 for i, _ in dirs}
    free = dict(dirs)
    need = -np.asarray(gap, dtype=np.float64)
    while len(free) >= 2:
        a = np.stack(list(free.values()), axis=1)  # (2, k)
        gram = a @ a.T
        if np.linalg.cond(gram) > 1e8:
            break
        step = a.T @ np.linalg.solve(gram, need)
        too_short = [i for i, d in zip(free, step) if segs[i].length + d < min_len]
        if not too_short:
            for i, d in zip(free, step):
                delta[i] = float(d)
            break
        for i in too_short:
            delta[i] = min_len - segs[i].length
            need = need - delta[i] * free.pop(i)
    return [Seg(sg.length + delta.get(i, 0.0), sg.curvature) for i, sg in enumerate(segs)]


def _integrate(segs: Sequence[Seg], closed: bool, smooth: float, start: tuple[float, float, float]
               ) -> np.ndarray:
    """Dense (M+1, 2) positions of a layout, curvature smoothed by a Gaussian of sigma ``smooth``."""
    kappa = np.concatenate([np.full(max(1, int(round(sg.length / STEP))), sg.curvature) for sg in segs])
    sigma = smooth / STEP
    if sigma > 0:
        kappa = gaussian_filter1d(kappa, sigma, mode="wrap" if closed else "nearest")
    if closed:  # keep the total turn exactly +-2*pi after rounding segment lengths to STEP
        kappa *= 2 * np.pi * np.sign(kappa.sum()) / (kappa.sum() * STEP)
    x0, z0, psi0 = start
    psi = psi0 + np.concatenate([[0.0], np.cumsum(kappa[:-1] * STEP)])
    xy = np.stack([np.sin(psi), np.cos(psi)], axis=1) * STEP
    return np.vstack([[0.0, 0.0], np.cumsum(xy, axis=0)]) + np.array([x0, z0])


def turtle_path(segs: Sequence[Seg], *, closed: bool, smooth: float = 3.0,
                start: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Integrate a segment layout into dense (M, 2) positions spaced :data:`STEP` apart.

    ``smooth`` is the Gaussian easement length (sigma, simulator units). For closed layouts the
    total turn is snapped to exactly +-360 degrees (by scaling the arcs' angles), the straights are
    lengthened or shortened to close the loop, and any tiny remaining gap is spread along the path.
    """
    segs = list(segs)
    if not closed:
        return _integrate(segs, False, smooth, start)
    turn = sum(sg.curvature * sg.length for sg in segs)
    target = 2 * np.pi * np.sign(turn)
    if abs(turn - target) > np.radians(20):
        raise TrackError(f"closed layout turns {np.degrees(turn):.1f} degrees, not +-360")
    segs = [Seg(sg.length * target / turn, sg.curvature) if sg.curvature else sg for sg in segs]
    for _ in range(4):
        xy = _integrate(segs, True, smooth, (0.0, 0.0, 0.0))
        gap = xy[-1] - xy[0]
        if np.hypot(*gap) < 1e-3:
            break
        segs = _adjust_straights(segs, gap)
    xy = _integrate(segs, True, smooth, start)
    gap = xy[-1] - xy[0]
    total = len(xy) - 1
    if np.hypot(*gap) > 0.01 * total * STEP:
        log.warning("layout closes with a gap of %.2f over %.1f units", np.hypot(*gap), total * STEP)
    xy = xy - gap[None, :] * (np.arange(len(xy)) / total)[:, None]
    return xy[:-1]


def waypoints_from_dense(xy: np.ndarray, spacing: float = WAYPOINT_SPACING) -> np.ndarray:
    """Subsample a dense path to spline waypoints ``spacing`` units apart (keeps both ends)."""
    k = max(1, int(round(spacing / STEP)))
    wp = xy[::k]
    if (len(xy) - 1) % k:
        wp = np.vstack([wp, xy[-1:]])
    return wp


def profile(fracs: Sequence[float], values: Sequence[float], n: int) -> np.ndarray:
    """Piecewise-linear profile (e.g. half-width) at ``n`` evenly spaced fractions of the track."""
    return np.interp(np.linspace(0.0, 1.0, n, endpoint=False), fracs, values)


#: Road model of the DonkeyCar simulator's built roads: the road centre lies this fraction of the
#: half-width W left of the path (o = 2 for W = 5), so the path is the centre of the right lane.
LANE_OFFSET = 0.4


def road_layout(half_width: float | np.ndarray, lanes: int) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(half-width, path offset) of a road of half-width W: two lanes with the path on the right
    lane's centre (offset 0.4 W), or one lane with the path on the centre (a tape track)."""
    if lanes not in (1, 2):
        raise TrackError(f"lanes must be 1 or 2, got {lanes!r}")
    hw = np.asarray(half_width, dtype=np.float64)
    return half_width, (LANE_OFFSET * hw if lanes == 2 else 0.0 * hw)


def lane_markings(half_width: float, lanes: int, *, dashed: bool = False) -> tuple[Marking, ...]:
    """Paint of a road built by :func:`road_layout`: the DonkeyCar road texture for two lanes
    (white sides at 0.8 W, solid or dashed yellow centre), tape lines for one."""
    if lanes == 2:
        return two_lane_markings(half_width, centre_dash=(4.5, 10.0) if dashed else None)
    return single_lane_markings(dashed_centre=dashed)


def layout_track(name: str, segs: Sequence[Seg], *, half_width: float | Callable[[int], np.ndarray],
                 closed: bool = True, smooth: float = 3.0, mirror: bool = False,
                 target_length: float | None = None, lanes: int = 2, dashed: bool = False,
                 **kwargs: object) -> Track:
    """Build a validated :class:`Track` from a turtle layout.

    ``half_width`` is the road half-width W, a scalar or a function mapping the number of
    waypoints to an array of half-widths (see :func:`profile`). ``lanes`` = 2 lays a two-lane road
    with the path on the right lane's centre (the DonkeyCar road model), 1 a single lane centred on
    the path. ``mirror`` swaps left and right turns (a clockwise layout becomes anticlockwise).
    ``target_length`` scales the whole layout (radii included, widths not) to that path length.
    The layout is the path; the road is laid around it.
    """
    segs = [Seg(sg.length, -sg.curvature) for sg in segs] if mirror else list(segs)
    xy = turtle_path(segs, closed=closed, smooth=smooth)
    if target_length is not None:
        k = target_length / (len(xy) * STEP)
        segs = [Seg(sg.length * k, sg.curvature / k) for sg in segs]
        xy = turtle_path(segs, closed=closed, smooth=smooth * k)
    wp = waypoints_from_dense(xy)
    hw = half_width(len(wp)) if callable(half_width) else half_width
    hw, off = road_layout(hw, lanes)
    kwargs.setdefault("markings", lane_markings(float(np.mean(hw)), lanes, dashed=dashed))
    return Track.from_waypoints(name, wp, hw, closed=closed, path_offset=off, waypoints_are="path",
                                **kwargs)  # type: ignore[arg-type]


def min_radius(track: Track) -> float:
    """Tightest bend radius on the path (simulator units; inf for a straight line)."""
    k = float(np.max(np.abs(track.curvature)))
    return np.inf if k == 0 else 1.0 / k


# ------------------------------------------------------------------------------ generated road
#: (W, o) per ``regen_road`` road style k (used as k % 5): road half-width W and the road centre's
#: offset o to the left of the path (the DonkeyCar simulator's TcpCarHandler / RoadBuilder).
ROAD_STYLES: tuple[tuple[float, float], ...] = ((5.0, 2.0), (12.0, 6.0), (10.0, 6.0), (10.0, 6.0), (12.0, 4.5))
#: The road offset of generated_road as the scene loads (before any regen_road).
LOAD_ROAD_OFFSET = 2.2
#: Start of the generated road (the scene's startPos; the path's y is 0.5).
ROAD_START = (50.016, 0.5, 49.97)
#: The look-ahead of the simulator's anti-crossing rule: if the point this far ahead (units) is
#: within ROAD_AVOID units of any earlier node, the turn rate reverses and halves.
ROAD_LOOKAHEAD = 100.0
ROAD_AVOID = 90.0


def random_road_nodes(rng: np.random.Generator, *, nodes: int = 1000, node_spacing: float = 2.0,
                      turn_increment: float = 1.0,
                      start: tuple[float, float, float] = ROAD_START) -> np.ndarray:
    """Nodes (nodes, 3) of a random road, built like the simulator's ``MakeRandomPath``.

    From ``start`` heading +z, per node: lay the node; ``turn`` += uniform(-turn_increment,
    +turn_increment) degrees and the heading turns by ``turn`` (a random walk of the curvature);
    if the point 100 units ahead would be within 90 units of a laid node, ``turn`` *= -0.5;
    advance ``node_spacing``. The simulator draws from Unity's RNG; this draws from ``rng``, so
    the same seed gives the same road here but not the simulator's road.
    """
    pts = np.empty((nodes, 3))
    x, z = start[0], start[2]
    heading = turn = 0.0
    for i in range(nodes):
        pts[i] = (x, start[1], z)
        turn += rng.uniform(-turn_increment, turn_increment)
        h = heading + np.radians(turn)
        ax, az = x + ROAD_LOOKAHEAD * np.sin(h), z + ROAD_LOOKAHEAD * np.cos(h)
        d2 = (pts[: i + 1, 0] - ax) ** 2 + (pts[: i + 1, 2] - az) ** 2
        if d2.min() < ROAD_AVOID**2:
            turn *= -0.5
            h = heading + np.radians(turn)
        heading = h
        x += node_spacing * np.sin(heading)
        z += node_spacing * np.cos(heading)
    return pts


def generated_road(seed: int, *, road_style: int = 0, turn_increment: float = 1.0, nodes: int = 1000,
                   node_spacing: float = 2.0, road_offset: float | None = None,
                   name: str = "generated_road", **kwargs: object) -> Track:
    """The DonkeyCar generated road for ``seed``: :func:`random_road_nodes` with the road of
    ``road_style`` (see :data:`ROAD_STYLES`; even styles: asphalt with a solid yellow centre line,
    odd styles: dark road with a dashed yellow one), exactly what ``regen_road`` builds.

    ``turn_increment`` 0 keeps the default of 1 degree (as the simulator does); ``road_offset``
    overrides the style's o (the scene loads with 2.2). An open road of ``nodes`` x
    ``node_spacing`` units.
    """
    if isinstance(road_style, bool) or not isinstance(road_style, (int, np.integer)) or road_style < 0:
        raise TrackError(f"road_style must be a non-negative integer, got {road_style!r}")
    if not np.isfinite(turn_increment) or turn_increment < 0:
        raise TrackError(f"turn_increment must be a finite number >= 0, got {turn_increment!r}")
    w, o = ROAD_STYLES[int(road_style) % len(ROAD_STYLES)]
    if road_offset is not None:
        o = float(road_offset)
    rng = np.random.default_rng(seed)
    pts = random_road_nodes(rng, nodes=nodes, node_spacing=node_spacing,
                            turn_increment=turn_increment if turn_increment > 0 else 1.0)
    dark = int(road_style) % 2 == 1
    kwargs.setdefault("markings", two_lane_markings(w, centre_dash=(4.5, 10.0) if dark else None))
    kwargs.setdefault("scene", "generated_road_dark" if dark else "generated_road")
    return Track.from_waypoints(name, pts[:, [0, 2]], w, closed=False, path_offset=o, heights=pts[:, 1],
                                waypoints_are="path", check=False, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- procedural closed track
def _procedural_candidate(rng: np.random.Generator, name: str) -> Track:
    """One random closed track: a smooth periodic spline (the path) through a star-shaped ring of
    points, scaled so its tightest bend is a random radius >= MIN_RADIUS + 1.5, with a road of
    the DonkeyCar model around it (two lanes, the path on the right lane's centre; one in five a
    single-lane tape track), sometimes of varying width, sometimes between barriers."""
    n_pts = int(rng.integers(7, 15))
    # evenly spread angles with jitter: the ring cannot bunch up or fold back
    base = np.linspace(0.0, 2 * np.pi, n_pts, endpoint=False)
    ang = base + rng.uniform(-0.3, 0.3, n_pts) * (2 * np.pi / n_pts)
    rad = rng.uniform(0.45, 1.0, n_pts)
    ring = np.stack([rad * np.sin(ang), rad * np.cos(ang)], axis=1)
    probe = Track.from_waypoints(name, ring * 100.0, 1.0, closed=True, ds=1.0, check=False)
    r_min = min_radius(probe)
    target = rng.uniform(MIN_RADIUS + 1.5, 16.0)
    scale = 100.0 * target / r_min
    if probe.length * scale / 100.0 > 1600.0:
        raise TrackError(f"{name}: candidate too long ({probe.length * scale / 100.0:.0f} units)")
    lanes = 1 if rng.random() < 0.2 else 2
    hw0 = float(rng.uniform(3.0, 6.0)) if lanes == 2 else float(rng.uniform(2.5, 4.0))
    hw: float | np.ndarray = hw0
    if rng.random() < 0.4:  # varying width: a smooth wave around hw0
        phase, amp = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)
        hw = np.clip(hw0 + amp * np.sin(2 * base + phase), 2.5, 6.5)
    barriers = bool(rng.random() < 0.25)
    dashed = bool(rng.random() < 0.4)
    hw_road, off = road_layout(hw, lanes)
    track = Track.from_waypoints(name, ring * scale, hw_road, closed=True, path_offset=off, waypoints_are="path",
                                 barriers=barriers, markings=lane_markings(float(np.mean(hw)), lanes, dashed=dashed),
                                 split="procedural", description="procedurally generated closed track")
    if min_radius(track) < MIN_RADIUS:
        raise TrackError(f"{name}: a bend is tighter than {MIN_RADIUS}")
    return track


def generate_track(seed: int, *, max_tries: int = 50) -> Track:
    """A valid, drivable closed track determined by ``seed`` (any integer >= 0).

    Candidates that fail validation (overlap, too tight, too long) are replaced by candidates from
    derived seeds ``(seed, 1), (seed, 2), ...``, so the result is still a pure function of ``seed``.
    """
    name = f"procedural-{seed}"
    last: Exception | None = None
    for attempt in range(max_tries):
        rng = np.random.default_rng([seed, attempt])
        try:
            return _procedural_candidate(rng, name)
        except TrackError as exc:
            last = exc
            log.debug("procedural seed %d attempt %d rejected: %s", seed, attempt, exc)
    raise TrackError(f"no valid procedural track for seed {seed} after {max_tries} tries: {last}")
