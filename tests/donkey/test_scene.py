"""Shared worlds: spawn grid, car boxes, teleports and contacts (no network)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from donkeyrl.donkey.scene import (CAR_HALF_LENGTH, CONTACT_GAP, GRID_COLUMN, GRID_ROW, World,
                                   box_overlap, place, track_obstacles)
from donkeyrl.sim.simulator import CAR_HALF_WIDTH, Simulator
from donkeyrl.sim.track import Track


def ring(half_width: float, closed: bool = True) -> Track:
    ang = np.linspace(0, 2 * np.pi if closed else np.pi, 48, endpoint=not closed)
    pts = np.stack([80 * np.sin(ang), 80 * np.cos(ang)], axis=1)
    return Track.from_waypoints("ring", pts, half_width, closed=closed)


def test_box_overlap_pushes_the_first_box_out_along_the_shortest_axis():
    assert box_overlap((0, 0, 0), (0, 2 * CAR_HALF_LENGTH + 0.1, 0)) is None
    assert box_overlap((0, 0, 0), (2 * CAR_HALF_WIDTH + 0.1, 0, 0)) is None
    dx, dz = box_overlap((0, 0, 0), (0, 2.0, 0))  # nose to tail, 0.2 overlap
    assert dx == pytest.approx(0.0) and dz == pytest.approx(-(2 * CAR_HALF_LENGTH - 2.0) - CONTACT_GAP)
    a = (0.3, 0.0, 0.4)
    b = (1.0, 0.5, -0.2)
    push = box_overlap(a, b)
    assert push is not None
    assert box_overlap((a[0] + push[0], a[1] + push[1], a[2]), b) is None


def test_spawn_grid_like_the_simulators_car_spawner():
    wide = World("wide", ring(6.0))  # two columns fit: 4.5 left of the start
    x0, z0, yaw0 = wide.slot_pose(0)
    sim = Simulator(wide.track, camera=None)
    st = sim.state[0]
    assert (x0, z0) == pytest.approx((st[0], st[1]), abs=1e-6)
    fwd = np.array([math.sin(yaw0), math.cos(yaw0)])
    right = np.array([math.cos(yaw0), -math.sin(yaw0)])
    for slot, (lat, back) in enumerate([(0, 0), (-GRID_COLUMN, 0), (0, GRID_ROW), (-GRID_COLUMN, GRID_ROW)]):
        x, z, _ = wide.slot_pose(slot)
        d = np.array([x - x0, z - z0])
        assert d @ right == pytest.approx(lat, abs=0.2) and -(d @ fwd) == pytest.approx(back, abs=0.2)
    narrow = World("narrow", ring(3.0))  # single file
    x1, z1, _ = narrow.slot_pose(1)
    x0, z0, _ = narrow.slot_pose(0)
    assert math.hypot(x1 - x0, z1 - z0) == pytest.approx(GRID_ROW, abs=0.2)
    road = World("road", ring(6.0, closed=False))  # open road: later rows ahead of the start
    assert road.track.project(*road.slot_pose(2)[:2]).s == pytest.approx(GRID_ROW, abs=0.3)


def test_cars_join_free_slots_and_do_not_overlap():
    world = World("w", ring(6.0))
    cars = [world.add_car() for _ in range(5)]
    assert [c.slot for c in cars] == [0, 1, 2, 3, 4] and cars[3].name == "car3"
    world.remove_car(cars[1])
    assert world.add_car("late").slot == 1
    for i, a in enumerate(world.cars):
        for b in world.cars[i + 1:]:
            assert box_overlap(a.pose, b.pose) is None


def test_teleport_keeps_laps_and_reanchors_tracking():
    track = ring(5.0)
    sim = Simulator(track, camera=None)
    for _ in range(5):
        sim.step(0.0, 1.0)
    sim.s_u[0] = sim.s_u_max[0] = 1.2 * track.length  # as if a lap had been driven
    p = track.point_at(0.6 * track.length)
    proj = track.project(*p)
    place(sim, float(p[0]), float(p[1]), proj.heading, keep_motion=True)
    assert sim.s_u[0] == pytest.approx(1.6 * track.length, abs=0.5)
    assert sim.cte[0] == pytest.approx(0.0, abs=1e-6) and sim.state[0, 3] > 0  # still moving
    sim.step(0.0, 0.5)
    assert sim.telemetry(0).progress > 0 and abs(sim.telemetry(0).cte) < 0.5


def test_contact_is_resolved_and_reported_on_both_cars():
    world = World("w", ring(3.0))
    a, b = world.add_car("a"), world.add_car("b")  # b spawns 5 behind a
    for _ in range(80):
        snap = world.step(b, 0.0, 1.0, 0.0)
        if snap.hit != "none":
            break
    assert snap.hit == "a" and box_overlap(b.pose, a.pose) is None
    assert b.sim.state[0, 3] == 0.0  # stopped by the contact
    assert world.snapshot(a, clear_hit=True).hit == "b" and world.snapshot(a).hit == "none"


def test_track_obstacles_are_the_tracks_scene_objects():
    track = Track.from_waypoints("walled", ring(4.0).points[::8], 4.0, closed=True, barriers=True)
    obs = track_obstacles(track)
    objs = track.scene_objects()
    assert obs.walls.shape == (len(objs.wall_segments), 5) and len(obs.walls) > 0
    assert np.array_equal(obs.walls[:, 4], objs.wall_heights)
