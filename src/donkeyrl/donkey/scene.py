"""One loaded scene shared by every connection that loads it: the basis of multi-car racing.

The DonkeyCar simulator puts every connected car into the one scene it has loaded: cars spawn on
a grid behind the start (``CarSpawner``: two columns 4.5 units apart, rows 5 units apart), see
each other, collide, and a collision is reported in telemetry ``hit`` as the other car's name.
A :class:`World` does the same for the protocol server: all connections that load the same scene
share it. Each car keeps its own one-car :class:`~donkeyrl.sim.simulator.Simulator` (the built-in
simulator's cars do not collide), stepped on its own clock (one period per ``control`` in fast
mode, 20 Hz in real time); car-to-car contact is resolved here, under the world's lock, after each
step: the car that moved into another is pushed back out along the shortest separating axis and
stops (like the built-in simulator's barriers), and both cars report the other's name.

Documented differences from the Unity simulator: ``exit_scene`` takes only the sending car back
to the menu (the simulator unloads the scene for every car), and a connection in the menu may
load any scene, so several worlds can run side by side. On an open road (generated_road) later
grid rows are placed ahead of the start instead of behind it, where there is no road; on a road
too narrow for two columns the grid is a single file.

Scene objects as plain data for the lidar (:func:`track_obstacles`) come from the track's
:meth:`~donkeyrl.sim.track.Track.scene_objects` (walls, fences, barriers, cones).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from dataclasses import dataclass

import numpy as np

from donkeyrl.donkey.camera_rig import CarShape
from donkeyrl.donkey.lidar import Obstacles
from donkeyrl.sim import physics as ph
from donkeyrl.sim.simulator import CAR_HALF_WIDTH, Simulator, Telemetry
from donkeyrl.sim.track import Track

log = logging.getLogger(__name__)

#: Half the car body's length and its height (units): the box other cars and the lidar see.
CAR_HALF_LENGTH = 1.1
CAR_HEIGHT = 0.9
#: Spawn grid of the simulator's CarSpawner (units): columns to the left, rows behind.
GRID_COLUMN = 4.5
GRID_ROW = 5.0
GRID_COLUMNS = 2
#: Gap (units) left between two cars after a contact pushes them apart.
CONTACT_GAP = 0.01
#: Default body colour (the simulator's car_config default, orange-red).
DEFAULT_COLOUR = (255, 72, 0)


@dataclass
class Car:
    """A car in a world. Mutated only under the world's lock."""

    sim: Simulator
    slot: int
    name: str
    colour: tuple[int, int, int] = DEFAULT_COLOUR
    #: Name of the car it touched since the last telemetry (reported once, then cleared).
    contact: str | None = None

    @property
    def pose(self) -> tuple[float, float, float]:
        """(x, z, yaw) of the car."""
        st = self.sim.state[0]
        return float(st[ph.S_X]), float(st[ph.S_Z]), float(st[ph.S_YAW])

    def shape(self) -> CarShape:
        """The box the cameras of other cars draw."""
        x, z, yaw = self.pose
        return CarShape(x, z, yaw, CAR_HALF_LENGTH, CAR_HALF_WIDTH, CAR_HEIGHT, self.colour)


@dataclass(frozen=True)
class Snapshot:
    """What a car's sensors need after a step, copied under the lock."""

    telemetry: Telemetry
    hit: str
    track: Track
    pose: tuple[float, float, float]
    others: tuple[CarShape, ...]


class World:
    """A scene (track) with the cars of every connection that loaded it."""

    def __init__(self, scene: str, track: Track, seed: int | None = None) -> None:
        self.scene = scene
        self.track = track
        #: Seed of the road (generated_road), for logs.
        self.seed = seed
        #: turn_increment last set by regen_road (None: the generator's default).
        self.turn_increment: float | None = None
        self.lock = threading.RLock()
        self.cars: list[Car] = []

    # ------------------------------------------------------------------ membership
    def add_car(self, name: str | None = None) -> Car:
        """Spawn a car in the first free grid slot."""
        with self.lock:
            used = {c.slot for c in self.cars}
            slot = next(i for i in range(len(self.cars) + 1) if i not in used)
            car = Car(Simulator(self.track, n_cars=1, camera=None), slot, name or f"car{slot}")
            self.cars.append(car)
            self.respawn(car)
            return car

    def remove_car(self, car: Car) -> None:
        """Take a car out (its connection left or went back to the menu)."""
        with self.lock:
            if car in self.cars:
                self.cars.remove(car)

    @property
    def empty(self) -> bool:
        """True when no car is left."""
        with self.lock:
            return not self.cars

    # ------------------------------------------------------------------ poses
    def slot_pose(self, slot: int) -> tuple[float, float, float]:
        """(x, z, yaw) of spawn slot ``slot``: the CarSpawner grid in the start pose's frame
        (slot 0 is the simulator's start pose; columns to the left, rows behind, or ahead on an
        open road)."""
        tr = self.track
        s0 = -car_start_behind(tr) if tr.closed else 0.0
        p0 = tr.point_at(s0)
        proj = tr.project(p0[0], p0[1])
        yaw = proj.heading
        fx, fz = math.sin(yaw), math.cos(yaw)
        lat_left = float(tr.lat_left[proj.index]) - float(tr.start_lateral)
        columns = GRID_COLUMNS if lat_left <= -(GRID_COLUMN + CAR_HALF_WIDTH) else 1
        col, row = slot % columns, slot // columns
        lat = float(tr.start_lateral) - GRID_COLUMN * col
        ahead = (-1.0 if tr.closed else 1.0) * GRID_ROW * row
        nx, nz = tr.normals[proj.index]
        return (float(p0[0] + nx * lat + fx * ahead), float(p0[1] + nz * lat + fz * ahead), yaw)

    def respawn(self, car: Car) -> None:
        """Reset the car (time, laps, motion) at its grid slot (``reset_car``)."""
        with self.lock:
            car.sim.reset()
            if car.slot:
                place(car.sim, *self.slot_pose(car.slot), keep_motion=False)
            car.contact = None

    def set_track(self, track: Track, seed: int | None = None) -> None:
        """A new road for everybody (``regen_road``): every car goes back to its slot."""
        with self.lock:
            self.track, self.seed = track, seed
            for car in self.cars:
                car.sim.set_track(track)
                self.respawn(car)

    def teleport(self, car: Car, x: float, z: float, yaw: float) -> None:
        """``set_position``: move the car, keeping its motion, time and laps."""
        with self.lock:
            place(car.sim, x, z, yaw, keep_motion=True)

    # ------------------------------------------------------------------ stepping
    def step(self, car: Car, steering: float, throttle: float, brake: float) -> Snapshot:
        """Advance the car one control period, resolve contacts, and snapshot its sensors' input."""
        with self.lock:
            car.sim.step(np.array([steering]), np.array([throttle]), np.array([brake]))
            self._contacts(car)
            return self.snapshot(car, clear_hit=True)

    def snapshot(self, car: Car, clear_hit: bool = False) -> Snapshot:
        """The car's telemetry and the other cars, without stepping."""
        with self.lock:
            t = car.sim.telemetry(0)
            hit = car.contact or str(t.hit)
            if clear_hit:
                car.contact = None
            others = tuple(c.shape() for c in self.cars if c is not car)
            return Snapshot(t, hit, self.track, car.pose, others)

    def _contacts(self, car: Car) -> None:
        """Push ``car`` out of any car it overlaps and record the contact on both."""
        for other in self.cars:
            if other is car:
                continue
            push = box_overlap(car.pose, other.pose)
            if push is None:
                continue
            st = car.sim.state[0]
            st[ph.S_X] += push[0]
            st[ph.S_Z] += push[1]
            st[ph.S_V] = 0.0
            st[ph.S_VLAT] = 0.0
            car.sim.cte[0] = car.sim.track.project(st[ph.S_X], st[ph.S_Z], int(car.sim.hint[0])).lateral
            car.contact, other.contact = other.name, car.name
            log.debug("%s touched %s in %s", car.name, other.name, self.scene)


def obstacles(track: Track, others: tuple[CarShape, ...]) -> Obstacles:
    """Everything a lidar can hit in a world: the track's walls and the other cars."""
    base = track_obstacles(track)
    if not others:
        return base
    boxes = np.array([[o.x, o.z, o.yaw, o.half_length, o.half_width, o.height] for o in others])
    return Obstacles(walls=base.walls, cylinders=base.cylinders, boxes=boxes)


def car_start_behind(track: Track) -> float:
    """How far behind the start line the simulator spawns a car on a closed track."""
    from donkeyrl.sim.simulator import SimConfig

    return SimConfig().start_behind if track.closed else 0.0


def place(sim: Simulator, x: float, z: float, yaw: float, *, keep_motion: bool) -> None:
    """Put the simulator's car at (x, z, yaw) and re-anchor its path tracking there.

    Mirrors what ``Simulator.reset`` does for the start pose: the projection hint, the unwrapped
    arc length (no lap is credited or lost by the move) and the cte follow the new position.
    """
    tr = sim.track
    proj = tr.project(x, z)
    st = sim.state[0]
    if not keep_motion:
        st[:] = 0.0
    st[ph.S_X], st[ph.S_Z], st[ph.S_YAW] = x, z, yaw
    if keep_motion and tr.closed:  # stay in the current lap: the next line crossing still counts
        s_at = proj.s + math.floor(sim.s_u[0] / tr.length) * tr.length
    else:  # like Simulator.reset: behind the line = a negative arc length
        s_at = proj.s - (tr.length if tr.closed and proj.s > tr.length / 2 else 0.0)
    sim.hint[0] = proj.index
    sim.s_u[0] = sim.s_u_max[0] = s_at
    if not keep_motion:
        sim.s_u_start[0] = s_at
    sim.cte[0] = proj.lateral
    sim.path_heading[0] = proj.heading
    sim.y[0] = np.asarray(tr.heights)[proj.index]  # pitch and roll follow at the next step
    st[ph.S_SLOPE] = tr.grade[proj.index] * math.cos(yaw - proj.heading)


def box_overlap(a: tuple[float, float, float], b: tuple[float, float, float]) -> tuple[float, float] | None:
    """Separating-axis test of two car boxes at poses (x, z, yaw): None when apart, else the
    smallest (dx, dz) that moves box ``a`` out of box ``b``."""
    ha, hb = (CAR_HALF_LENGTH, CAR_HALF_WIDTH), (CAR_HALF_LENGTH, CAR_HALF_WIDTH)
    axes_a = ((math.sin(a[2]), math.cos(a[2])), (math.cos(a[2]), -math.sin(a[2])))
    axes_b = ((math.sin(b[2]), math.cos(b[2])), (math.cos(b[2]), -math.sin(b[2])))
    d = (b[0] - a[0], b[1] - a[1])
    best: tuple[float, tuple[float, float]] | None = None
    for n in (*axes_a, *axes_b):
        ra = sum(h * abs(ax[0] * n[0] + ax[1] * n[1]) for h, ax in zip(ha, axes_a))
        rb = sum(h * abs(ax[0] * n[0] + ax[1] * n[1]) for h, ax in zip(hb, axes_b))
        dist = d[0] * n[0] + d[1] * n[1]
        overlap = ra + rb - abs(dist)
        if overlap <= 0.0:
            return None
        if best is None or overlap < best[0]:
            sign = -1.0 if dist > 0 else 1.0
            push = overlap + CONTACT_GAP  # leave a gap: resting cars do not touch again
            best = (overlap, (sign * n[0] * push, sign * n[1] * push))
    assert best is not None
    return best[1]


@functools.lru_cache(maxsize=32)
def track_obstacles(track: Track) -> Obstacles:
    """The track's vertical objects (:meth:`Track.scene_objects`: walls, fences, barriers, cones)
    as the lidar's plain arrays; cones become cylinders of their base radius."""
    objs = track.scene_objects()
    walls = np.column_stack([objs.wall_segments, objs.wall_heights]) if len(objs.wall_segments) else \
        np.zeros((0, 5))
    return Obstacles(walls=walls, cylinders=np.asarray(objs.cones, dtype=np.float64).reshape(-1, 4))
