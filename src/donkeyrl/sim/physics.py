"""Car physics of the built-in simulator: a bicycle model with a grip limit.

Why this model: the DonkeyCar simulator is a Unity rigid body on four wheel colliders; what an RL
agent has to learn from it is (1) the steering geometry (wheelbase 1.6 units, 16 degree limit, so
a minimum turning radius of about 5.6 units), (2) a drive force that weakens with speed, drag and
braking, and (3) that cornering too fast makes the car slide wide. A kinematic bicycle model with a
lateral-acceleration (grip) limit reproduces exactly those trade-offs, deterministically, and costs
a few nanoseconds per tick when compiled with numba.

Calibration (docs/physics.md): the constants are the simulator's own car, ``Donkey_new_phys``
(sdsandbox v22.05.30): mass 50, wheelbase 1.60, steering +-16 degrees, four driven wheels of
radius 0.32 with motor torque 100 and brake torque 100 each, the torque scaled by its
``torqueCurve`` (:data:`TORQUE_CURVE`) of speed / maxSpeed (40), Unity rigid-body drag 0.05,
gravity 78.48 (9.81 m/s^2 at 8 units per metre), tyre friction 1.0 peak / 0.75 sliding, 100 Hz.

Units: simulator units (length) and seconds; mass in the simulator's units (50). Forces are
mass x units/s^2.

State layout (one row per car, float64), see the ``S_*`` indices:
    x, z        position of the car origin on the ground plane
    yaw         heading (rad), forward = (sin yaw, cos yaw)
    v           longitudinal speed (units/s, negative when reversing)
    v_lat       lateral slip speed (units/s, positive = sliding to the right)
    yaw_rate    (rad/s, positive = turning right / clockwise from above)
    steer       applied steering in [-1, 1]
    throttle    applied throttle in [-1, 1]
    brake       applied brake in [0, 1]
    a_long, a_lat  car acceleration along and across the heading of the last tick (units/s^2)
    slope       rise of the road per unit of forward travel (input, set by the simulator from the
                track's height profile; gravity pulls the car back uphill)
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numba as nb
import numpy as np

S_X, S_Z, S_YAW, S_V, S_VLAT, S_YAWRATE, S_STEER, S_THROTTLE, S_BRAKE, S_ALONG, S_ALAT, S_SLOPE = range(12)
STATE_SIZE = 12


#: The simulator car's motor torque curve (``Car.torqueCurve`` of ``Donkey_new_phys``): keys of
#: (speed / maxSpeed, torque factor, slope), evaluated as Unity does (cubic Hermite between keys,
#: held constant outside them). The torque falls to half at maxSpeed.
TORQUE_CURVE = ((0.0, 0.9996404, -0.023517786), (0.62, 0.8962091, -0.6331033), (1.0, 0.5012452, -0.6048433))


@dataclass(frozen=True)
class CarParams:
    """Physical constants of the car (defaults: the DonkeyCar simulator's car; docs/physics.md)."""

    mass: float = 50.0
    #: Distance between axles (units); with max_steer_deg it sets the minimum turning radius.
    wheelbase: float = 1.6
    #: Steering angle at |steering| = 1 (degrees).
    max_steer_deg: float = 16.0
    #: Drive force at standstill and full throttle (mass x units/s^2): four wheels of torque 100 at
    #: radius 0.32 push 1250, and their inertia (4 x 0.5 x 5 x 0.32^2 / 0.32^2 = 10 units of mass)
    #: makes that 1250 / 60 = 20.8 units/s^2 on the 50-unit body: 1042.
    max_drive_force: float = 1042.0
    #: Speed (units/s) that scales the torque curve (``maxSpeed``); the torque is half there.
    top_speed: float = 40.0
    #: Linear resistance coefficient: force = drag_lin * v (Unity rigid-body drag 0.05 x mass 50).
    drag_lin: float = 2.5
    #: Quadratic (air) drag coefficient: force = drag_quad * v^2 (Unity applies none).
    drag_quad: float = 0.0
    #: Braking force at brake = 1: four wheels of brake torque 100 at radius 0.32 (20.8 units/s^2).
    max_brake_force: float = 1042.0
    #: Lateral acceleration the tyres can hold (units/s^2). Above it the car slides wide. The
    #: wheels' sideways friction peaks at 1.0 and slides at 0.75 times the load: 78.5 and 58.9
    #: units/s^2; 70 is between the two (a single-limit model cannot have both).
    grip: float = 70.0
    #: While sliding, this fraction of the excess lateral demand scrubs longitudinal speed.
    slide_scrub: float = 0.3
    #: Relaxation time of the lateral slip speed (s).
    slip_tau: float = 0.15
    #: Gravity (units/s^2): the DonkeyCar simulator's -78.48 = 9.81 m/s^2 x 8 units per metre.
    gravity: float = 78.48

    def as_array(self) -> np.ndarray:
        """Parameters packed for the compiled kernels (order = field order)."""
        return np.array(astuple(self), dtype=np.float64)

    @property
    def min_turn_radius(self) -> float:
        """Turning radius at full lock and low speed (units)."""
        return self.wheelbase / np.tan(np.radians(self.max_steer_deg))

    @property
    def terminal_speed(self) -> float:
        """Speed (units/s) where full throttle's drive force equals the drag on a level straight."""
        p = self.as_array()
        lo, hi = 0.0, 1e4
        for _ in range(100):  # the drive force falls and the drag rises with speed: bisection
            mid = 0.5 * (lo + hi)
            if drive_force(1.0, mid, p) > self.drag_lin * mid + self.drag_quad * mid * mid:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)


(P_MASS, P_WHEELBASE, P_MAXSTEER, P_FDRIVE, P_TOP, P_DLIN, P_DQUAD, P_FBRAKE, P_GRIP, P_SCRUB, P_TAU,
 P_GRAVITY) = range(12)


def new_state(n_cars: int) -> np.ndarray:
    """A zeroed state array for ``n_cars`` cars."""
    return np.zeros((n_cars, STATE_SIZE), dtype=np.float64)


_CURVE = np.array(TORQUE_CURVE)


@nb.njit(cache=True)
def torque_factor(x):  # pragma: no cover - jitted
    """The torque curve at x = speed / maxSpeed (Unity AnimationCurve: Hermite, clamped)."""
    c = _CURVE
    if x <= c[0, 0]:
        return c[0, 1]
    n = c.shape[0]
    if x >= c[n - 1, 0]:
        return c[n - 1, 1]
    k = 0
    while x > c[k + 1, 0]:
        k += 1
    dt = c[k + 1, 0] - c[k, 0]
    s = (x - c[k, 0]) / dt
    s2, s3 = s * s, s * s * s
    return ((2 * s3 - 3 * s2 + 1) * c[k, 1] + (s3 - 2 * s2 + s) * dt * c[k, 2]
            + (-2 * s3 + 3 * s2) * c[k + 1, 1] + (s3 - s2) * dt * c[k + 1, 2])


@nb.njit(cache=True)
def drive_force(throttle, v, p):  # pragma: no cover - jitted
    """Wheel force from the throttle: full force times the torque curve of |v| / top_speed."""
    return throttle * p[P_FDRIVE] * torque_factor(abs(v) / p[P_TOP])


@nb.njit(cache=True)
def tick(state, i, dt, p):  # pragma: no cover - jitted
    """Advance car ``i`` by one physics tick of ``dt`` seconds (semi-implicit Euler)."""
    x, z, yaw = state[i, S_X], state[i, S_Z], state[i, S_YAW]
    v, v_lat = state[i, S_V], state[i, S_VLAT]
    steer, throttle, brake = state[i, S_STEER], state[i, S_THROTTLE], state[i, S_BRAKE]
    m = p[P_MASS]
    # --- longitudinal: drive, drag (opposes motion), gravity along a slope, brake (opposes motion,
    # can hold at rest)
    slope = state[i, S_SLOPE]
    f = (drive_force(throttle, v, p) - (p[P_DLIN] * v + p[P_DQUAD] * v * abs(v))
         - m * p[P_GRAVITY] * slope / np.sqrt(1.0 + slope * slope))
    fb = brake * p[P_FBRAKE]
    # --- lateral: kinematic yaw rate, limited by grip
    delta = steer * np.radians(p[P_MAXSTEER])
    r_kin = v * np.tan(delta) / p[P_WHEELBASE]
    a_req = v * r_kin
    grip = p[P_GRIP]
    if abs(a_req) > grip:
        r = r_kin * grip / abs(a_req)
        excess = abs(a_req) - grip
        fb += p[P_SCRUB] * excess * m  # tyres scrub speed while sliding
        slip_target = (a_req - np.sign(a_req) * grip) * p[P_TAU]  # drift outwards (to the turn's outside)
    else:
        r = r_kin
        slip_target = 0.0
    a_long = f / m
    dv = a_long * dt
    brake_dv = fb / m * dt
    if abs(v + dv) <= brake_dv:
        v_new = 0.0
    else:
        v_new = v + dv - np.sign(v + dv) * brake_dv
    a_long = (v_new - v) / dt
    # slip relaxes towards its target; positive v_lat slides right (a right turn slides left)
    v_lat_new = v_lat + (-slip_target - v_lat) * (dt / p[P_TAU])
    yaw_new = yaw + r * dt
    sy, cy = np.sin(yaw_new), np.cos(yaw_new)
    state[i, S_X] = x + (v_new * sy + v_lat_new * cy) * dt
    state[i, S_Z] = z + (v_new * cy - v_lat_new * sy) * dt
    state[i, S_YAW] = yaw_new
    state[i, S_V] = v_new
    state[i, S_VLAT] = v_lat_new
    state[i, S_YAWRATE] = r
    state[i, S_ALONG] = a_long
    state[i, S_ALAT] = v_new * r


@nb.njit(cache=True)
def step_cars(state, controls, p, dt, substeps):  # pragma: no cover - jitted
    """Apply ``controls`` (n, 3: steering, throttle, brake) and run ``substeps`` ticks per car.

    Controls are clamped like the DonkeyCar simulator: steering and throttle to [-1, 1], brake
    to [0, 1]; non-finite values are refused by the caller, not here.
    """
    n = state.shape[0]
    for i in range(n):
        state[i, S_STEER] = min(1.0, max(-1.0, controls[i, 0]))
        state[i, S_THROTTLE] = min(1.0, max(-1.0, controls[i, 1]))
        state[i, S_BRAKE] = min(1.0, max(0.0, controls[i, 2]))
        for _ in range(substeps):
            tick(state, i, dt, p)
