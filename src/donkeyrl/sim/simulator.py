"""The built-in simulator: cars, their tracks, the bookkeeping a race needs, and the camera.

One :class:`Simulator` holds ``n_cars`` independent cars (they do not collide); every car may be
on its own track (:meth:`Simulator.set_track` with ``car=``), so a vector environment can train on
many tracks at once and still step all cars in ONE compiled call (physics, then tracking against
a packed copy of the distinct tracks' arrays) and render all frames in ONE batched parallel call
(:meth:`Simulator.render_all`). Time is simulated, never wall-clock: a control step is
``control_dt`` seconds (0.05 s, 20 Hz like the DonkeyCar simulator) made of ``physics_hz *
control_dt`` physics ticks (5 at 100 Hz), and everything is deterministic.

Read-outs: :meth:`Simulator.telemetry` gives one car's :class:`Telemetry`; :meth:`Simulator.readout`
gives every car at once as numpy arrays (:class:`CarArrays`), for vector environments that must
not build a dataclass per car per step.

Progress and laps are measured on the path, not by a start-line trigger: the projection onto the
path is unwrapped into a continuous arc length ``s_u`` and ``progress`` is the largest ``s_u``
reached since the reset. So driving backwards, circling near the start or re-driving the same
stretch never adds progress, and a lap needs the whole length of the track. Closed tracks start
``start_behind`` units before the start line, like the real simulator's spawn point, so the first
forward crossing starts the lap clock and the next one completes a lap. A track's
``start_lateral`` moves the spawn point sideways (the real simulator spawns some cars off the path).

Height: the road is level across and follows the track's height profile along it; a car's ``y``
is the road height under it, its ``pitch`` and ``roll`` (radians, the DonkeyCar simulator's
signs: pitch > 0 nose down, roll > 0 right side up) come from the road's slope, and gravity pulls
it back on climbs. Contacts: the car's side reaching a solid wall (``Track.solid_wall_lats``) or
its body reaching a cone stops it there and reports a hit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numba as nb
import numpy as np

from donkeyrl.sim import physics as ph
from donkeyrl.sim.track import PROJECT_WINDOW, Track, project_point

if TYPE_CHECKING:
    from donkeyrl.sim.appearance import Appearance

log = logging.getLogger(__name__)

#: Half the car's width (units): the body touches a barrier when its side reaches it.
CAR_HALF_WIDTH = 0.7
#: Hit kinds in :attr:`CarArrays.hit_kind` and their ``Telemetry.hit`` names.
HIT_NONE, HIT_WALL, HIT_CONE = 0, 1, 2
HIT_NAMES = ("none", "barrier", "cone")
#: Stand-in for "no wall on this side" in the packed arrays (units).
NO_WALL = 1.0e9


@dataclass(frozen=True)
class SimConfig:
    """Timing and car of a simulation."""

    #: Physics ticks per simulated second (the DonkeyCar simulator runs 100 Hz physics).
    physics_hz: int = 100
    #: Simulated seconds per control step (the DonkeyCar simulator sends telemetry at 20 Hz).
    control_dt: float = 0.05
    #: Physical constants of the car.
    car: ph.CarParams = field(default_factory=ph.CarParams)
    #: On closed tracks the car starts this far (units) behind the start line.
    start_behind: float = 1.0

    def __post_init__(self) -> None:
        if self.physics_hz < 1 or not self.control_dt > 0:
            raise ValueError(f"physics_hz must be >= 1 and control_dt > 0, got {self.physics_hz}, {self.control_dt}")
        if self.substeps < 1:
            raise ValueError(f"control_dt={self.control_dt} is shorter than one physics tick at {self.physics_hz} Hz")

    @property
    def substeps(self) -> int:
        """Physics ticks per control step."""
        return int(round(self.physics_hz * self.control_dt))

    @property
    def tick_dt(self) -> float:
        """Seconds per physics tick."""
        return self.control_dt / self.substeps


@dataclass(frozen=True)
class Telemetry:
    """Everything the simulator knows about one car after a step (simulator units, seconds, rad)."""

    x: float
    z: float
    yaw: float
    speed: float
    forward_vel: float
    vel_x: float
    vel_z: float
    yaw_rate: float
    accel_x: float
    accel_z: float
    cte: float
    heading_error: float
    progress: float
    lap_count: int
    last_lap_time: float
    lap_times: tuple[float, ...]
    hit: str
    off_track: bool
    time: float
    steering: float
    throttle: float
    path_index: int
    crossed_start: bool
    #: Height of the car (the road under it).
    y: float = 0.0
    #: Nose-down pitch and right-side-up roll (rad), the DonkeyCar simulator's signs.
    pitch: float = 0.0
    roll: float = 0.0


@dataclass(frozen=True)
class CarArrays:
    """Every car after the last step, one array entry per car (see :class:`Telemetry` for units).

    Fresh arrays each call (safe to keep). ``hit`` is True on a contact; ``hit_kind`` says which
    (:data:`HIT_NONE`, :data:`HIT_WALL`, :data:`HIT_CONE`; names in :data:`HIT_NAMES`).
    ``at_end_of_road`` is True once a car on an open road reached its end; ``track_length`` is
    the path length of each car's track.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    speed: np.ndarray
    forward_vel: np.ndarray
    vel_x: np.ndarray
    vel_z: np.ndarray
    yaw_rate: np.ndarray
    accel_x: np.ndarray
    accel_z: np.ndarray
    cte: np.ndarray
    heading_error: np.ndarray
    progress: np.ndarray
    lap_count: np.ndarray
    last_lap_time: np.ndarray
    hit: np.ndarray
    hit_kind: np.ndarray
    off_track: np.ndarray
    time: np.ndarray
    steering: np.ndarray
    throttle: np.ndarray
    path_index: np.ndarray
    crossed_start: np.ndarray
    at_end_of_road: np.ndarray
    track_length: np.ndarray


class _TrackPack:
    """The distinct tracks of a simulator's cars, concatenated for the compiled tracking kernel.

    Per-sample arrays of track k live at rows ``off[k]:off[k+1]``; cones at ``cone_off``.
    Rebuilt only when the set of distinct tracks changes (a few ms even for long tracks).
    """

    def __init__(self, tracks: list[Track]) -> None:
        self.tracks = tracks
        self.index = {id(t): k for k, t in enumerate(tracks)}
        walls = [t.solid_wall_lats() for t in tracks]
        self.points = np.ascontiguousarray(np.concatenate([t.points for t in tracks]))
        self.tangents = np.ascontiguousarray(np.concatenate([t.tangents for t in tracks]))
        self.s = np.concatenate([t.s for t in tracks])
        self.lat_left = np.concatenate([t.lat_left for t in tracks])
        self.lat_right = np.concatenate([t.lat_right for t in tracks])
        self.wall_left = np.concatenate([np.maximum(w[0], -NO_WALL) for w in walls])
        self.wall_right = np.concatenate([np.minimum(w[1], NO_WALL) for w in walls])
        self.heights = np.concatenate([t.heights for t in tracks])
        self.grade = np.concatenate([t.grade for t in tracks])
        self.off = np.cumsum([0] + [t.n for t in tracks]).astype(np.int64)
        self.length = np.array([t.length for t in tracks])
        self.closed = np.array([t.closed for t in tracks])
        self.cones = np.ascontiguousarray(np.concatenate([t.cones for t in tracks]).reshape(-1, 4))
        self.cone_off = np.cumsum([0] + [len(t.cones) for t in tracks]).astype(np.int64)

    def args(self) -> tuple:
        return (self.points, self.tangents, self.s, self.lat_left, self.lat_right, self.wall_left, self.wall_right,
                self.heights, self.grade, self.off, self.length, self.closed, self.cones, self.cone_off)


class Simulator:
    """``n_cars`` cars, each on its own track, stepped together; optionally rendered by the camera."""

    def __init__(self, track: Track, n_cars: int = 1, config: SimConfig | None = None,
                 camera: object | None = "default", seed: int | None = None) -> None:
        if n_cars < 1:
            raise ValueError(f"n_cars must be >= 1, got {n_cars}")
        self.config = config or SimConfig()
        self.n_cars = n_cars
        self._params = self.config.car.as_array()
        self.rng = np.random.default_rng(seed)
        self.state = ph.new_state(n_cars)
        self._controls = np.zeros((n_cars, 3))
        self.hint = np.zeros(n_cars, dtype=np.int64)
        self.s_u = np.zeros(n_cars)
        self.s_u_start = np.zeros(n_cars)
        self.s_u_max = np.zeros(n_cars)
        self.cte = np.zeros(n_cars)
        self.path_heading = np.zeros(n_cars)  # path heading at each car's projection (rad)
        self.heading_err = np.zeros(n_cars)   # car yaw minus path heading, wrapped to [-pi, pi]
        self.y = np.zeros(n_cars)
        self.pitch = np.zeros(n_cars)
        self.roll = np.zeros(n_cars)
        self.off_track = np.zeros(n_cars, dtype=np.bool_)
        self.hit = np.zeros(n_cars, dtype=np.bool_)
        self.hit_kind = np.zeros(n_cars, dtype=np.int64)
        self.crossed = np.zeros(n_cars, dtype=np.bool_)
        self.time = np.zeros(n_cars)
        self.lap_count = np.zeros(n_cars, dtype=np.int64)
        self.lap_start = np.full(n_cars, np.nan)
        self.last_lap_time = np.zeros(n_cars)
        self.lap_times: list[list[float]] = [[] for _ in range(n_cars)]
        self._camera_cfg = camera
        self.renderer = None
        if camera is not None:
            from donkeyrl.sim.camera import CameraConfig, Renderer  # lazy: rendering is optional

            self.renderer = Renderer(track, CameraConfig() if camera == "default" else camera)  # type: ignore[arg-type]
        self.appearances: list[Appearance | None] = [None] * n_cars
        self.tracks: list[Track] = [track] * n_cars
        self._car_track = np.zeros(n_cars, dtype=np.int64)
        self._pack: _TrackPack | None = None
        self.set_track(track)

    # ------------------------------------------------------------------ set-up
    @property
    def track(self) -> Track:
        """The track of car 0 (the track of every car unless cars were given their own)."""
        return self.tracks[0]

    def distinct_tracks(self) -> list[Track]:
        """The different tracks the cars are on, in first-use order."""
        seen: dict[int, Track] = {}
        for t in self.tracks:
            seen.setdefault(id(t), t)
        return list(seen.values())

    def set_track(self, track: Track, car: int | None = None) -> None:
        """Put car ``car`` (None = every car) on ``track`` (e.g. a regenerated road) and reset it."""
        if not isinstance(track, Track):
            raise TypeError(f"track must be a Track, got {type(track).__name__}")
        cars = range(self.n_cars) if car is None else [self._car(car)]
        for i in cars:
            self.tracks[i] = track
        distinct = self.distinct_tracks()
        if self._pack is None or [id(t) for t in self._pack.tracks] != [id(t) for t in distinct]:
            self._pack = _TrackPack(distinct)
            self._track_args = self._pack.args()
        self._car_track[:] = [self._pack.index[id(t)] for t in self.tracks]
        if self.renderer is not None and car is None:
            self.renderer.set_track(track)
        if car is None:
            self.reset()
        else:
            self.reset(car)

    def _car(self, car: int) -> int:
        if isinstance(car, bool) or not isinstance(car, (int, np.integer)) or not 0 <= car < self.n_cars:
            raise ValueError(f"car must be an integer in 0..{self.n_cars - 1}, got {car!r}")
        return int(car)

    def reset(self, car: int | None = None, *, lateral: float | np.ndarray = 0.0,
              yaw_offset: float | np.ndarray = 0.0) -> None:
        """Put car ``car`` (or all) at the start of its track, at rest, facing along the path.

        ``lateral`` (units, positive = right, added to the track's ``start_lateral``) and
        ``yaw_offset`` (rad) perturb the start pose, which environments use for start-position
        noise.
        """
        cars = np.arange(self.n_cars) if car is None else np.array([self._car(car)])
        lat = np.broadcast_to(np.asarray(lateral, dtype=np.float64), (self.n_cars,))
        dyaw = np.broadcast_to(np.asarray(yaw_offset, dtype=np.float64), (self.n_cars,))
        for i in cars:
            tr = self.tracks[i]
            s0 = -self.config.start_behind if tr.closed else 0.0
            p0 = tr.point_at(s0)
            proj = tr.project(p0[0], p0[1])
            nrm = tr.normals[proj.index]
            off = tr.start_lateral + lat[i]
            self.state[i] = 0.0
            self.state[i, ph.S_X] = p0[0] + nrm[0] * off
            self.state[i, ph.S_Z] = p0[1] + nrm[1] * off
            self.state[i, ph.S_YAW] = proj.heading + dyaw[i]
            self.state[i, ph.S_SLOPE] = tr.grade[proj.index] * np.cos(dyaw[i])
            self.hint[i] = proj.index
            s_start = proj.s - (tr.length if tr.closed and proj.s > tr.length / 2 else 0.0)
            self.s_u[i] = self.s_u_start[i] = self.s_u_max[i] = s_start
            self.cte[i] = off
            self.path_heading[i] = proj.heading
            self.heading_err[i] = math.atan2(math.sin(dyaw[i]), math.cos(dyaw[i]))
            self.y[i] = tr.heights[proj.index]
            self.pitch[i], self.roll[i] = _attitude(float(tr.grade[proj.index]), float(dyaw[i]))
            self.off_track[i] = self.hit[i] = self.crossed[i] = False
            self.hit_kind[i] = HIT_NONE
            self.time[i] = 0.0
            self.lap_count[i] = 0
            self.lap_start[i] = np.nan
            self.last_lap_time[i] = 0.0
            self.lap_times[i] = []
        self._controls[cars] = 0.0

    def set_appearance(self, car: int, appearance: Appearance | None) -> None:
        """Camera appearance (domain randomisation) used for car ``car``'s frames."""
        self.appearances[car] = appearance

    # ------------------------------------------------------------------ stepping
    def step(self, steering: np.ndarray | float, throttle: np.ndarray | float,
             brake: np.ndarray | float | None = None) -> None:
        """Apply controls to every car and advance one control period."""
        c = self._controls
        c[:, 0] = steering
        c[:, 1] = throttle
        c[:, 2] = 0.0 if brake is None else brake
        if not np.all(np.isfinite(c)):
            raise ValueError(f"controls must be finite numbers, got {c.tolist()}")
        cfg = self.config
        ph.step_cars(self.state, c, self._params, cfg.tick_dt, cfg.substeps)
        self.time += cfg.control_dt
        update_tracking(self.state, self._car_track, *self._track_args, self.hint,  # type: ignore[call-arg]
                        self.s_u, self.s_u_max, self.cte, self.path_heading, self.heading_err, self.y,
                        self.pitch, self.roll,
                        self.off_track, self.hit, self.hit_kind, self.crossed, CAR_HALF_WIDTH)
        for i in np.flatnonzero(self.crossed):
            self._on_start_line(int(i))

    def _on_start_line(self, i: int) -> None:
        """A forward crossing of the start line: starts the lap clock or completes a lap."""
        t = float(self.time[i])
        if not np.isnan(self.lap_start[i]):
            lap = t - float(self.lap_start[i])
            self.lap_count[i] += 1
            self.last_lap_time[i] = lap
            self.lap_times[i].append(lap)
        self.lap_start[i] = t

    # ------------------------------------------------------------------ outputs
    def progress(self, car: int = 0) -> float:
        """Forward-only arc length driven since the reset (units)."""
        return float(self.s_u_max[car] - self.s_u_start[car])

    def render(self, car: int = 0, out: np.ndarray | None = None) -> np.ndarray:
        """Camera frame of car ``car`` (uint8, H x W x C)."""
        if self.renderer is None:
            raise RuntimeError("this simulator was created without a camera")
        st = self.state[car]
        return self.renderer.render(st[ph.S_X], st[ph.S_Z], st[ph.S_YAW], self.appearances[car], out=out,
                                    track=self.tracks[car])

    def render_all(self, out: np.ndarray | None = None) -> np.ndarray:
        """Camera frames of every car in one batched parallel call (n, H, W, C), each car on its track."""
        if self.renderer is None:
            raise RuntimeError("this simulator was created without a camera")
        st = self.state
        return self.renderer.render_batch(st[:, ph.S_X], st[:, ph.S_Z], st[:, ph.S_YAW], out=out,
                                          appearances=self.appearances, tracks=self.tracks)

    def telemetry(self, car: int = 0) -> Telemetry:
        """A snapshot of car ``car`` after the last step."""
        st = self.state[car].tolist()
        idx = int(self.hint[car])
        yaw = st[ph.S_YAW]
        v, v_lat = st[ph.S_V], st[ph.S_VLAT]
        return Telemetry(
            x=st[ph.S_X], z=st[ph.S_Z], yaw=yaw, speed=math.hypot(v, v_lat),
            forward_vel=v, vel_x=v_lat, vel_z=v, yaw_rate=st[ph.S_YAWRATE],
            accel_x=st[ph.S_ALAT], accel_z=st[ph.S_ALONG], cte=float(self.cte[car]),
            heading_error=float(self.heading_err[car]), progress=self.progress(car),
            lap_count=int(self.lap_count[car]), last_lap_time=float(self.last_lap_time[car]),
            lap_times=tuple(self.lap_times[car]), hit=HIT_NAMES[int(self.hit_kind[car])],
            off_track=bool(self.off_track[car]), time=float(self.time[car]),
            steering=st[ph.S_STEER], throttle=st[ph.S_THROTTLE], path_index=idx,
            crossed_start=bool(self.crossed[car]), y=float(self.y[car]), pitch=float(self.pitch[car]),
            roll=float(self.roll[car]))

    def readout(self) -> CarArrays:
        """Every car at once as numpy arrays (no per-car Python objects)."""
        st = self.state
        v, v_lat = st[:, ph.S_V].copy(), st[:, ph.S_VLAT].copy()
        lengths = self._pack.length[self._car_track] if self._pack is not None else np.zeros(self.n_cars)
        return CarArrays(
            x=st[:, ph.S_X].copy(), y=self.y.copy(), z=st[:, ph.S_Z].copy(), yaw=st[:, ph.S_YAW].copy(),
            pitch=self.pitch.copy(), roll=self.roll.copy(), speed=np.hypot(v, v_lat), forward_vel=v, vel_x=v_lat,
            vel_z=v.copy(), yaw_rate=st[:, ph.S_YAWRATE].copy(), accel_x=st[:, ph.S_ALAT].copy(),
            accel_z=st[:, ph.S_ALONG].copy(), cte=self.cte.copy(),
            heading_error=self.heading_err.copy(),
            progress=self.s_u_max - self.s_u_start, lap_count=self.lap_count.copy(),
            last_lap_time=self.last_lap_time.copy(), hit=self.hit.copy(), hit_kind=self.hit_kind.copy(),
            off_track=self.off_track.copy(), time=self.time.copy(), steering=st[:, ph.S_STEER].copy(),
            throttle=st[:, ph.S_THROTTLE].copy(), path_index=self.hint.copy(), crossed_start=self.crossed.copy(),
            at_end_of_road=self._at_end(), track_length=lengths.copy())

    def _at_end(self) -> np.ndarray:
        out = np.zeros(self.n_cars, dtype=np.bool_)
        for i, tr in enumerate(self.tracks):
            out[i] = (not tr.closed) and self.s_u_max[i] >= tr.s[-1] - 0.5
        return out

    def at_end_of_road(self, car: int = 0) -> bool:
        """True on an open track once the car has reached the last path sample."""
        tr = self.tracks[car]
        return (not tr.closed) and self.s_u_max[car] >= tr.s[-1] - 0.5


def _attitude(grade: float, heading_error: float) -> tuple[float, float]:
    """(pitch, roll) of a car on a road rising ``grade`` along the path, turned ``heading_error``."""
    pitch = -np.arctan(grade * np.cos(heading_error))
    roll = np.arctan(-grade * np.sin(heading_error))
    return float(pitch), float(roll)


@nb.njit(cache=True)
def update_tracking(state, car_track, points_all, tangents_all, s_all, left_all, right_all, wall_l_all,
                    wall_r_all, heights_all, grade_all, off, lengths, closeds, cones, cone_off, hint, s_u,
                    s_u_max, cte, path_heading, heading_err, y, pitch, roll, off_track, hit, hit_kind, crossed,
                    half_width):  # pragma: no cover
    """Project every car onto its track's path and update progress, start-line crossings, height,
    attitude and contacts.

    A car whose side reaches a solid wall is put back against it, a car whose body reaches a cone
    is put back outside it; either way its speed is zeroed (the obstacle absorbs the impact) and
    the contact is flagged as a hit. The slope under the car along its heading is stored for the
    next physics step (gravity).
    """
    for i in range(state.shape[0]):
        k = car_track[i]
        o0, o1 = off[k], off[k + 1]
        points = points_all[o0:o1]
        tangents = tangents_all[o0:o1]
        s = s_all[o0:o1]
        length, closed = lengths[k], closeds[k]
        x, z = state[i, ph.S_X], state[i, ph.S_Z]
        idx, t, lat, s_at = project_point(points, tangents, s, length, closed, x, z, hint[i], PROJECT_WINDOW)
        hint[i] = idx
        # path heading at the projected point: tangents interpolated along the segment
        j = idx + 1
        if j == points.shape[0]:
            j = 0 if closed else idx
        heading = np.arctan2((1.0 - t) * tangents[idx, 0] + t * tangents[j, 0],
                             (1.0 - t) * tangents[idx, 1] + t * tangents[j, 1])
        path_heading[i] = heading
        if closed:
            prev = s_u[i] - np.floor(s_u[i] / length) * length
            d = s_at - prev
            if d > 0.5 * length:
                d -= length
            elif d < -0.5 * length:
                d += length
            s_u[i] += d
            crossed[i] = np.floor(s_u[i] / length) > np.floor(s_u_max[i] / length) and s_u[i] > s_u_max[i]
        else:
            s_u[i] = s_at
            crossed[i] = False
        if s_u[i] > s_u_max[i]:
            s_u_max[i] = s_u[i]
        cte[i] = lat
        left, right = left_all[o0 + idx], right_all[o0 + idx]
        off_track[i] = lat < left or lat > right
        hit[i] = False
        hit_kind[i] = 0
        wall_l, wall_r = wall_l_all[o0 + idx] + half_width, wall_r_all[o0 + idx] - half_width
        if lat < wall_l or lat > wall_r:
            hit[i] = True
            hit_kind[i] = 1
            push = (wall_l - lat) if lat < wall_l else (wall_r - lat)
            nx, nz = tangents[idx, 1], -tangents[idx, 0]
            x = x + nx * push
            z = z + nz * push
            state[i, ph.S_X] = x
            state[i, ph.S_Z] = z
            state[i, ph.S_V] = 0.0
            state[i, ph.S_VLAT] = 0.0
            cte[i] = lat + push  # report where the car is now: against the wall
        for c in range(cone_off[k], cone_off[k + 1]):
            dx, dz = x - cones[c, 0], z - cones[c, 1]
            reach = cones[c, 2] + half_width
            d2 = dx * dx + dz * dz
            if d2 < reach * reach:
                dist = np.sqrt(d2)
                if dist < 1e-9:
                    dx, dz, dist = 1.0, 0.0, 1.0
                x = cones[c, 0] + dx / dist * reach
                z = cones[c, 1] + dz / dist * reach
                state[i, ph.S_X] = x
                state[i, ph.S_Z] = z
                state[i, ph.S_V] = 0.0
                state[i, ph.S_VLAT] = 0.0
                hit[i] = True
                hit_kind[i] = 2
        # height and attitude from the road's slope along the path (level across it)
        g = (1.0 - t) * grade_all[o0 + idx] + t * grade_all[o0 + j]
        y[i] = (1.0 - t) * heights_all[o0 + idx] + t * heights_all[o0 + j]
        he = state[i, ph.S_YAW] - heading
        heading_err[i] = np.arctan2(np.sin(he), np.cos(he))
        slope_fwd = g * np.cos(he)
        state[i, ph.S_SLOPE] = slope_fwd
        pitch[i] = -np.arctan(slope_fwd)
        roll[i] = np.arctan(-g * np.sin(he))
