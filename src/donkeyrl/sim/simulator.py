"""The built-in simulator: cars, a track, the bookkeeping a race needs, and the camera.

One :class:`Simulator` holds ``n_cars`` independent cars on one track (they do not collide), so a
vector environment steps all of them in one compiled call. Time is simulated, never wall-clock:
a control step is ``control_dt`` seconds (0.05 s, 20 Hz like the DonkeyCar simulator) made of
``physics_hz * control_dt`` physics ticks (5 at 100 Hz), and everything is deterministic.

Progress and laps are measured on the path, not by a start-line trigger: the projection onto the
path is unwrapped into a continuous arc length ``s_u`` and ``progress`` is the largest ``s_u``
reached since the reset. So driving backwards, circling near the start or re-driving the same
stretch never adds progress, and a lap needs the whole length of the track. Closed tracks start
``start_behind`` units before the start line, like the real simulator's spawn point, so the first
forward crossing starts the lap clock and the next one completes a lap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from donkeyrl.sim import physics as ph
from donkeyrl.sim.track import PROJECT_WINDOW, Track, project_point

log = logging.getLogger(__name__)

#: Half the car's width (units): the body touches a barrier when its side reaches it.
CAR_HALF_WIDTH = 0.7


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
    """Everything the simulator knows about one car after a step (simulator units, seconds)."""

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


class Simulator:
    """``n_cars`` cars on one track, stepped together; optionally rendered by the camera."""

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
        self.off_track = np.zeros(n_cars, dtype=np.bool_)
        self.hit = np.zeros(n_cars, dtype=np.bool_)
        self.crossed = np.zeros(n_cars, dtype=np.bool_)
        self.time = np.zeros(n_cars)
        self.lap_count = np.zeros(n_cars, dtype=np.int64)
        self.lap_start = np.full(n_cars, np.nan)
        self.last_lap_time = np.zeros(n_cars)
        self.lap_times: list[list[float]] = [[] for _ in range(n_cars)]
        self._camera_cfg = camera
        self.renderer = None
        self.appearances: list[object | None] = [None] * n_cars
        self.track = track
        self.set_track(track)

    # ------------------------------------------------------------------ set-up
    def set_track(self, track: Track) -> None:
        """Put every car on ``track`` (e.g. a regenerated road) and reset them."""
        self.track = track
        self._track_args = (track.points, track.tangents, track.s, float(track.length), bool(track.closed),
                            track.lat_left, track.lat_right, bool(track.barriers), float(track.barrier_margin))
        if self._camera_cfg is not None:
            from donkeyrl.sim.camera import CameraConfig, Renderer  # lazy: rendering is optional

            cfg = CameraConfig() if self._camera_cfg == "default" else self._camera_cfg
            self.renderer = Renderer(track, cfg)
        self.reset()

    def reset(self, car: int | None = None, *, lateral: float | np.ndarray = 0.0,
              yaw_offset: float | np.ndarray = 0.0) -> None:
        """Put car ``car`` (or all) at the start, at rest, facing along the path.

        ``lateral`` (units, positive = right) and ``yaw_offset`` (rad) perturb the start pose, which
        environments use for start-position noise.
        """
        cars = np.arange(self.n_cars) if car is None else np.array([car])
        tr = self.track
        s0 = -self.config.start_behind if tr.closed else 0.0
        p0 = tr.point_at(s0)
        proj = tr.project(p0[0], p0[1])
        nrm = tr.normals[proj.index]
        lat = np.broadcast_to(np.asarray(lateral, dtype=np.float64), (self.n_cars,))
        dyaw = np.broadcast_to(np.asarray(yaw_offset, dtype=np.float64), (self.n_cars,))
        for i in cars:
            self.state[i] = 0.0
            self.state[i, ph.S_X] = p0[0] + nrm[0] * lat[i]
            self.state[i, ph.S_Z] = p0[1] + nrm[1] * lat[i]
            self.state[i, ph.S_YAW] = proj.heading + dyaw[i]
            self.hint[i] = proj.index
            s_start = proj.s - (tr.length if tr.closed and proj.s > tr.length / 2 else 0.0)
            self.s_u[i] = self.s_u_start[i] = self.s_u_max[i] = s_start
            self.cte[i] = lat[i]
            self.path_heading[i] = proj.heading
            self.off_track[i] = self.hit[i] = self.crossed[i] = False
            self.time[i] = 0.0
            self.lap_count[i] = 0
            self.lap_start[i] = np.nan
            self.last_lap_time[i] = 0.0
            self.lap_times[i] = []
        self._controls[cars] = 0.0

    def set_appearance(self, car: int, appearance: object | None) -> None:
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
        update_tracking(self.state, *self._track_args, self.hint, self.s_u, self.s_u_max,
                        self.cte, self.path_heading, self.off_track, self.hit, self.crossed, CAR_HALF_WIDTH)
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
        return self.renderer.render(st[ph.S_X], st[ph.S_Z], st[ph.S_YAW], self.appearances[car], out=out)

    def render_all(self, out: np.ndarray | None = None) -> np.ndarray:
        """Camera frames of every car in one batched call (n, H, W, C)."""
        if self.renderer is None:
            raise RuntimeError("this simulator was created without a camera")
        st = self.state
        return self.renderer.render_batch(st[:, ph.S_X], st[:, ph.S_Z], st[:, ph.S_YAW], out=out,
                                          appearances=self.appearances)

    def telemetry(self, car: int = 0) -> Telemetry:
        """A snapshot of car ``car`` after the last step."""
        st = self.state[car]
        idx = int(self.hint[car])
        heading = float(self.path_heading[car])
        yaw = float(st[ph.S_YAW])
        v, v_lat = float(st[ph.S_V]), float(st[ph.S_VLAT])
        return Telemetry(
            x=float(st[ph.S_X]), z=float(st[ph.S_Z]), yaw=yaw, speed=float(np.hypot(v, v_lat)),
            forward_vel=v, vel_x=v_lat, vel_z=v, yaw_rate=float(st[ph.S_YAWRATE]),
            accel_x=float(st[ph.S_ALAT]), accel_z=float(st[ph.S_ALONG]), cte=float(self.cte[car]),
            heading_error=float(np.angle(np.exp(1j * (yaw - heading)))), progress=self.progress(car),
            lap_count=int(self.lap_count[car]), last_lap_time=float(self.last_lap_time[car]),
            lap_times=tuple(self.lap_times[car]), hit="barrier" if self.hit[car] else "none",
            off_track=bool(self.off_track[car]), time=float(self.time[car]),
            steering=float(st[ph.S_STEER]), throttle=float(st[ph.S_THROTTLE]), path_index=idx,
            crossed_start=bool(self.crossed[car]))

    def at_end_of_road(self, car: int = 0) -> bool:
        """True on an open track once the car has reached the last path sample."""
        return (not self.track.closed) and self.s_u_max[car] >= self.track.s[-1] - 0.5


@nb.njit(cache=True)
def update_tracking(state, points, tangents, s, length, closed, lat_left, lat_right, barriers,
                    margin, hint, s_u, s_u_max, cte, path_heading, off_track, hit, crossed,
                    half_width):  # pragma: no cover
    """Project every car onto the path and update progress, start-line crossings and contacts.

    A car whose side reaches a barrier is put back against it with its speed zeroed (the wall
    absorbs the impact) and flagged as a hit.
    """
    for i in range(state.shape[0]):
        x, z = state[i, ph.S_X], state[i, ph.S_Z]
        idx, t, lat, s_at = project_point(points, tangents, s, length, closed, x, z, hint[i], PROJECT_WINDOW)
        hint[i] = idx
        # path heading at the projected point: tangents interpolated along the segment
        j = idx + 1
        if j == points.shape[0]:
            j = 0 if closed else idx
        path_heading[i] = np.arctan2((1.0 - t) * tangents[idx, 0] + t * tangents[j, 0],
                                     (1.0 - t) * tangents[idx, 1] + t * tangents[j, 1])
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
        left, right = lat_left[idx], lat_right[idx]
        off_track[i] = lat < left or lat > right
        hit[i] = False
        if barriers:
            wall_l, wall_r = left - margin + half_width, right + margin - half_width
            if lat < wall_l or lat > wall_r:
                hit[i] = True
                push = (wall_l - lat) if lat < wall_l else (wall_r - lat)
                nx, nz = tangents[idx, 1], -tangents[idx, 0]
                state[i, ph.S_X] = x + nx * push
                state[i, ph.S_Z] = z + nz * push
                state[i, ph.S_V] = 0.0
                state[i, ph.S_VLAT] = 0.0
                cte[i] = lat + push  # report where the car is now: against the wall
