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

from donkeyrl.sim.track import Track, TrackError

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


def layout_track(name: str, segs: Sequence[Seg], *, half_width: float | Callable[[int], np.ndarray],
                 closed: bool = True, smooth: float = 3.0, mirror: bool = False,
                 target_length: float | None = None, **kwargs: object) -> Track:
    """Build a validated :class:`Track` from a turtle layout.

    ``half_width`` is a scalar or a function mapping the number of waypoints to an array of
    half-widths (see :func:`profile`). ``mirror`` swaps left and right turns (a clockwise layout
    becomes anticlockwise). ``target_length`` scales the whole layout (radii included, widths not)
    to that path length.
    """
    segs = [Seg(sg.length, -sg.curvature) for sg in segs] if mirror else list(segs)
    xy = turtle_path(segs, closed=closed, smooth=smooth)
    if target_length is not None:
        k = target_length / (len(xy) * STEP)
        segs = [Seg(sg.length * k, sg.curvature / k) for sg in segs]
        xy = turtle_path(segs, closed=closed, smooth=smooth * k)
    wp = waypoints_from_dense(xy)
    hw = half_width(len(wp)) if callable(half_width) else half_width
    return Track.from_waypoints(name, wp, hw, closed=closed, **kwargs)  # type: ignore[arg-type]


def min_radius(track: Track) -> float:
    """Tightest bend radius on the path (simulator units; inf for a straight line)."""
    k = float(np.max(np.abs(track.curvature)))
    return np.inf if k == 0 else 1.0 / k


# ------------------------------------------------------------------------------ generated road
def generated_road(seed: int, *, nodes: int = 1000, node_spacing: float = 2.0, half_width: float = 5.0,
                   name: str = "generated_road", **kwargs: object) -> Track:
    """A DonkeyCar-style random open road: ``nodes`` x ``node_spacing`` units of straights and
    bends, seeded. The path is the centre of the right lane (offset +half_width/2).

    Why heading stays within +-75 degrees of the start direction: the road then always advances,
    so it can never run back into itself however long it is (like the real generated road, which
    meanders forward).
    """
    rng = np.random.default_rng(seed)
    total = nodes * node_spacing
    limit = np.radians(75.0)
    segs: list[Seg] = [S(20.0)]
    length, psi = 20.0, 0.0
    while length < total:
        if rng.random() < 0.35:
            sg = S(rng.uniform(10.0, 60.0))
        else:
            radius = rng.uniform(15.0, 60.0)
            deg = rng.uniform(20.0, 110.0)
            sign = rng.choice([-1.0, 1.0])
            # steer back towards the road's general direction when near the heading limit
            if abs(psi + sign * np.radians(deg)) > limit:
                sign = -sign
            new = psi + sign * np.radians(deg)
            new = float(np.clip(new, -limit, limit))
            deg = abs(np.degrees(new - psi))
            if deg < 5.0:
                continue
            sg = (R if sign > 0 else L)(radius, deg)
            psi = new
        segs.append(sg)
        length += sg.length
    xy = turtle_path(segs, closed=False, smooth=3.0)
    xy = xy[: int(total / STEP) + 1]
    wp = waypoints_from_dense(xy)
    return Track.from_waypoints(name, wp, half_width, closed=False, path_offset=half_width / 2,
                                **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- procedural closed track
def _procedural_candidate(rng: np.random.Generator, name: str) -> Track:
    """One random closed track: a smooth periodic spline through a star-shaped ring of points,
    scaled so its tightest bend is a random radius >= MIN_RADIUS + 1."""
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
    hw0 = float(rng.uniform(3.0, 6.0))
    if rng.random() < 0.4:  # varying width: a smooth wave around hw0
        phase, amp = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)
        hw = np.clip(hw0 + amp * np.sin(2 * base + phase), 2.5, 6.5)
    else:
        hw = hw0
    barriers = bool(rng.random() < 0.25)
    track = Track.from_waypoints(name, ring * scale, hw, closed=True, barriers=barriers,
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
