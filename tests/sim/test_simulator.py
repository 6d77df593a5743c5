"""Simulator bookkeeping: laps, progress, start-line crossings, barriers, determinism, trade-off.

Camera-less simulators (``camera=None``) keep these fast; rendering is tested with the envs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from donkeyrl.sim import physics as ph
from donkeyrl.sim.expert import ExpertDriver
from donkeyrl.sim.simulator import CAR_HALF_WIDTH, SimConfig, Simulator, Telemetry
from donkeyrl.sim.track import Track
from donkeyrl.sim.tracks import get_track

ONE = np.ones(1)


def step(sim: Simulator, steer: float, throttle: float, brake: float = 0.0) -> Telemetry:
    sim.step(steer * ONE, throttle * ONE, brake * ONE)
    return sim.telemetry(0)


def expert_step(sim: Simulator, expert: ExpertDriver, throttle: float | None = None) -> Telemetry:
    """One control step by the expert (optionally with its throttle replaced)."""
    t = sim.telemetry(0)
    s, th, b = expert.act(t.x, t.z, t.yaw, t.speed, t.path_index)
    if throttle is not None:
        th, b = throttle, 0.0
    return step(sim, s, th, b)


def reversed_track(tr: Track) -> Track:
    """The same road driven the other way round (left and right swap)."""
    return Track(name=tr.name + "_reversed", points=tr.points[::-1].copy(),
                 lat_left=(-tr.lat_right[::-1]).copy(), lat_right=(-tr.lat_left[::-1]).copy(),
                 centre_lat=(-tr.centre_lat[::-1]).copy(), closed=tr.closed, barriers=tr.barriers,
                 barrier_margin=tr.barrier_margin)


@pytest.fixture(scope="module")
def loop() -> Track:
    return get_track("generated_track")


# ------------------------------------------------------------------------------------ start, laps
def test_reset_puts_the_car_behind_the_start_line_at_rest(loop: Track) -> None:
    sim = Simulator(loop, camera=None)
    t = sim.telemetry(0)
    start = loop.point_at(-SimConfig().start_behind)
    assert (t.x, t.z) == pytest.approx(tuple(start), abs=1e-9)
    assert t.speed == 0.0 and t.progress == 0.0 and t.lap_count == 0 and t.time == 0.0
    assert abs(t.cte) < 1e-6 and abs(t.heading_error) < 1e-9
    assert loop.project(t.x, t.z).s == pytest.approx(loop.length - 1.0, abs=1e-6)
    sim.reset(0, lateral=0.4, yaw_offset=0.1)
    t = sim.telemetry(0)
    assert t.cte == pytest.approx(0.4) and t.heading_error == pytest.approx(0.1, abs=1e-9)
    assert loop.project(t.x, t.z).lateral == pytest.approx(0.4, abs=1e-3)


def test_first_crossing_starts_the_clock_and_each_next_one_completes_a_lap(loop: Track) -> None:
    sim, expert = Simulator(loop, camera=None), ExpertDriver(loop)
    crossings: list[float] = []
    progress: list[float] = []
    lap_counts: list[int] = []
    at_first_lap = None
    while sim.telemetry(0).lap_count < 2:
        t = expert_step(sim, expert)
        progress.append(t.progress)
        lap_counts.append(t.lap_count)
        if t.crossed_start:
            crossings.append(t.time)
            if t.lap_count == 1:
                at_first_lap = t.progress
        assert t.time < 60.0, "expert did not complete two laps"
    assert len(crossings) == 3
    assert crossings[0] < 0.7  # 1 unit from rest at ~20 units/s^2: 0.32 s, rounded up to a step
    t = sim.telemetry(0)
    assert t.lap_times == pytest.approx((crossings[1] - crossings[0], crossings[2] - crossings[1]))
    assert t.last_lap_time == t.lap_times[-1]
    # a lap is one whole track length after the first crossing (which is 1 unit after the start)
    assert at_first_lap == pytest.approx(loop.length + SimConfig().start_behind, abs=2.5)
    # lap_count only moves on crossing steps, by one
    assert np.all(np.diff(lap_counts) >= 0) and np.sum(np.diff(lap_counts)) == 2
    assert np.all(np.diff(progress) >= 0)
    assert 5.0 < t.lap_times[0] < 20.0


def test_circling_over_the_start_line_never_counts_a_lap(loop: Track) -> None:
    sim = Simulator(loop, camera=None)
    crossed = 0
    prog: list[float] = []
    xs: list[float] = []
    for _ in range(1200):  # 60 s of full-lock circles (radius ~5.6) around the start line
        t = step(sim, 1.0, 0.12)
        crossed += t.crossed_start
        prog.append(t.progress)
        xs.append(loop.project(t.x, t.z).s)
    s = np.array(xs)
    # the car really went back and forth across the line, many times
    before, after = s > loop.length / 2, s < loop.length / 2
    assert np.sum(before[1:] & after[:-1]) >= 5 and np.sum(after[1:] & before[:-1]) >= 5
    t = sim.telemetry(0)
    assert t.lap_count == 0 and t.lap_times == ()
    assert crossed == 1, "only the first forward crossing counts (it starts the clock)"
    assert max(prog) < 2 * 5.6 + 1.0
    assert np.all(np.diff(prog) >= 0)


def test_reversing_back_over_the_line_and_recrossing_does_not_restart_or_count(loop: Track) -> None:
    sim, expert = Simulator(loop, camera=None), ExpertDriver(loop)
    crossings = 0
    while sim.telemetry(0).progress < 6.0:
        crossings += expert_step(sim, expert).crossed_start
    assert crossings == 1
    clock = float(sim.lap_start[0])  # the lap clock started at that crossing
    assert 0.0 < clock < sim.telemetry(0).time
    # brake, then reverse gear back over the start line to ~8 units behind it
    while sim.telemetry(0).forward_vel > 0:
        step(sim, 0.0, 0.0, 1.0)
    signed_s = []
    while True:
        t = step(sim, 0.0, -0.5)
        s = loop.project(t.x, t.z).s
        s = s - loop.length if s > loop.length / 2 else s
        signed_s.append(s)
        assert not t.crossed_start
        if s < -8.0:
            break
    assert max(signed_s) > 3.0 and min(signed_s) < -8.0
    peak = t.progress
    assert peak >= 5.0  # progress kept its maximum while reversing
    # forward again over the line: no new clock start, no lap
    while loop.project(sim.telemetry(0).x, sim.telemetry(0).z).s > loop.length / 2 or \
            sim.telemetry(0).progress <= peak + 5.0:
        t = expert_step(sim, expert)
        assert not t.crossed_start, "re-crossing the line forwards must not count"
        assert t.time < 30.0
    assert t.lap_count == 0 and float(sim.lap_start[0]) == clock
    # the lap, when it comes, is timed from the first crossing (reversing time included)
    while sim.telemetry(0).lap_count == 0:
        t = expert_step(sim, expert)
    assert t.lap_count == 1 and t.last_lap_time == pytest.approx(t.time - clock)


def test_driving_a_whole_lap_the_wrong_way_gives_no_lap_and_no_progress(loop: Track) -> None:
    sim = Simulator(loop, camera=None)
    sim.state[0, ph.S_YAW] += math.pi  # turned round at the spawn point
    wrong_way = ExpertDriver(reversed_track(loop))
    travelled, steps = 0.0, 0
    while travelled < loop.length + 30.0:
        t = sim.telemetry(0)
        s, th, b = wrong_way.act(t.x, t.z, t.yaw, t.speed)
        t = step(sim, s, th, b)
        travelled += t.speed * 0.05
        steps += 1
        assert not t.crossed_start and t.lap_count == 0 and t.progress == 0.0
        assert abs(t.cte) < 3.0, "the wrong-way driver left the road: the test would prove nothing"
        assert steps < 2000
    assert sim.s_u[0] < -loop.length  # it really went round (unwrapped arc length)


def test_open_road_has_no_laps_and_an_end(loop: Track) -> None:
    road = Track.from_waypoints("road", np.array([[0.0, z] for z in range(0, 81, 10)], float), 3.0,
                                closed=False)
    sim, expert = Simulator(road, camera=None), ExpertDriver(road)
    t = sim.telemetry(0)
    assert (t.x, t.z) == pytest.approx((0.0, 0.0))  # open roads start at the first sample
    while not sim.at_end_of_road(0):
        t = expert_step(sim, expert)
        assert not t.crossed_start and t.lap_count == 0
        assert t.time < 20.0
    assert t.progress == pytest.approx(road.length, abs=3.0)


# ------------------------------------------------------------------------------------ barriers
@pytest.mark.parametrize("steer", [1.0, -1.0])
def test_touching_a_barrier_reports_a_hit_and_stops_the_car(steer: float) -> None:
    monaco = get_track("mini_monaco")
    assert monaco.barriers
    sim = Simulator(monaco, camera=None)
    for _ in range(200):
        t = step(sim, steer, 0.6)
        if t.hit != "none":
            break
    assert t.hit == "barrier"
    idx = t.path_index
    wall = (monaco.lat_right[idx] + monaco.barrier_margin - CAR_HALF_WIDTH if steer > 0 else
            monaco.lat_left[idx] - monaco.barrier_margin + CAR_HALF_WIDTH)
    assert t.cte == pytest.approx(wall, abs=1e-6)  # pushed back against the wall
    assert t.forward_vel == 0.0
    # reversing away from the wall: no hit any more
    for _ in range(10):
        t = step(sim, 0.0, -0.5)
    assert t.hit == "none" and abs(t.cte) < abs(wall)


def test_no_barriers_means_no_hit_but_off_track(loop: Track) -> None:
    oval = get_track("oval")
    assert not oval.barriers
    sim = Simulator(oval, camera=None)
    off = False
    for _ in range(100):
        t = step(sim, 1.0, 0.5)
        assert t.hit == "none"
        off |= t.off_track
        assert t.off_track == (t.cte > oval.lat_right[t.path_index] or t.cte < oval.lat_left[t.path_index])
    assert off


# ------------------------------------------------------------------------------------ determinism
def test_same_inputs_give_identical_state_arrays() -> None:
    monaco = get_track("mini_monaco")
    sims = [Simulator(monaco, n_cars=3, camera=None) for _ in range(2)]
    rng = np.random.default_rng(7)
    controls = rng.uniform([-1, -0.3, 0], [1, 1, 0.2], size=(300, 3, 3))
    for c in controls:
        for sim in sims:
            sim.step(c[:, 0], c[:, 1], c[:, 2])
    a, b = sims
    for name in ("state", "s_u", "s_u_max", "cte", "hint", "lap_count", "time", "off_track"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.telemetry(2) == b.telemetry(2)
    # cars are independent: car 1 alone with its own controls ends in the same state
    solo = Simulator(monaco, camera=None)
    for c in controls:
        solo.step(c[1:2, 0], c[1:2, 1], c[1:2, 2])
    np.testing.assert_array_equal(solo.state[0], a.state[1])
    assert not np.array_equal(a.state[0], a.state[1])


def test_set_track_moves_every_car_to_the_new_start(loop: Track) -> None:
    sim = Simulator(loop, n_cars=2, camera=None)
    for _ in range(20):
        sim.step(np.zeros(2), np.ones(2))
    oval = get_track("oval")
    sim.set_track(oval)
    for i in range(2):
        t = sim.telemetry(i)
        assert (t.x, t.z) == pytest.approx(tuple(oval.point_at(-1.0)), abs=1e-9)
        assert t.progress == 0.0 and t.time == 0.0 and t.speed == 0.0


# ------------------------------------------------------------------------------------ trade-off
def test_full_throttle_does_not_lap_a_twisty_track_cleanly_but_the_expert_does() -> None:
    """Speed is a real trade-off: the same pure-pursuit steering at full throttle crashes."""
    monaco = get_track("mini_monaco")
    results = {}
    for mode in ("expert", "full_throttle"):
        sim, expert = Simulator(monaco, camera=None), ExpertDriver(monaco)
        hits, off, max_cte = 0, 0, 0.0
        for _ in range(1200):  # 60 s: the expert needs ~20 s per lap
            t = expert_step(sim, expert, throttle=1.0 if mode == "full_throttle" else None)
            hits += t.hit != "none"
            off += t.off_track
            if t.time > 2.0:  # distance from the expert's line once it is on it
                max_cte = max(max_cte, abs(t.cte - expert.line_lat[t.path_index]))
            if t.lap_count >= 1:
                break
        results[mode] = (t.lap_count, hits, off, max_cte)
    laps, hits, off, max_cte = results["expert"]
    assert laps == 1 and hits == 0 and off == 0 and max_cte < 1.0
    laps, hits, off, max_cte = results["full_throttle"]
    assert hits > 0, results
    assert laps == 0 or off > 0


def test_full_throttle_leaves_the_road_where_the_expert_stays_on_it() -> None:
    """On a narrow track without barriers full throttle cuts corners off the road."""
    warehouse = get_track("warehouse")
    off = {}
    for mode in ("expert", "full_throttle"):
        sim, expert = Simulator(warehouse, camera=None), ExpertDriver(warehouse)
        n = 0
        while sim.telemetry(0).lap_count == 0 and sim.telemetry(0).time < 60.0:
            t = expert_step(sim, expert, throttle=1.0 if mode == "full_throttle" else None)
            n += t.off_track
        off[mode] = n
    assert off["expert"] == 0 and off["full_throttle"] > 10


# ------------------------------------------------------------------------------------ many tracks
def test_cars_on_different_tracks_step_like_solo_simulators() -> None:
    """set_track(track, car) puts one car on its own track; the batched step (one compiled call
    over all cars) gives each car exactly what a one-car simulator on that track gives."""
    names = ["generated_track", "mini_monaco", "mountain_track"]
    sim = Simulator(get_track(names[0]), n_cars=3, camera=None)
    sim.set_track(get_track(names[1]), car=1)
    sim.set_track(get_track(names[2]), car=2)
    assert [t.name for t in sim.tracks] == names and sim.track.name == names[0]
    solos = [Simulator(get_track(n), camera=None) for n in names]
    rng = np.random.default_rng(3)
    for _ in range(150):
        c = rng.uniform([-0.6, 0.2, 0.0], [0.6, 0.8, 0.1], size=(3, 3))
        sim.step(c[:, 0], c[:, 1], c[:, 2])
        for i, solo in enumerate(solos):
            solo.step(c[i:i + 1, 0], c[i:i + 1, 1], c[i:i + 1, 2])
    for i, solo in enumerate(solos):
        np.testing.assert_array_equal(sim.state[i], solo.state[0])
        assert sim.telemetry(i) == solo.telemetry(0)
    # moving one car to another track resets only that car
    before = sim.state[0].copy()
    sim.set_track(get_track("oval"), car=2)
    np.testing.assert_array_equal(sim.state[0], before)
    assert sim.telemetry(2).progress == 0.0 and sim.tracks[2].name == "oval"
    with pytest.raises(ValueError, match="car must be"):
        sim.set_track(get_track("oval"), car=3)


def test_readout_matches_telemetry_for_every_car() -> None:
    sim = Simulator(get_track("mountain_track"), n_cars=4, camera=None)
    sim.set_track(get_track("warehouse"), car=3)
    rng = np.random.default_rng(0)
    for _ in range(60):
        sim.step(rng.uniform(-0.3, 0.3, 4), rng.uniform(0.3, 0.9, 4))
    r = sim.readout()
    for i in range(4):
        t = sim.telemetry(i)
        for name in ("x", "y", "z", "yaw", "pitch", "roll", "speed", "forward_vel", "vel_x", "cte",
                     "heading_error", "progress", "lap_count", "last_lap_time", "off_track", "time",
                     "steering", "throttle", "path_index", "crossed_start"):
            assert getattr(r, name)[i] == pytest.approx(getattr(t, name)), name
        assert (t.hit != "none") == r.hit[i]
        assert r.track_length[i] == sim.tracks[i].length
    r.x[0] = 1e9  # fresh arrays: the simulator is not touched
    assert sim.telemetry(0).x != 1e9


# ------------------------------------------------------------------------------------ hills
def _ramp(grade: float) -> Track:
    """A straight open road along +z climbing ``grade`` units per unit."""
    z = np.arange(0.0, 301.0, 10.0)
    return Track.from_waypoints("ramp", np.stack([np.zeros_like(z), z], axis=1), 4.0, closed=False,
                                heights=grade * z)


def test_height_pitch_and_roll_follow_the_road() -> None:
    sim = Simulator(_ramp(0.1), camera=None)
    for _ in range(40):
        t = step(sim, 0.0, 0.8)
    assert t.y == pytest.approx(0.1 * t.z, abs=1e-6)
    assert t.pitch == pytest.approx(-math.atan(0.1), abs=1e-6)  # climbing: nose up = negative
    assert abs(t.roll) < 1e-9
    # turned 90 degrees right on the slope: the left side is uphill -> right side down -> roll < 0
    sim.state[0, ph.S_YAW] = math.pi / 2
    sim.state[0, ph.S_V] = 0.0
    t = step(sim, 0.0, 0.0, 1.0)
    assert t.roll == pytest.approx(-math.atan(0.1), abs=1e-3) and abs(t.pitch) < 1e-3


def test_gravity_slows_a_climbing_car_and_rolls_a_parked_one_back() -> None:
    flat, hill = Simulator(_ramp(0.0), camera=None), Simulator(_ramp(0.1), camera=None)
    for sim in (flat, hill):
        sim.state[0, ph.S_V] = 20.0
        for _ in range(20):
            t = step(sim, 0.0, 0.0)
    g = ph.CarParams().gravity
    # one second of coasting: the hill costs about g sin(atan 0.1) ~ 7.8 units/s more
    dv = flat.telemetry(0).forward_vel - hill.telemetry(0).forward_vel
    assert dv == pytest.approx(g * 0.1 / math.sqrt(1.01), rel=0.1)
    parked = Simulator(_ramp(0.1), camera=None)
    parked.state[0, ph.S_Z] = 100.0
    for _ in range(20):
        t = step(parked, 0.0, 0.0)
    assert t.forward_vel < -1.0
    held = Simulator(_ramp(0.1), camera=None)
    held.state[0, ph.S_Z] = 100.0
    for _ in range(20):
        t = step(held, 0.0, 0.0, 1.0)
    assert t.forward_vel == 0.0


def test_real_hilly_scenes_report_height_and_pitch() -> None:
    track = get_track("mountain_track")
    sim, expert = Simulator(track, camera=None), ExpertDriver(track)
    ys, pitches = [], []
    while sim.telemetry(0).lap_count < 1:
        t = expert_step(sim, expert)
        ys.append(t.y)
        pitches.append(t.pitch)
    assert np.ptp(ys) > 4.0 and max(np.abs(pitches)) > 0.05
    assert t.y == pytest.approx(track.height_at(track.project(t.x, t.z).s), abs=0.05)


# ------------------------------------------------------------------------------------ walls, cones
def test_driving_into_a_cone_is_a_hit_and_stops_the_car() -> None:
    z = np.arange(0.0, 101.0, 10.0)
    track = Track.from_waypoints("coned", np.stack([np.zeros_like(z), z], axis=1), 4.0, closed=False,
                                 cones=[(0.0, 30.0, 0.35, 1.3)])
    sim = Simulator(track, camera=None)
    for _ in range(100):
        t = step(sim, 0.0, 0.6)
        if t.hit != "none":
            break
    assert t.hit == "cone" and t.forward_vel == 0.0
    assert math.hypot(t.x, t.z - 30.0) == pytest.approx(0.35 + CAR_HALF_WIDTH)


def test_mountain_walls_stop_the_car() -> None:
    track = get_track("mountain_track")
    sim = Simulator(track, camera=None)
    assert sim.telemetry(0).cte == pytest.approx(track.start_lateral)  # spawns in the right lane
    for _ in range(200):
        t = step(sim, 1.0, 0.6)
        if t.hit != "none":
            break
    assert t.hit == "barrier"
    _, right = track.solid_wall_lats()
    assert t.cte == pytest.approx(right[t.path_index] - CAR_HALF_WIDTH, abs=1e-6)
