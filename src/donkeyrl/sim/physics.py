"""Car physics of the built-in simulator: a bicycle model with a grip limit.

Why this model: the DonkeyCar simulator is a Unity rigid body on four wheel colliders; what an RL
agent has to learn from it is (1) the steering geometry (wheelbase 1.6 units, 16 degree limit, so
a minimum turning radius of about 5.6 units), (2) a drive force that weakens with speed, drag and
braking, and (3) that cornering too fast makes the car slide wide. A kinematic bicycle model with a
lateral-acceleration (grip) limit reproduces exactly those trade-offs, deterministically, and costs
a few nanoseconds per tick when compiled with numba.

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


@dataclass(frozen=True)
class CarParams:
    """Physical constants of the car (defaults: the DonkeyCar simulator's car, see protocol doc 6)."""

    mass: float = 50.0
    #: Distance between axles (units); with max_steer_deg it sets the minimum turning radius.
    wheelbase: float = 1.6
    #: Steering angle at |steering| = 1 (degrees).
    max_steer_deg: float = 16.0
    #: Drive force at standstill and full throttle (mass x units/s^2): 1000 / 50 = 20 units/s^2.
    max_drive_force: float = 1000.0
    #: Speed (units/s) at which the drive torque has fallen to half; with the drag terms below it
    #: is also the top speed at full throttle on a straight (5 telemetry units/s).
    top_speed: float = 40.0
    #: Linear (rolling) resistance coefficient: force = drag_lin * v.
    drag_lin: float = 2.5
    #: Quadratic (air) drag coefficient: force = drag_quad * v^2. 2.5*40 + 0.25*1600 = 500 = half
    #: of max_drive_force, so full throttle settles exactly at top_speed.
    drag_quad: float = 0.25
    #: Braking force at brake = 1 (30 units/s^2).
    max_brake_force: float = 1500.0
    #: Lateral acceleration the tyres can hold (units/s^2). Above it the car slides wide.
    grip: float = 45.0
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


(P_MASS, P_WHEELBASE, P_MAXSTEER, P_FDRIVE, P_TOP, P_DLIN, P_DQUAD, P_FBRAKE, P_GRIP, P_SCRUB, P_TAU,
 P_GRAVITY) = range(12)


def new_state(n_cars: int) -> np.ndarray:
    """A zeroed state array for ``n_cars`` cars."""
    return np.zeros((n_cars, STATE_SIZE), dtype=np.float64)


@nb.njit(cache=True)
def drive_force(throttle, v, p):  # pragma: no cover - jitted
    """Wheel force from the throttle: the torque falls linearly to half at top speed."""
    fall = abs(v) / p[P_TOP]
    if fall > 1.0:
        fall = 1.0
    return throttle * p[P_FDRIVE] * (1.0 - 0.5 * fall)


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
