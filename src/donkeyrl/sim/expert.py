"""A scripted expert driver that uses exact track geometry: the human-tuned baseline.

Why: RL champions need a reference lap time per track ("how far from a competent driver are
we?"), and tests need a driver that provably laps every catalogue track. The expert drives a
*line*: the track's ``drive_lateral`` lane (the path itself on most tracks), moved outwards
where a bend of the real scenes is tighter than the car can turn. It steers by pure pursuit on
that line and drives a speed profile computed from the line's curvature and the tyres' grip, so it
is fast on straights, brakes before hairpins and never slides wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d, minimum_filter1d

from donkeyrl.sim.physics import CarParams
from donkeyrl.sim.track import Track


@dataclass(frozen=True)
class ExpertConfig:
    """Tuning of the expert (units and seconds)."""

    #: Fraction of the grip limit used in bends (margin against sliding and pure pursuit's lag).
    grip_fraction: float = 0.5
    #: Deceleration assumed when planning braking before bends (units/s^2).
    plan_decel: float = 14.0
    #: Highest target speed (units/s); below the car's top speed so throttle has headroom.
    max_speed: float = 36.0
    #: Pure-pursuit look-ahead: base + gain x speed, clipped to [min, max] (units).
    lookahead_base: float = 2.5
    lookahead_gain: float = 0.2
    lookahead_min: float = 2.5
    lookahead_max: float = 9.0
    #: Proportional speed control: throttle per unit/s of speed error.
    speed_gain: float = 0.25
    #: Tightest radius (units) the driven line may have: the car turns down to ~5.4-5.6.
    line_min_radius: float = 7.0
    #: Clearance (units) the line keeps from the road edges and walls (car half-width + margin).
    line_clearance: float = 1.2
    #: Smoothing (units) of the line's lateral offset along the track.
    line_smooth: float = 4.0


class ExpertDriver:
    """Pure pursuit + curvature speed profile on one track. Call :meth:`act` every step."""

    def __init__(self, track: Track, car: CarParams | None = None, config: ExpertConfig | None = None) -> None:
        self.track = track
        self.car = car or CarParams()
        self.cfg = config or ExpertConfig()
        self.line_lat = self._line()
        self.line_curvature = self._line_curvature()
        self.speed_profile = self._speed_profile()

    def _line(self) -> np.ndarray:
        """Lateral offset (N,) of the driven line: the track's lane, moved outwards where the lane
        would bend tighter than ``line_min_radius``, kept ``line_clearance`` inside the road."""
        tr, c = self.track, self.cfg
        k = tr.curvature
        d = np.full(tr.n, float(tr.drive_lateral))
        r_req = c.line_min_radius
        with np.errstate(divide="ignore"):
            right = np.where(k > 1e-9, 1.0 / np.maximum(k, 1e-9) - r_req, np.inf)   # right bend: d <= R - r
            left = np.where(k < -1e-9, r_req - 1.0 / np.maximum(-k, 1e-9), -np.inf)  # left bend: d >= r - R
        walls_l, walls_r = tr.solid_wall_lats()
        lo = np.maximum(tr.lat_left, walls_l) + c.line_clearance
        hi = np.minimum(tr.lat_right, walls_r) - c.line_clearance
        ds = max(float(np.median(np.diff(tr.s))), 1e-6)
        sigma = c.line_smooth / ds
        mode = "wrap" if tr.closed else "nearest"
        # widen each bound by 3 sigma before clipping, so that the smoothed line still honours it
        width = int(6 * sigma) | 1
        right = minimum_filter1d(np.minimum(right, hi), width, mode=mode)
        left = maximum_filter1d(np.maximum(left, lo), width, mode=mode)
        d = np.clip(np.clip(d, left, right), lo, hi)
        d = gaussian_filter1d(d, sigma, mode=mode)
        return np.clip(d, lo, hi)

    def _line_curvature(self) -> np.ndarray:
        """Signed curvature (N,) of the driven line (positive = turning right).

        An offset d of a path of curvature k bends at k / (1 - k d) (inside a bend the radius
        shrinks by d); a varying offset adds its second derivative d''. Smoothed over ~1 unit.
        """
        tr = self.track
        k, d = tr.curvature, self.line_lat
        ds = max(float(np.median(np.diff(tr.s))), 1e-6)
        mode = "wrap" if tr.closed else "nearest"
        d2 = gaussian_filter1d(d, 2.0 / ds, order=2, mode=mode) / ds**2
        k_line = k / np.maximum(1.0 - k * d, 0.05) + d2
        return gaussian_filter1d(k_line, 1.0 / ds, mode=mode)

    def line_point(self, s_at: float) -> np.ndarray:
        """Point (x, z) of the driven line at path arc length ``s_at``."""
        tr = self.track
        q = s_at % tr.length if tr.closed else min(max(s_at, 0.0), float(tr.s[-1]))
        i = min(int(np.searchsorted(tr.s, q, side="right")) - 1, tr.n - 1)
        p = tr.point_at(q)
        return p + tr.normals[i] * self.line_lat[i]

    def _speed_profile(self) -> np.ndarray:
        """Target speed per path sample: grip-limited in bends, with braking planned backwards."""
        tr, c = self.track, self.cfg
        # Curvature smoothed over ~2 units so single-sample kinks do not dominate.
        k = np.abs(self.line_curvature)
        width = 5
        kern = np.ones(width) / width
        k = np.convolve(np.concatenate([k[-width:], k, k[:width]]) if tr.closed else
                        np.pad(k, width, mode="edge"), kern, mode="same")[width:-width]
        v = np.minimum(c.max_speed, np.sqrt(c.grip_fraction * self.car.grip / np.maximum(k, 1e-6)))
        ds = np.diff(np.append(tr.s, tr.length if tr.closed else tr.s[-1] + 1.0))
        # Backward pass: v[i] <= sqrt(v[i+1]^2 + 2 a ds); twice around a closed track to wrap.
        n = len(v)
        passes = 2 if tr.closed else 1
        for _ in range(passes):
            for i in range(n - 2 if not tr.closed else n - 1, -1, -1):
                j = i + 1 if i + 1 < n else 0
                v[i] = min(v[i], np.sqrt(v[j] ** 2 + 2 * c.plan_decel * ds[i]))
        return v

    def act(self, x: float, z: float, yaw: float, speed: float, hint: int = -1) -> tuple[float, float, float]:
        """(steering, throttle, brake) for a car at (x, z) with heading ``yaw`` and ``speed``."""
        tr, c = self.track, self.cfg
        proj = tr.project(x, z, hint)
        ld = float(np.clip(c.lookahead_base + c.lookahead_gain * speed, c.lookahead_min, c.lookahead_max))
        tx, tz = self.line_point(proj.s + ld)
        dx, dz = tx - x, tz - z
        # angle of the target in the car frame (positive = to the right)
        alpha = np.arctan2(dx * np.cos(yaw) - dz * np.sin(yaw), dx * np.sin(yaw) + dz * np.cos(yaw))
        delta = np.arctan2(2 * self.car.wheelbase * np.sin(alpha), max(np.hypot(dx, dz), 1e-6))
        steering = float(np.clip(delta / np.radians(self.car.max_steer_deg), -1.0, 1.0))
        # target speed: the profile a little ahead (the car needs time to react)
        idx = np.searchsorted(tr.s, (proj.s + 0.3 * speed) % tr.length if tr.closed else
                              min(proj.s + 0.3 * speed, tr.s[-1])) % tr.n
        target = float(min(self.speed_profile[proj.index], self.speed_profile[idx]))
        err = target - speed
        throttle = float(np.clip(0.5 + c.speed_gain * err, -1.0, 1.0)) if err > -1.0 else 0.0
        brake = float(np.clip(-0.15 * (err + 1.0), 0.0, 1.0)) if err < -1.0 else 0.0
        return steering, throttle, brake

    def action_for_env(self, telemetry: object) -> np.ndarray:
        """An env action (steering, throttle) from simulator telemetry; braking as negative throttle.

        Environments take no brake, so the expert's brake becomes a negative throttle (which the
        simulator turns into a braking force while the car rolls forward); make the env with
        ``throttle_min=-1`` to let it brake.
        """
        t = telemetry
        steer, throttle, brake = self.act(t.x, t.z, t.yaw, t.speed, t.path_index)  # type: ignore[attr-defined]
        return np.array([steer, throttle - brake], dtype=np.float32)


def expert_lap_time(track: Track, *, min_speed: float = 5.0) -> float | None:
    """The expert's first lap time on ``track`` (s), from the standard start; None on an open road.

    The reference ("human-tuned baseline") that RL lap times are compared against. The drive is
    given three track lengths at ``min_speed`` units/s; None if the expert has not lapped by then.
    """
    from donkeyrl.sim.simulator import Simulator  # local: the simulator imports nothing from here

    if not track.closed:
        return None
    sim = Simulator(track, 1, camera=None)
    driver = ExpertDriver(track, sim.config.car)
    for _ in range(int(3 * track.length / min_speed / sim.config.control_dt)):
        tel = sim.telemetry()
        if tel.lap_count >= 1:
            return float(tel.last_lap_time)
        steer, throttle, brake = driver.act(tel.x, tel.z, tel.yaw, tel.speed, tel.path_index)
        sim.step(steer, throttle, brake)
    return None
