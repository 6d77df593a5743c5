"""The ray-cast lidar: ray layout as the simulator reports it, exact distances to simple scenes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from donkeyrl.donkey import protocol as P
from donkeyrl.donkey.camera_rig import ORIGIN_HEIGHT
from donkeyrl.donkey.lidar import MAX_RAYS, LidarSettings, Obstacles, scan
from donkeyrl.donkey.scene import track_obstacles
from donkeyrl.sim.track import Track


def settings(**fields) -> LidarSettings:
    return LidarSettings.from_message(P.LidarConfig(**fields))


def gym_decode(points, inc, levels, delta):
    """gym-donkeycar's process_lidar_packet: (levels x sweep) array, -1 where nothing was hit."""
    per_sweep = int(360 / inc)
    out = np.full(levels * per_sweep, -1.0)
    for p in points:
        out[per_sweep * round(abs(p["ry"] / delta)) + round(abs(p["rx"] / inc))] = p["d"]
    return out


def wall(x0, z0, x1, z1, h=1.0) -> np.ndarray:
    return np.array([[x0, z0, x1, z1, h]], dtype=float)


def test_ray_layout_matches_the_simulator_and_gym_decoding():
    s = settings(degPerSweepInc=3.0, degAngDown=20.0, degAngDelta=-2.0, numSweepsLevels=4)
    dirs, rx, ry = s.rays
    assert len(dirs) == 120 * 4
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1.0)
    assert list(rx[:3]) == [0.0, 3.0, 6.0] and rx[120] == 0.0 and list(ry[[0, 119, 120, 479]]) == [0, 0, -2, -6]
    # first ray: forward, 20 degrees down; the 30th (90 degrees clockwise) points right
    assert dirs[0] == pytest.approx([0.0, -math.sin(math.radians(20)), math.cos(math.radians(20))])
    assert dirs[30, 0] > 0.9 and abs(dirs[30, 2]) < 1e-9
    # each level is 2 degrees further up (degAngDelta -2)
    assert math.degrees(math.asin(-dirs[120, 1])) == pytest.approx(18.0)
    points = scan(s, 0.0, 0.0, 0.0, Obstacles())
    grid = gym_decode(points, 3.0, 4, -2.0)
    assert np.all(grid > 0)  # every downward ray hits the ground and lands in its own cell
    height = 0.5 + ORIGIN_HEIGHT  # the lidar's offset_y is above the car's origin
    assert grid[0] == pytest.approx(height / math.sin(math.radians(20)), abs=1e-4)  # sent to 4 decimals


def test_ground_only_within_max_range():
    s = settings(degAngDown=1.0, maxRange=20.0)  # ground at >= 0.5 / sin(1 deg) = 28.6: too far
    assert scan(s, 0.0, 0.0, 0.0, Obstacles()) == []
    up = settings(degAngDown=-5.0)
    assert scan(up, 0.0, 0.0, 0.0, Obstacles()) == []


def test_wall_distance_and_direction_in_the_world_frame():
    s = settings()  # horizontal sweep, lidar 0.5 ahead and 0.5 up
    # car at (10, 5) heading +x (yaw 90 deg): the lidar is at (10.5, 5); a wall across x = 20
    points = scan(s, 10.0, 5.0, math.pi / 2, Obstacles(walls=wall(20, -50, 20, 50)))
    by_rx = {p["rx"]: p["d"] for p in points}
    assert by_rx[0.0] == pytest.approx(9.5)
    assert by_rx[60.0] == pytest.approx(9.5 / math.cos(math.radians(60)))
    assert 180.0 not in by_rx and 90.0 not in by_rx  # behind / parallel: nothing
    low = scan(s, 10.0, 5.0, math.pi / 2, Obstacles(walls=wall(20, -50, 20, 50, h=0.45)))
    assert low == []  # the rays pass over a wall lower than the lidar


def test_cylinders_and_boxes():
    s = settings(degPerSweepInc=1.0)
    cone = np.array([[0.0, 10.5, 0.5, 1.0]])  # 10 ahead of the lidar (at z = 0.5), radius 0.5
    (hit,) = [p for p in scan(s, 0.0, 0.0, 0.0, Obstacles(cylinders=cone)) if p["rx"] == 0.0]
    assert hit["d"] == pytest.approx(9.5)
    car = np.array([[5.0, 0.5, math.pi / 2, 1.1, 0.7, 0.9]])  # a car 5 to the right, sideways
    right = [p for p in scan(s, 0.0, 0.0, 0.0, Obstacles(boxes=car)) if p["rx"] == 90.0]
    assert right and right[0]["d"] == pytest.approx(5.0 - 1.1)


def test_barriers_of_a_track_are_walls():
    ang = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    track = Track.from_waypoints("ring", np.stack([60 * np.sin(ang), 60 * np.cos(ang)], axis=1), 4.0,
                                 closed=True, barriers=True, barrier_margin=0.6)
    x, z, yaw = track.start_pose()
    low = settings(offset_x=0.0, offset_y=0.2, offset_z=0.5)  # well below the barriers' top
    by_rx = {p["rx"]: p["d"] for p in scan(low, x, z, yaw, track_obstacles(track))}
    # straight left and right of the car the walls stand 4 + 0.6 from the path (a radius-60 bend
    # and the lidar's 0.5 forward offset change that by a few hundredths)
    assert by_rx[90.0] == pytest.approx(4.6, abs=0.05)
    assert by_rx[270.0] == pytest.approx(4.6, abs=0.05)
    open_ring = Track.from_waypoints("open", track.points[::20], 4.0, closed=True)
    assert track_obstacles(open_ring).walls.shape == (0, 5)


@pytest.mark.parametrize("fields, match", [
    ({"degPerSweepInc": 0.0}, "degPerSweepInc"),
    ({"degPerSweepInc": 0.01, "numSweepsLevels": 10}, f"at most {MAX_RAYS}"),
    ({"maxRange": -1.0}, "maxRange"),
    ({"numSweepsLevels": -2}, "numSweepsLevels"),
    ({"rot_x": 95.0}, "rot_x"),
])
def test_impossible_configs_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        settings(**fields)


def test_offsets_and_rot_x_keep_their_value_when_zero():
    first = settings(offset_x=0.1, offset_y=0.8, offset_z=0.2, rot_x=5.0)
    again = LidarSettings.from_message(P.LidarConfig(offset_x=0, offset_y=0, offset_z=0, rot_x=0), first)
    assert again.offset == (0.1, 0.8, 0.2) and again.rot_x == 5.0
