"""Track geometry on shapes whose answers are known by hand: straights, circles, a bend.

Conventions under test (track.py): yaw 0 faces +z, forward = (sin yaw, cos yaw), right =
(cos yaw, -sin yaw); cte/lateral positive = right of the path; curvature positive = turning right.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from donkeyrl.sim.track import Track, TrackError

R = 20.0


def straight(half_width: float = 3.0, path_offset: float = 0.0) -> Track:
    """Open straight along +z from (0, 0) to (0, 60)."""
    wp = np.array([[0.0, z] for z in np.arange(0.0, 61.0, 5.0)])
    return Track.from_waypoints("straight", wp, half_width, closed=False, path_offset=path_offset)


def circle(clockwise: bool, radius: float = R) -> Track:
    """Closed circle around the origin starting at (0, radius).

    ``clockwise`` (seen from above with x right and z up) starts towards +x: with yaw turning
    clockwise, that is a right-hand turn the whole way round.
    """
    th = np.linspace(0.0, 2 * np.pi, 73)[:-1]
    sgn = 1.0 if clockwise else -1.0
    wp = np.stack([sgn * radius * np.sin(th), radius * np.cos(th)], axis=1)
    return Track.from_waypoints(f"circle_{'cw' if clockwise else 'ccw'}", wp, 4.0, closed=True)


def on_circle(angle: float, radius: float, clockwise: bool) -> tuple[float, float]:
    sgn = 1.0 if clockwise else -1.0
    return sgn * radius * math.sin(angle), radius * math.cos(angle)


# ------------------------------------------------------------------------------------ straight
def test_straight_cte_is_positive_right_of_the_path() -> None:
    tr = straight()
    assert tr.length == pytest.approx(60.0, abs=1e-6)
    x0, z0, yaw0 = tr.start_pose()
    assert (x0, z0) == pytest.approx((0.0, 0.0), abs=1e-9) and yaw0 == pytest.approx(0.0, abs=1e-9)
    # yaw 0 faces +z, so the right-hand side is +x
    for x, want in ((1.0, 1.0), (-2.0, -2.0), (0.0, 0.0), (2.9, 2.9)):
        p = tr.project(x, 10.0)
        assert p.lateral == pytest.approx(want, abs=1e-9)
        assert p.s == pytest.approx(10.0, abs=1e-9)
    assert tr.lat_left == pytest.approx(-3.0) and tr.lat_right == pytest.approx(3.0)


def test_straight_progress_and_ends() -> None:
    tr = straight()
    for z in (0.0, 7.3, 33.3, 59.0):
        assert tr.project(0.5, z).s == pytest.approx(z, abs=1e-9)
    # beyond the ends the projection clamps to the end points
    assert tr.project(0.0, -5.0).s == pytest.approx(0.0, abs=1e-9)
    assert tr.project(0.0, 80.0).s == pytest.approx(60.0, abs=0.51)
    np.testing.assert_allclose(tr.point_at(25.0), [0.0, 25.0], atol=1e-9)


def test_straight_heading_error_sign_and_wrap() -> None:
    tr = straight()
    assert tr.heading_error(0.0, 10.0, 0.3) == pytest.approx(0.3)
    assert tr.heading_error(0.0, 10.0, -0.3) == pytest.approx(-0.3)
    assert tr.heading_error(0.0, 10.0, 2 * math.pi - 0.2) == pytest.approx(-0.2)
    assert abs(tr.heading_error(0.0, 10.0, math.pi)) == pytest.approx(math.pi)
    assert tr.curvature_ahead(10.0, [0.0, 5.0, 20.0]) == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)


def test_path_offset_moves_the_path_into_the_right_lane() -> None:
    hw = 4.0
    tr = straight(half_width=hw, path_offset=hw / 2)
    # the path is the right-lane centre: x = +2; road edges at x = -4 and +4
    np.testing.assert_allclose(tr.points[:, 0], hw / 2, atol=1e-9)
    np.testing.assert_allclose(tr.lat_left, -1.5 * hw)
    np.testing.assert_allclose(tr.lat_right, 0.5 * hw)
    np.testing.assert_allclose(tr.centre_lat, -hw / 2)
    assert tr.project(0.0, 20.0).lateral == pytest.approx(-hw / 2)   # on the painted centre line
    assert tr.project(hw / 2, 20.0).lateral == pytest.approx(0.0, abs=1e-9)
    assert tr.project(hw, 20.0).lateral == pytest.approx(hw / 2)     # on the right edge
    left = straight(half_width=hw, path_offset=-hw / 2)
    np.testing.assert_allclose(left.points[:, 0], -hw / 2, atol=1e-9)


def test_varying_width_is_interpolated_along_the_track() -> None:
    wp = np.array([[0.0, z] for z in np.arange(0.0, 41.0, 10.0)])
    tr = Track.from_waypoints("narrowing", wp, np.array([5.0, 4.0, 3.0, 2.0, 1.0]), closed=False)
    i = int(np.argmin(np.abs(tr.s - 20.0)))
    assert tr.edges_at(i) == pytest.approx((-3.0, 3.0), abs=0.05)
    assert tr.lat_right[0] == pytest.approx(5.0) and tr.lat_right[-1] == pytest.approx(1.0, abs=0.05)


# ------------------------------------------------------------------------------------ circles
@pytest.mark.parametrize("clockwise", [True, False])
def test_circle_length_curvature_and_start(clockwise: bool) -> None:
    tr = circle(clockwise)
    assert tr.length == pytest.approx(2 * math.pi * R, rel=1e-3)
    sign = 1.0 if clockwise else -1.0  # clockwise = right-hand turn = positive curvature
    np.testing.assert_allclose(tr.curvature, sign / R, rtol=0.01)
    np.testing.assert_allclose(tr.curvature_ahead(3.0, [0.0, 10.0, 50.0, 200.0]), sign / R, rtol=0.01)
    x, z, yaw = tr.start_pose()
    assert (x, z) == pytest.approx((0.0, R), abs=1e-6)
    assert yaw == pytest.approx(sign * math.pi / 2, abs=1e-3)  # facing +x (cw) or -x (ccw)


@pytest.mark.parametrize("clockwise", [True, False])
def test_circle_cte_sign_inside_and_outside(clockwise: bool) -> None:
    tr = circle(clockwise)
    # On a right-hand (clockwise) circle the centre is on the right: inside = positive cte.
    inside_sign = 1.0 if clockwise else -1.0
    for angle in (0.3, 1.7, 4.0):
        for r in (R - 3.0, R - 0.5, R + 1.0, R + 3.5):
            p = tr.project(*on_circle(angle, r, clockwise))
            assert p.lateral == pytest.approx(inside_sign * (R - r), abs=0.01), (angle, r)


@pytest.mark.parametrize("clockwise", [True, False])
def test_circle_progress_is_arc_length_from_the_start(clockwise: bool) -> None:
    tr = circle(clockwise)
    for angle in (0.1, 1.0, 2.5, 5.0, 6.2):
        for r in (R - 2.0, R, R + 2.0):  # lateral offsets project to the same arc length
            p = tr.project(*on_circle(angle, r, clockwise))
            assert p.s == pytest.approx(R * angle, abs=0.05), (angle, r)
        # path heading at that point is the tangent of the circle
        # (d/da of the position is (cos a, -sin a) cw, (-cos a, -sin a) ccw: yaw = +-(pi/2 + a))
        tangent = (math.pi / 2 + angle) * (1.0 if clockwise else -1.0)
        assert math.cos(p.heading - tangent) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("clockwise", [True, False])
def test_circle_heading_error_against_the_tangent(clockwise: bool) -> None:
    tr = circle(clockwise)
    angle = 1.0
    x, z = on_circle(angle, R, clockwise)
    # forward = (sin yaw, cos yaw) must equal the tangent (cos a, -sin a) cw, (-cos a, -sin a) ccw
    fwd = (math.cos(angle), -math.sin(angle)) if clockwise else (-math.cos(angle), -math.sin(angle))
    yaw = math.atan2(fwd[0], fwd[1])
    assert yaw == pytest.approx((math.pi / 2 + angle) * (1.0 if clockwise else -1.0))
    assert tr.heading_error(x, z, yaw) == pytest.approx(0.0, abs=2e-3)
    assert tr.heading_error(x, z, yaw + 0.25) == pytest.approx(0.25, abs=2e-3)
    assert tr.heading_error(x, z, yaw - 0.25 + 4 * math.pi) == pytest.approx(-0.25, abs=2e-3)


def test_projection_hint_gives_the_same_answer_as_a_full_search() -> None:
    tr = circle(True)
    rng = np.random.default_rng(0)
    for _ in range(50):
        angle, r = rng.uniform(0, 2 * np.pi), rng.uniform(R - 3, R + 3)
        full = tr.project(*on_circle(angle, r, True))
        near = tr.project(*on_circle(angle, r, True), hint=(full.index + 7) % tr.n)
        assert near.index == full.index and near.lateral == pytest.approx(full.lateral)
        assert near.s == pytest.approx(full.s)


# ------------------------------------------------------------------------------------ a bend
@pytest.mark.parametrize("turn", ["right", "left"])
def test_curvature_ahead_sees_a_bend_with_its_sign(turn: str) -> None:
    # 30 units straight, then a quarter circle of radius 10, then 20 units straight
    sgn = 1.0 if turn == "right" else -1.0
    phi = np.linspace(0.0, np.pi / 2, 9)
    straight_in = [[0.0, z] for z in np.arange(0.0, 30.0, 5.0)]
    arc = np.stack([sgn * (10.0 - 10.0 * np.cos(phi)), 30.0 + 10.0 * np.sin(phi)], axis=1)
    straight_out = [[sgn * (10.0 + d), 40.0] for d in (5.0, 10.0, 15.0, 20.0)]
    tr = Track.from_waypoints("bend", np.vstack([straight_in, arc, straight_out]), 3.0, closed=False)
    arc_mid = 30.0 + 10.0 * np.pi / 4
    k = tr.curvature_ahead(0.0, [10.0, arc_mid, 30.0 + 10 * np.pi / 2 + 15.0])
    assert k[0] == pytest.approx(0.0, abs=0.01)
    assert k[1] == pytest.approx(sgn * 0.1, rel=0.15)
    assert k[2] == pytest.approx(0.0, abs=0.01)
    assert tr.length == pytest.approx(30.0 + 5 * np.pi + 20.0, rel=0.01)


# ------------------------------------------------------------------------------------ invalid
def test_self_overlapping_and_degenerate_tracks_are_refused() -> None:
    with pytest.raises(TrackError, match="overlaps|tighter"):
        circle(True, radius=3.0)  # a bend tighter than the road's half-width of 4
    figure8 = np.array([[0, 0], [10, 10], [20, 0], [10, -10], [0, 0.5], [-10, 10], [-20, 0], [-10, -10]], float)
    with pytest.raises(TrackError, match="overlaps"):
        Track.from_waypoints("figure8", figure8, 2.0, closed=True)
    with pytest.raises(TrackError, match="half_width"):
        Track.from_waypoints("bad", np.array([[0, 0], [0, 10], [0, 20]], float), -1.0, closed=False)
    with pytest.raises(TrackError, match="waypoints"):
        Track.from_waypoints("short", np.array([[0, 0], [0, 10]], float), 1.0, closed=False)


# ------------------------------------------------------------------------------------ paint, scenery
def test_two_lane_model_and_scene_objects() -> None:
    """W 5, path 2 right of the road centre: edges -7/+3, paint at -6/-2/+2; walls and cones as data."""
    from donkeyrl.sim.track import Marking, Wall, two_lane_markings

    wp = np.array([[0.0, z] for z in np.arange(0.0, 61.0, 5.0)])
    tr = Track.from_waypoints("lanes", wp, 5.0, closed=False, path_offset=2.0, waypoints_are="path",
                              markings=two_lane_markings(5.0), walls=(Wall("right", "right", 0.5, 1.4, 5.0),),
                              cones=[(3.0, 20.0, 0.35, 1.3)])
    np.testing.assert_allclose(tr.points[:, 0], 0.0, atol=1e-9)  # the waypoints are the path
    assert (tr.lat_left[0], tr.lat_right[0], tr.centre_lat[0]) == pytest.approx((-7.0, 3.0, -2.0))
    lines = sorted(float(tr.anchor_lat(m.anchor)[0] + m.offset) for m in tr.markings)
    assert lines == pytest.approx([-6.0, -2.0, 2.0])
    objs = tr.scene_objects()
    assert objs.wall_segments.shape == (tr.n - 1, 4) and np.all(objs.wall_heights == 5.0)
    np.testing.assert_allclose(objs.wall_segments[:, [0, 2]], 3.5, atol=1e-9)  # x of the wall face
    assert objs.cones.tolist() == [[3.0, 20.0, 0.35, 1.3]]
    left, right = tr.solid_wall_lats()
    assert np.all(np.isinf(left)) and np.allclose(right, 3.5)
    with pytest.raises(TrackError, match="anchor"):
        Marking("middle", 0.0)
    with pytest.raises(TrackError, match="side"):
        Wall("up", "left", 0.0)


def test_barriers_become_solid_walls_at_the_margin() -> None:
    tr = straight()
    assert tr.all_walls == () and tr.scene_objects().wall_segments.shape == (0, 4)
    wp = np.array([[0.0, z] for z in np.arange(0.0, 61.0, 5.0)])
    walled = Track.from_waypoints("walled", wp, 3.0, closed=False, barriers=True, barrier_margin=0.6)
    left, right = walled.solid_wall_lats()
    assert np.allclose(left, -3.6) and np.allclose(right, 3.6)
