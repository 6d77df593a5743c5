"""Gymnasium environment over the real DonkeyCar simulator (Unity) reached by TCP (``make_env(sim="donkey")``).

Description:
    The car of a DonkeyCar simulator (the Unity one, or ``donkeyrl sim serve``) driven over the
    protocol (:mod:`donkeyrl.donkey`). Same contract and ``info`` keys as the built-in env (the
    step core of :mod:`donkeyrl.envs.common`), so agents, metrics and the research loop do not
    care which simulator runs.
Action Space:
    ``Box([-steer_limit, throttle_min], [steer_limit, throttle_max], float32)`` = (steering, throttle).
Observation Space:
    ``Box(0, 255, camera.shape, uint8)``: the simulator's camera image. The requested
    :class:`~donkeyrl.sim.camera.CameraConfig` is sent as ``cam_config`` (size, fov, mount); the
    image is then cropped/resized/greyed by :func:`~donkeyrl.envs.common.fit_image`.
Rewards:
    The DonkeyCar default (:func:`donkeyrl.envs.common.donkey_reward`), forward_vel in telemetry units.
Starting State:
    ``reset_car`` (the simulator zeroes the controls and brakes), then brake until two successive
    telemetry frames agree on a settled car with a sane cte, so that no pre-reset (stale) cte leaks
    into the new episode.
Episode End:
    As the built-in env (:class:`donkeyrl.envs.common.EpisodeCore`): terminated when
    |cte| > max_cte or on a hit (a cte above 2 x max_cte in the first steps after a reset is ignored
    as a start glitch, like gym-donkeycar); truncated by the no-progress watchdog, at the end of an
    open road, after ``max_laps`` laps or at the step limit.
Arguments:
    See :class:`UnityDonkeyEnv` and :func:`make_unity_env`.

``progress`` comes from the centre line read with ``node_position`` at connection time; laps come
from ``collision_with_starting_line`` (the first crossing starts the clock). A lost simulator raises
:class:`~donkeyrl.donkey.client.SimDisconnected`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from donkeyrl.donkey import protocol as P
from donkeyrl.donkey.client import ClientConfig, SimClient, SimTimeout
from donkeyrl.donkey.launcher import SimLauncher
from donkeyrl.envs.common import EpisodeCore, EpisodeLimits, fit_image, step_info, validate_action
from donkeyrl.sim.camera import CameraConfig
from donkeyrl.sim.track import Track, TrackError
from donkeyrl.units import CONTROL_PERIOD_SEC, TELEMETRY_SCALE

log = logging.getLogger(__name__)

#: Steps after a reset during which a cte above 2 x max_cte is treated as a start glitch.
GLITCH_STEPS = 5
#: Most brake/telemetry exchanges a reset may take to settle.
MAX_SETTLE = 40
#: A settled car moves less than this between two frames (telemetry units).
SETTLE_MOVE = 0.1


def scene_name(track: str) -> str:
    """Simulator scene for a track name, gym env id or alias; unknown names pass through (the
    simulator's menu is the judge, and lists what it offers)."""
    from donkeyrl.sim.tracks import UnknownTrackError, resolve_track_name

    try:
        return resolve_track_name(track)
    except UnknownTrackError:
        return track


def path_from_nodes(name: str, nodes: Sequence[P.NodePosition]) -> Track | None:
    """A :class:`Track` through the simulator's centre-line nodes (raw simulator units), or None
    when there are too few distinct nodes. Closed when the last node is near the first."""
    pts = np.array([(n.pos_x, n.pos_z) for n in nodes], dtype=np.float64)
    if len(pts) >= 2:
        keep = np.concatenate([[True], np.hypot(*np.diff(pts, axis=0).T) > 1e-6])
        pts = pts[keep]
    if len(pts) < 4:
        return None
    spacing = float(np.median(np.hypot(*np.diff(pts, axis=0).T)))
    closed = bool(np.hypot(*(pts[-1] - pts[0])) < 3.0 * spacing)
    try:
        return Track.from_waypoints(name, pts, half_width=4.0, closed=closed, check=False,
                                    description="centre line read from the simulator")
    except (TrackError, ValueError) as exc:
        log.warning("could not build a path from %d simulator nodes: %s", len(pts), exc)
        return None


class PathProgress:
    """Forward-only progress along a path from reported positions (or speed when no path is known).

    The projection's arc length is unwrapped across the start line of a closed path (a step
    moves less than half a track), summed, and ``progress`` is the largest sum reached since
    :meth:`reset`: driving backwards, circling or re-driving a stretch adds nothing.
    """

    def __init__(self, track: Track | None) -> None:
        self.track = track
        self.progress = self.unwrapped = self.s = 0.0
        self.hint = -1
        self.heading = math.nan

    def reset(self, x: float, z: float) -> None:
        """Start at (x, z) (simulator units)."""
        self.progress = self.unwrapped = 0.0
        self.s, self.hint, self.heading = 0.0, -1, math.nan
        if self.track is not None:
            proj = self.track.project(x, z)
            self.s, self.hint, self.heading = proj.s, proj.index, proj.heading

    def update(self, x: float, z: float, speed: float, dt: float) -> float:
        """Progress after moving to (x, z); ``speed`` (units/s) over ``dt`` s is the fallback."""
        if self.track is None:
            self.unwrapped += speed * dt
        else:
            proj = self.track.project(x, z, self.hint)
            ds = proj.s - self.s
            if self.track.closed:
                ds = (ds + self.track.length / 2) % self.track.length - self.track.length / 2
            self.unwrapped += ds
            self.s, self.hint, self.heading = proj.s, proj.index, proj.heading
        self.progress = max(self.progress, self.unwrapped)
        return self.progress

    def at_end(self) -> bool:
        """True on an open path once the car is within 1 unit of its end."""
        return self.track is not None and not self.track.closed and self.s >= self.track.s[-1] - 1.0


class LapClock:
    """Laps from start-line crossings: the first crossing starts the clock, later ones are laps.

    A crossing less than half a track of progress after the previous one is a wiggle over the
    line, not a lap.
    """

    def __init__(self, track_length: float | None) -> None:
        self.track_length = track_length
        self.lap_times: list[float] = []
        self._stamp: float | None = None
        self._progress = 0.0

    @property
    def lap_count(self) -> int:
        return len(self.lap_times)

    @property
    def last_lap_time(self) -> float:
        return self.lap_times[-1] if self.lap_times else 0.0

    def cross(self, stamp: float, progress: float) -> None:
        """The car crossed the start line at simulator time ``stamp`` with ``progress`` units."""
        if self._stamp is None:
            self._stamp, self._progress = stamp, progress
            return
        if self.track_length is not None and progress - self._progress < 0.5 * self.track_length:
            return
        self.lap_times.append(stamp - self._stamp)
        self._stamp, self._progress = stamp, progress


class UnityDonkeyEnv(gym.Env):
    """One car of a DonkeyCar simulator as a Gymnasium env (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, track: str | Sequence[str] = "generated_track", *, host: str = "127.0.0.1",
                 port: int = 9091, camera: CameraConfig | None = None,
                 limits: EpisodeLimits | None = None,
                 steer_limit: float = 1.0, throttle_min: float = 0.0, throttle_max: float = 1.0,
                 seed: int | None = None, render_mode: str | None = None, client_config: ClientConfig | None = None,
                 step_timeout: float = 10.0, settle_steps: int = 2, read_path: bool = True,
                 reload_scene: bool = False,
                 launcher: SimLauncher | None = None) -> None:
        """
        Args:
            track: scene name(s) (catalogue names, DonkeyCar scene names, gym env ids); several =
                one sampled per episode (switching scenes reloads them in the simulator).
            host, port: where the simulator listens.
            camera: wanted observation format (default 120x160x3).
            limits: max_cte, max_steps (None: from the path length), watchdog and max_laps,
                shared with the built-in env.
            steer_limit, throttle_min, throttle_max: action bounds.
            seed: seeds the scene sampling (the simulator itself cannot be seeded).
            render_mode: None or "rgb_array" (the last camera image).
            client_config: connection and handshake timeouts.
            step_timeout: seconds to wait for the telemetry answering a control.
            settle_steps: least brake/telemetry exchanges after ``reset_car``.
            read_path: read the centre line with ``node_position`` (for progress and metrics).
            reload_scene: if the simulator is already in a scene, exit and load ``track`` anyway.
            launcher: a started simulator process this env owns (stopped by :meth:`close`).
        """
        names = [track] if isinstance(track, str) else list(track)
        if not names:
            raise ValueError("track must name at least one scene")
        limits = limits if limits is not None else EpisodeLimits()
        limits.check()
        if not (steer_limit > 0 and throttle_min < throttle_max):
            raise ValueError(f"bad action bounds: steer_limit={steer_limit!r}, "
                             f"throttle=[{throttle_min!r}, {throttle_max!r}]")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not None or 'rgb_array'")
        if settle_steps < 1:
            raise ValueError(f"settle_steps must be >= 1, got {settle_steps!r}")
        self.scenes = [scene_name(n) for n in names]
        self.camera = camera if camera is not None else CameraConfig()
        self.limits, self.max_cte = limits, float(limits.max_cte)
        self.step_timeout, self.settle_steps = step_timeout, settle_steps
        self.read_path, self.reload_scene = read_path, reload_scene
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, self.camera.shape, np.uint8)
        self.box = gym.spaces.Box(np.array([-steer_limit, throttle_min], np.float32),
                                  np.array([steer_limit, throttle_max], np.float32))
        self.action_space = self.box
        self.core = EpisodeCore(limits)
        self.launcher = launcher
        self._np_random, _ = gym.utils.seeding.np_random(seed)
        self.client = SimClient(host, port, client_config or ClientConfig())
        self.track: Track | None = None
        self.scene: str | None = None
        self._last_obs: np.ndarray | None = None
        self._path = PathProgress(None)
        self._laps = LapClock(None)
        self._t0 = self._last_time = 0.0
        try:
            self.client.connect()
            self._enter_scene(self.scenes[0], first=True)
        except BaseException:
            self.close()
            raise

    @property
    def max_steps(self) -> int:
        """Step limit of the current episode (from the path length when not set)."""
        return self.core.max_steps

    # ------------------------------------------------------------------ scene handling
    def _enter_scene(self, scene: str, first: bool = False) -> None:
        """Load ``scene`` (from the menu or over the current one), configure, read its path."""
        if not first:
            self.client.exit_scene()
        self.client.load_scene(scene, reload=self.reload_scene and first)
        self.client.configure(cam=self._cam_config(), car=P.CarConfig())
        self.scene = scene
        _, tel = self._exchange(P.Control(0.0, 0.0, 1.0))
        self.track = None
        if self.read_path and tel.totalNodes > 0:
            nodes = self.client.read_nodes(tel.totalNodes)
            self.track = path_from_nodes(scene, nodes)
        if self.track is None:
            log.warning("no centre line for scene %r: progress falls back to integrated speed", scene)
        self.core.start(self.track.length if self.track is not None else None)

    def _cam_config(self) -> P.CamConfig:
        """``cam_config`` asking for the full (uncropped) frame the observation is cut from."""
        cam, default = self.camera, CameraConfig()
        full_h = int(round(cam.height / (1.0 - cam.crop_top)))
        moved = (cam.cam_height, cam.cam_forward) != (default.cam_height, default.cam_forward)
        return P.CamConfig(
            fov=cam.fov_deg if cam.fov_deg != default.fov_deg else 0.0,
            img_w=cam.width, img_h=full_h, img_d=3, img_enc="JPG",
            offset_y=cam.cam_height if moved else 0.0, offset_z=cam.cam_forward if moved else 0.0,
            rot_x=cam.pitch_deg if cam.pitch_deg != default.pitch_deg else 0.0)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if len(self.scenes) > 1:
            scene = self.scenes[int(self.np_random.integers(len(self.scenes)))]
            if scene != self.scene:
                self._enter_scene(scene)
        # reset_car zeroes the controls and brakes; the settle exchanges keep braking. No control
        # is sent without waiting for its telemetry (fast mode: one control = one telemetry).
        self.client.send(P.ResetCar())
        tel = self._settle()
        self.client.pop_events(P.StartingLine)
        self._path = PathProgress(self.track)
        self._path.reset(tel.pos_x * TELEMETRY_SCALE, tel.pos_z * TELEMETRY_SCALE)
        self._laps = LapClock(self.track.length if self.track is not None else None)
        self._t0 = self._last_time = tel.time
        self.core.start(self.track.length if self.track is not None else None)
        return self._observation(tel), self._info(tel, float(tel.cte))

    def _settle(self) -> P.Telemetry:
        """Brake/telemetry exchanges until the car is settled after ``reset_car`` (no stale cte)."""
        prev = None
        for i in range(MAX_SETTLE):
            _, tel = self._exchange(P.Control(0.0, 0.0, 1.0))
            if prev is not None and i + 1 >= self.settle_steps and abs(tel.cte) <= self.max_cte:
                moved = math.hypot(tel.pos_x - prev.pos_x, tel.pos_z - prev.pos_z)
                if moved < SETTLE_MOVE:
                    return tel
            prev = tel
        log.warning("car not settled after %d frames following reset_car (cte %.2f)", MAX_SETTLE,
                    prev.cte if prev else float("nan"))
        assert prev is not None
        return prev

    def _exchange(self, msg: P.Control) -> tuple[int, P.Telemetry]:
        """Send a control and wait for the next telemetry (newer than the control)."""
        seq = self.client.telemetry_seq
        self.client.send(msg)
        try:
            return self.client.wait_telemetry(seq, self.step_timeout)
        except SimTimeout as exc:
            raise SimTimeout(f"{exc} after a control (step_timeout={self.step_timeout:g})") from None

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        act = validate_action(action, self.box.low, self.box.high)
        _, tel = self._exchange(P.Control(float(act[0]), float(act[1]), 0.0))
        forward_vel = forward_velocity(tel)
        dt = max(0.0, tel.time - self._last_time) or CONTROL_PERIOD_SEC
        self._last_time = tel.time
        progress = self._path.update(tel.pos_x * TELEMETRY_SCALE, tel.pos_z * TELEMETRY_SCALE,
                                     forward_vel * TELEMETRY_SCALE, dt)
        for msg in self.client.pop_events(P.StartingLine):
            self._laps.cross(float(msg.timeStamp), progress)  # type: ignore[attr-defined]
        cte = float(tel.cte)
        if self.core.steps < GLITCH_STEPS and abs(cte) > 2 * self.max_cte:
            log.info("ignoring cte %.1f right after a reset (start glitch)", cte)
            cte = 0.0
        info = self._info(tel, float(tel.cte))
        reward, terminated, truncated = self.core.step(
            info, cte=cte, hit=tel.hit, forward_vel=forward_vel, progress=progress,
            lap_count=self._laps.lap_count, end_of_road=self._path.at_end())
        return self._observation(tel), reward, terminated, truncated, info

    def _observation(self, tel: P.Telemetry) -> np.ndarray:
        cam = self.camera
        img = P.decode_image(tel.image) if tel.image else np.zeros(cam.shape, np.uint8)
        obs = fit_image(img, cam.width, cam.height, cam.grey, cam.crop_top)
        self._last_obs = obs
        return obs

    def _info(self, tel: P.Telemetry, cte: float) -> dict[str, Any]:
        heading = self._path.heading
        heading_error = (math.nan if math.isnan(heading) else
                         float(np.angle(np.exp(1j * (math.radians(tel.yaw) - heading)))))
        return step_info(
            pos=(tel.pos_x, tel.pos_y, tel.pos_z), cte=cte, speed=tel.speed,
            forward_vel=forward_velocity(tel), hit=tel.hit, lap_count=self._laps.lap_count,
            last_lap_time=self._laps.last_lap_time, lap_times=self._laps.lap_times,
            gyro=(tel.gyro_x, tel.gyro_y, tel.gyro_z), accel=(tel.accel_x, tel.accel_y, tel.accel_z),
            vel=(tel.vel_x, tel.vel_y, tel.vel_z), car=(tel.roll, tel.pitch, tel.yaw),
            progress=self._path.progress,
            track_length=self.track.length if self.track is not None else math.nan,
            # The protocol carries no road edges: off track = beyond max_cte (documented approximation).
            off_track=abs(cte) > self.max_cte, track=str(self.scene), time=tel.time - self._t0,
            steering=tel.steering_angle, throttle=tel.throttle, heading_error=heading_error)

    def render(self) -> np.ndarray | None:
        """The last camera image when render_mode == "rgb_array"."""
        return None if self.render_mode is None or self._last_obs is None else self._last_obs

    def close(self) -> None:
        """Brake, exit the scene, close the socket (the simulator stays up); stop an owned launcher."""
        client = getattr(self, "client", None)
        if client is not None:
            client.close(exit_scene=True)
        if self.launcher is not None:
            self.launcher.stop()
            self.launcher = None


def forward_velocity(tel: P.Telemetry) -> float:
    """Forward speed in telemetry units (the car-frame ``vel_z`` of extended telemetry, else speed)."""
    return float(tel.vel_z if tel.extended else tel.speed)


def make_unity_env(track: str | Sequence[str] = "generated_track", *, host: str = "127.0.0.1",
                   port: int = 9091, sim_path: str | None = None, camera: CameraConfig | None = None,
                   limits: EpisodeLimits | None = None, max_cte: float = 8.0,
                   max_steps: int | None = None, steer_limit: float = 1.0,
                   throttle_min: float = 0.0, throttle_max: float = 1.0,
                   domain_randomization: bool = False, seed: int | None = None,
                   render_mode: str | None = None, **kwargs: Any) -> UnityDonkeyEnv:
    """The ``sim="donkey"`` branch of :func:`donkeyrl.envs.make_env`.

    ``limits`` wins over ``max_cte``/``max_steps`` (kept for callers without an EpisodeLimits).
    With ``sim_path`` the simulator executable is started first (own process group; ``port``, or
    a free port when it is 0 or already taken) and stopped by ``env.close()``. ``kwargs`` go to
    :class:`UnityDonkeyEnv` (client_config, step_timeout, settle_steps, read_path, reload_scene).
    """
    if domain_randomization:
        log.warning("domain_randomization is not available on the DonkeyCar simulator; ignored")
    if limits is None:
        limits = EpisodeLimits(max_cte=max_cte, max_steps=max_steps)
    launcher = None
    if sim_path is not None:
        from donkeyrl.donkey.launcher import port_accepts

        use_port = port if port and not port_accepts(host, port, timeout=0.2) else None
        launcher = SimLauncher(sim_path, port=use_port, host=host).start()
        host, port = launcher.host, launcher.port
    try:
        return UnityDonkeyEnv(track, host=host, port=port, camera=camera, limits=limits,
                              steer_limit=steer_limit, throttle_min=throttle_min,
                              throttle_max=throttle_max, seed=seed, render_mode=render_mode,
                              launcher=launcher, **kwargs)
    except BaseException:
        if launcher is not None:
            launcher.stop()
        raise


#: The names these had in ``donkeyrl.donkey.env``, the env's home before it moved here.
DonkeySimEnv = UnityDonkeyEnv
make_donkey_env = make_unity_env
