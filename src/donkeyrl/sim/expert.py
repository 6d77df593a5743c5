"""A scripted expert driver that uses exact track geometry: the human-tuned baseline.

Why: RL champions need a reference lap time per track ("how far from a competent driver are
we?"), and tests need a driver that provably laps every catalogue track. The expert steers by pure
pursuit on the path and drives a speed profile computed from curvature and the tyres' grip, so it
is fast on straights, brakes before hairpins and never slides wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from donkeyrl.sim.physics import CarParams
from donkeyrl.sim.track import Track


@dataclass(frozen=True)
class ExpertConfig:
    """Tuning of the expert (units and seconds)."""

    #: Fraction of the grip limit used in bends (margin against sliding).
    grip_fraction: float = 0.75
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


class ExpertDriver:
    """Pure pursuit + curvature speed profile on one track. Call :meth:`act` every step."""

    def __init__(self, track: Track, car: CarParams | None = None, config: ExpertConfig | None = None) -> None:
        self.track = track
        self.car = car or CarParams()
        self.cfg = config or ExpertConfig()
        self.speed_profile = self._speed_profile()

    def _speed_profile(self) -> np.ndarray:
        """Target speed per path sample: grip-limited in bends, with braking planned backwards."""
        tr, c = self.track, self.cfg
        # Curvature smoothed over ~2 units so single-sample kinks do not dominate.
        k = np.abs(tr.curvature)
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
        tx, tz = tr.point_at(proj.s + ld)
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
