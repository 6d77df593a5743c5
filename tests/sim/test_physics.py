"""Car physics against hand calculations: drag closed form, turning circle, top speed, grip limit.

The kernels are driven directly (one tick of 0.01 s per call) so each test isolates one term of
the model; the Simulator tests cover the 0.05 s control step on top.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from donkeyrl.sim import physics as ph
from donkeyrl.sim.simulator import SimConfig, Simulator
from donkeyrl.sim.track import Track

P = ph.CarParams()
PA = P.as_array()
DT = 0.01


def drive(state: np.ndarray, controls: tuple[float, float, float], ticks: int) -> np.ndarray:
    """Run ``ticks`` physics ticks with constant controls; returns the (ticks, STATE_SIZE) trace."""
    c = np.array([controls], dtype=np.float64)
    trace = np.empty((ticks, ph.STATE_SIZE))
    for k in range(ticks):
        ph.step_cars(state, c, PA, DT, 1)
        trace[k] = state[0]
    return trace


def moving_car(v: float) -> np.ndarray:
    """A car at the origin facing +z with longitudinal speed ``v``."""
    st = ph.new_state(1)
    st[0, ph.S_V] = v
    return st


def circle_fit(xy: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (Kasa) circle through points: (centre x, centre z, radius), from positions only."""
    x, z = xy[:, 0], xy[:, 1]
    a = np.column_stack([x, z, np.ones_like(x)])
    sol, *_ = np.linalg.lstsq(a, x * x + z * z, rcond=None)
    cx, cz = sol[0] / 2, sol[1] / 2
    return float(cx), float(cz), float(np.sqrt(sol[2] + cx * cx + cz * cz))


def circle_radius(xy: np.ndarray) -> float:
    """Radius of the least-squares circle through ``xy``."""
    return circle_fit(xy)[2]


# ------------------------------------------------------------------------------ longitudinal
def test_coasting_matches_the_closed_form_of_linear_plus_quadratic_drag() -> None:
    # dv/dt = -(a v + b v^2)  =>  v(t) = a v0 e^{-a t} / (a + b v0 (1 - e^{-a t}))
    for params in (P, ph.CarParams(drag_quad=0.25)):
        pa = params.as_array()
        a, b, v0 = params.drag_lin / params.mass, params.drag_quad / params.mass, 40.0
        st = moving_car(v0)
        trace = np.empty((2000, ph.STATE_SIZE))
        for k in range(2000):  # 20 s
            ph.step_cars(st, np.zeros((1, 3)), pa, DT, 1)
            trace[k] = st[0]
        t = DT * np.arange(1, 2001)
        e = np.exp(-a * t)
        expected = a * v0 * e / (a + b * v0 * (1 - e))
        np.testing.assert_allclose(trace[:, ph.S_V], expected, rtol=5e-3)
        assert expected[-1] < 0.5 * v0  # the comparison spans a real slow-down
        # straight ahead: no yaw, no lateral motion; distance = integral of v
        assert np.all(trace[:, ph.S_YAW] == 0.0) and np.all(trace[:, ph.S_X] == 0.0)
        dist = (math.log(1 + b * v0 * (1 - math.exp(-a * 20.0)) / a) / b if b > 0 else
                v0 * (1 - math.exp(-a * 20.0)) / a)
        assert trace[-1, ph.S_Z] == pytest.approx(dist, rel=5e-3)


def test_torque_curve_is_the_simulators() -> None:
    """Unity's curve through the car's keys: 1 at rest, 0.896 at 62 % of maxSpeed, half at it."""
    assert ph.torque_factor(0.0) == pytest.approx(0.9996, abs=1e-4)
    assert ph.torque_factor(0.62) == pytest.approx(0.8962, abs=1e-4)
    assert ph.torque_factor(1.0) == pytest.approx(0.5012, abs=1e-4)
    assert ph.torque_factor(3.0) == pytest.approx(0.5012, abs=1e-4)  # held beyond the last key
    xs = np.linspace(0.0, 1.0, 101)
    assert np.all(np.diff([ph.torque_factor(x) for x in xs]) <= 2e-4)  # the keys bump by 1e-4 near x = 0.1


def test_full_throttle_settles_at_the_terminal_speed() -> None:
    trace = drive(ph.new_state(1), (0.0, 1.0, 0.0), 30000)  # 300 s: the drag time constant is 20 s
    v = trace[:, ph.S_V]
    assert v[-1] == pytest.approx(P.terminal_speed, rel=1e-3)
    # the simulator's car: about 26 telemetry units/s on a long straight (its doc: "around 30")
    assert 180 < P.terminal_speed < 240
    assert np.all(np.diff(v) >= -1e-12), "speed must rise monotonically"
    # the start is the standstill force: a = F_drive / m = 20.8 units/s^2 in the first tick
    assert trace[0, ph.S_V] == pytest.approx(P.max_drive_force * ph.torque_factor(0.0) / P.mass * DT)


def test_half_throttle_settles_where_drive_force_equals_drag() -> None:
    trace = drive(ph.new_state(1), (0.0, 0.5, 0.0), 30000)
    v = trace[-1, ph.S_V]
    drive_f = 0.5 * P.max_drive_force * ph.torque_factor(v / P.top_speed)
    drag_f = P.drag_lin * v + P.drag_quad * v * v
    assert drive_f == pytest.approx(drag_f, rel=1e-3)
    assert P.top_speed < v < P.terminal_speed


def test_braking_stops_the_car_within_hand_computed_distance_and_holds_it() -> None:
    v0 = 30.0
    trace = drive(moving_car(v0), (0.0, 0.0, 1.0), 300)
    v, z = trace[:, ph.S_V], trace[:, ph.S_Z]
    stop = int(np.argmax(v == 0.0))
    assert v[stop] == 0.0 and stop > 0
    # brake alone decelerates 30 units/s^2, drag adds at most (2.5*30 + 0.25*900)/50 = 6
    a_brake = P.max_brake_force / P.mass
    a_drag_max = (P.drag_lin * v0 + P.drag_quad * v0 * v0) / P.mass
    assert v0 ** 2 / (2 * (a_brake + a_drag_max)) <= z[stop] <= v0 ** 2 / (2 * a_brake) + v0 * DT
    assert np.all(v[stop:] == 0.0) and np.all(z[stop:] == z[stop]), "a braked car must not creep"
    # held against some throttle too (drive force 300 < brake force 1500), never pushed backwards
    held = drive(trace[-1:].copy(), (0.0, 0.3, 1.0), 200)
    assert np.all(held[:, ph.S_V] == 0.0) and np.all(held[:, ph.S_Z] == z[-1])


def test_reverse_throttle_drives_backwards_to_minus_terminal_speed() -> None:
    trace = drive(ph.new_state(1), (0.0, -1.0, 0.0), 30000)
    assert trace[-1, ph.S_V] == pytest.approx(-P.terminal_speed, rel=1e-3)
    assert trace[-1, ph.S_Z] < -500.0  # moved backwards along -z (yaw 0 faces +z)
    assert np.all(np.diff(trace[:, ph.S_Z]) < 0)


def test_negative_throttle_slows_a_forward_car_before_reversing_it() -> None:
    trace = drive(moving_car(20.0), (0.0, -1.0, 0.0), 400)
    v = trace[:, ph.S_V]
    assert np.all(np.diff(v) < 0)
    t_zero = int(np.argmax(v < 0)) * DT
    # deceleration at least drive force (20 units/s^2, torque curve >= half) ... so < 20/10 = 2 s
    assert 0.5 < t_zero < 2.0
    assert v[-1] < -5.0


# ------------------------------------------------------------------------------ lateral
def test_min_turn_radius_is_wheelbase_over_tan_16_degrees() -> None:
    expected = P.wheelbase / math.tan(math.radians(16.0))
    assert P.min_turn_radius == pytest.approx(expected)
    assert expected == pytest.approx(5.58, abs=0.01)


@pytest.mark.parametrize("steer", [1.0, -1.0])
def test_steady_turn_at_low_speed_follows_the_kinematic_radius(steer: float) -> None:
    trace = drive(ph.new_state(1), (steer, 0.02, 0.0), 3000)
    v = trace[-1, ph.S_V]
    assert v ** 2 / P.min_turn_radius < 0.5 * P.grip, "test must stay well under the grip limit"
    cx, cz, radius = circle_fit(trace[1500:, [ph.S_X, ph.S_Z]])
    assert radius == pytest.approx(5.58, rel=0.02)
    # steering right (positive) turns clockwise from above: yaw increases; left decreases
    assert np.sign(trace[-1, ph.S_YAWRATE]) == steer
    # the circle lies on the side the car steered to: centre at (+R, 0) (right) or (-R, 0) (left),
    # shifted a little forward because the car accelerated from rest into the circle
    assert cx == pytest.approx(steer * 5.58, abs=0.3)
    assert abs(cz) < 1.5
    assert abs(trace[-1, ph.S_VLAT]) < 1e-6, "no slip below the grip limit"


def test_cornering_above_the_grip_limit_slides_wide() -> None:
    # at 30 units/s full lock asks for v^2 / 5.58 = 161 units/s^2, far above grip 45
    trace = drive(moving_car(30.0), (1.0, 1.0, 0.0), 3000)
    a_lat = trace[:, ph.S_ALAT]
    assert np.max(np.abs(a_lat)) <= P.grip + 1e-9
    assert np.max(np.abs(a_lat)) == pytest.approx(P.grip, rel=1e-6), "lateral accel must saturate at grip"
    radius = circle_radius(trace[1500:, [ph.S_X, ph.S_Z]])
    v_end = trace[-1, ph.S_V]
    assert radius > 1.5 * P.min_turn_radius
    # a grip-limited circle has radius ~ v^2 / grip (plus the outward slip)
    assert radius == pytest.approx(v_end ** 2 / P.grip, rel=0.1)
    # slides to the outside of a right turn, i.e. left: negative lateral velocity
    assert trace[-1, ph.S_VLAT] < -1.0
    # scrubbing costs speed: full throttle in a slide settles well below top speed
    assert v_end < 0.7 * P.top_speed


def test_same_corner_slower_is_tighter() -> None:
    """The trade-off the agent must learn: speed through a bend costs radius (grip)."""
    radii = []
    for throttle in (0.05, 0.3, 1.0):
        trace = drive(moving_car(0.0), (1.0, throttle, 0.0), 3000)
        radii.append(circle_radius(trace[1500:, [ph.S_X, ph.S_Z]]))
    assert radii[0] < radii[1] < radii[2]


# ------------------------------------------------------------------------------ controls
def test_controls_are_clamped_to_their_ranges() -> None:
    a, b = moving_car(10.0), moving_car(10.0)
    ta = drive(a, (5.0, 3.0, -2.0), 50)
    tb = drive(b, (1.0, 1.0, 0.0), 50)
    np.testing.assert_array_equal(ta, tb)
    assert ta[-1, ph.S_STEER] == 1.0 and ta[-1, ph.S_THROTTLE] == 1.0 and ta[-1, ph.S_BRAKE] == 0.0
    c = moving_car(10.0)
    tc = drive(c, (-7.0, -9.0, 4.0), 1)
    assert tc[-1, ph.S_STEER] == -1.0 and tc[-1, ph.S_THROTTLE] == -1.0 and tc[-1, ph.S_BRAKE] == 1.0


def _straight() -> Track:
    return Track.from_waypoints("straight", np.array([[0.0, z] for z in range(-10, 400, 10)]), 4.0,
                                closed=False)


def test_simulator_control_step_is_five_ticks_of_the_physics() -> None:
    sim = Simulator(_straight(), camera=None)
    manual = sim.state.copy()
    for k in range(20):
        steer, throttle = 0.3 * math.sin(k), 0.7
        sim.step(np.array([steer]), np.array([throttle]))
        ph.step_cars(manual, np.array([[steer, throttle, 0.0]]), PA, 0.01, 5)
    np.testing.assert_array_equal(sim.state, manual)
    assert sim.telemetry(0).time == pytest.approx(20 * 0.05)


def test_simulator_timing_is_configurable() -> None:
    cfg = SimConfig(physics_hz=200, control_dt=0.1)
    assert cfg.substeps == 20 and cfg.tick_dt == pytest.approx(0.005)
    sim = Simulator(_straight(), config=cfg, camera=None)
    sim.step(np.array([0.0]), np.array([1.0]))
    assert sim.telemetry(0).time == pytest.approx(0.1)
    # 0.1 s at ~20.8 units/s^2 from rest: just under 2.1 units/s
    assert 1.9 < sim.telemetry(0).forward_vel < 2.1
    with pytest.raises(ValueError, match="control_dt"):
        SimConfig(physics_hz=10, control_dt=0.01)


def test_simulator_refuses_non_finite_controls() -> None:
    sim = Simulator(_straight(), camera=None)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="finite"):
            sim.step(np.array([bad]), np.array([0.5]))


def test_reverse_speed_is_reported_positive_and_forward_vel_negative() -> None:
    sim = Simulator(_straight(), camera=None)
    for _ in range(40):
        sim.step(np.array([0.0]), np.array([-1.0]))
    t = sim.telemetry(0)
    assert t.forward_vel < -10.0
    assert t.speed == pytest.approx(-t.forward_vel)
    assert t.progress == 0.0  # backwards never counts as progress
