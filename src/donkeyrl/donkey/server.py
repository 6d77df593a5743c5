"""The simulator side of the DonkeyCar protocol over the built-in simulator.

Why: the Unity simulator cannot run everywhere (no GPU, CI, this project's tests), yet every
DonkeyCar tool speaks its TCP protocol. Serving the embedded simulator over the same protocol gives
a headless, fast DonkeyCar simulator for any such tool, and a real peer to test the client against.

Behaviour mirrors the Unity simulator (see the protocol reference): one car per connection, a menu
listing the scenes (the track catalogue, which includes the DonkeyCar scene names), telemetry at
20 Hz of simulated time with positions and speeds divided by 8 and cte in simulator units. All
connections that load the same scene share one world (:mod:`donkeyrl.donkey.scene`): offset
spawns, cars that touch each other and report it in ``hit``. generated_road is a new random road
each time its world is created, unless ``regen_road`` seeds it. The camera follows ``cam_config``
as the simulator does (:mod:`donkeyrl.donkey.camera_rig`), ``lidar_config`` turns on a ray-cast
lidar (:mod:`donkeyrl.donkey.lidar`). ``fast`` mode steps the car once per ``control`` message and
answers with exactly one telemetry (as fast as the client answers) instead of running on the wall
clock; ``step_mode`` "synchronous" asks for the same per connection (documented deviation: in the
Unity simulator it only freezes time).

Every message the simulator handles is handled; those it ignores (``load_scene`` inside a scene,
an unknown scene name, ``regen_road`` outside generated_road, an out-of-range ``node_position``,
unknown message types) are ignored and never count against the client. Only undecodable input
counts: a connection sending more than ``max_errors`` bad messages within ``error_window`` seconds,
or not reading its telemetry, is dropped alone. Idle connections cannot lock others out: a
connection must be in a scene within ``handshake_timeout``, is closed after ``idle_timeout``
without a message from its client and without its car moving (the Unity simulator kicks a car that
moved less than 1 unit in 300 s, whatever its client sends; here a client that keeps sending is
not idle, so a policy that learned to stand still is not cut off mid-training), and when
``max_clients`` are connected a newcomer takes the place of the connection that has been inactive
longest, if that one has been inactive for ``handshake_timeout``; otherwise the newcomer is refused.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import select
import socket
import threading
import time
from dataclasses import dataclass

import numpy as np

from donkeyrl.donkey import protocol as P
from donkeyrl.donkey.camera_rig import MAX_IMAGE_SIDE, CameraSettings, CameraView
from donkeyrl.donkey.lidar import LidarSettings, scan
from donkeyrl.donkey.scene import Car, Snapshot, World, obstacles
from donkeyrl.sim.track import Track

__all__ = ["MAX_IMAGE_SIDE", "DonkeySimServer", "ServerConfig", "Session", "scene_names"]

log = logging.getLogger(__name__)

#: Simulated seconds per control period / telemetry frame (physics at 100 Hz, telemetry every 5th).
PERIOD = 0.05
#: Telemetry units per simulator unit.
UNIT = 8.0
#: Spacing of the centre-line nodes served by ``node_position`` (simulator units, like the
#: generated road's 2-unit nodes).
NODE_SPACING = 2.0
#: A car that moved at least this far (simulator units) is not idle (the simulator's rule).
IDLE_MOVE = 1.0
#: The only scene that ``regen_road`` rebuilds (the simulator's TrainingManager scene).
REGEN_SCENE = "generated_road"
#: Seeds drawn for generated roads are below this (Unity's seeds are 32-bit).
SEED_SPACE = 2**32


@dataclass(frozen=True)
class ServerConfig:
    """Options of ``donkeyrl sim serve``."""

    #: Address to bind; 127.0.0.1 keeps the simulator private to this machine.
    host: str = "127.0.0.1"
    #: TCP port (0 = any free port, see :attr:`DonkeySimServer.port`).
    port: int = 9091
    #: Scene every connection starts in (skipping the menu, like a simulator left in a scene);
    #: None starts each connection in the menu.
    track: str | None = None
    #: Step once per control message (one telemetry each) instead of in real time at 20 Hz.
    fast: bool = False
    #: JPEG quality of the camera images (Unity's default is 75).
    jpeg_quality: int = 75
    #: Most simultaneous connections; see the module docstring for what happens beyond.
    max_clients: int = 16
    #: Bad (undecodable) messages tolerated per connection within ``error_window`` seconds.
    max_errors: int = 100
    error_window: float = 60.0
    #: Seconds a send may block (client not reading) before the connection is dropped.
    send_timeout: float = 10.0
    #: Seconds a connection may stay in the menu before it is closed (0 = forever); also how long
    #: a connection must have been inactive before a newcomer may take its place (0 = never).
    handshake_timeout: float = 60.0
    #: Seconds without a client message and without car movement before the connection is
    #: closed (0 = never); the Unity simulator's is 300.
    idle_timeout: float = 300.0
    #: Honour ``quit_app`` (stops the whole server, like the Unity simulator quitting).
    allow_quit: bool = True
    #: Seed of the server's random choices (generated roads, randomised looks); None: random.
    seed: int | None = None
    #: Serve domain-randomised frames: a new look (``Appearance.random``) for every connection at
    #: each load, reset_car and regen_road (seeded by ``seed`` and the connection's number).
    randomize: bool = False

    def __post_init__(self) -> None:
        for name in ("handshake_timeout", "idle_timeout", "error_window", "send_timeout"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ServerConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.max_clients < 1 or self.max_errors < 0:
            raise ValueError(f"ServerConfig needs max_clients >= 1 and max_errors >= 0, got "
                             f"{self.max_clients}, {self.max_errors}")


def scene_names() -> list[str]:
    """The menu: every catalogue track name (DonkeyCar scene names included)."""
    from donkeyrl.sim.tracks import list_tracks

    return [info.name for info in list_tracks()]


@functools.lru_cache(maxsize=32)
def node_stride(track: Track) -> int:
    """Path samples per ``node_position`` node (nodes about NODE_SPACING apart)."""
    return max(1, int(round(NODE_SPACING / (track.length / track.n))))


@functools.lru_cache(maxsize=16)
def regenerated_road(seed: int, road_style: int, turn_increment: float | None) -> Track:
    """generated_road rebuilt by ``regen_road`` (cached: clients often regenerate the same seeds)."""
    from donkeyrl.sim.generators import generated_road

    if turn_increment is None:
        return generated_road(seed, road_style=road_style)
    return generated_road(seed, road_style=road_style, turn_increment=turn_increment)


class _Drop(Exception):
    """Internal: close this connection."""


class Session:
    """One connection = one car; runs in its own thread."""

    def __init__(self, server: DonkeySimServer, sock: socket.socket, peer: str, number: int) -> None:
        self.server, self.sock, self.peer, self.number = server, sock, peer, number
        self.cfg = server.config
        self.decoder = P.ClientStreamDecoder()
        self.bad_times: collections.deque[float] = collections.deque()
        self.ignored_types: set[str] = set()
        self.world: World | None = None
        self.car: Car | None = None
        self.car_name: str | None = None
        self.car_colour: tuple[int, int, int] | None = None
        self.cameras: list[CameraSettings | None] = [CameraSettings.default(), None]
        self.views: list[CameraView | None] = [None, None]
        self.view_track: Track | None = None
        self.lidar: LidarSettings | None = None
        self.controls = (0.0, 0.0, 0.0)
        self.scene_time = 0.0
        self.synchronous = self.cfg.fast
        self.paused = False
        seed = None if self.cfg.seed is None else [self.cfg.seed, number]
        self.rng = np.random.default_rng(seed)
        self.appearance: object | None = None
        now = time.monotonic()
        self.connected_at = self.menu_since = self.last_message = self.last_moved = now
        self.anchor = (0.0, 0.0)
        self.kick_reason: str | None = None

    @property
    def scene(self) -> str | None:
        """Name of the loaded scene (None in the menu)."""
        return None if self.world is None else self.world.scene

    @property
    def sim(self):
        """The car's one-car Simulator (None in the menu)."""
        return None if self.car is None else self.car.sim

    @property
    def last_active(self) -> float:
        """Monotonic time of the last sign of life: a client message or car movement."""
        return max(self.last_message, self.last_moved)

    # ------------------------------------------------------------------ io
    def send(self, msg: P.Message) -> None:
        self.sock.sendall(P.encode_sim(msg))

    def kick(self, reason: str) -> None:
        """Close this connection from another thread (eviction): wakes its loop."""
        self.kick_reason = reason
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def run(self) -> None:
        """Serve until the client leaves, the server stops, or the client misbehaves too much."""
        try:
            self.sock.settimeout(self.cfg.send_timeout or None)
            if self.cfg.track:
                self.load(self.cfg.track)
            else:
                self.send(P.SceneSelectionReady())
            self._loop()
        except _Drop as exc:
            log.warning("dropping client %s: %s", self.peer, exc)
        except (OSError, ConnectionError) as exc:
            log.info("client %s gone: %s", self.peer, self.kick_reason or exc)
        except Exception:
            log.exception("client %s: internal error, closing its connection", self.peer)
        finally:
            self.leave_world()
            self.sock.close()

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self.server.stopping:
            if self.kick_reason:
                raise _Drop(self.kick_reason)
            realtime = self.car is not None and not self.synchronous and not self.paused
            wait = max(0.0, next_tick - time.monotonic()) if realtime else 0.25
            readable, _, _ = select.select([self.sock], [], [], min(wait, 0.25))
            if readable:
                data = self.sock.recv(1 << 16)
                if not data:
                    if self.kick_reason:
                        raise _Drop(self.kick_reason)
                    log.info("client %s disconnected", self.peer)
                    return
                for item in self.decoder.feed(data):
                    self._handle(item)
            now = time.monotonic()
            if realtime and self.car is not None and now >= next_tick:
                self.step()
                next_tick += PERIOD
                if now - next_tick > 0.5:  # far behind (machine busy): do not catch up
                    next_tick = now + PERIOD
            elif not realtime:
                next_tick = now
            self._check_idle(now)

    def _check_idle(self, now: float) -> None:
        cfg = self.cfg
        if self.car is None:
            if cfg.handshake_timeout and now - self.menu_since > cfg.handshake_timeout:
                raise _Drop(f"no scene loaded within {cfg.handshake_timeout:g} s")
            return
        x, z, _ = self.car.pose
        if math.hypot(x - self.anchor[0], z - self.anchor[1]) >= IDLE_MOVE:
            self.anchor, self.last_moved = (x, z), now
        if cfg.idle_timeout and now - self.last_active > cfg.idle_timeout:
            raise _Drop(f"idle for {cfg.idle_timeout:g} s (no message, car did not move "
                        f"{IDLE_MOVE:g} unit)")

    def _handle(self, item: P.Message | P.ProtocolError) -> None:
        if isinstance(item, P.ProtocolError):
            self._bad(str(item))
            return
        self.last_message = time.monotonic()
        if isinstance(item, P.Unknown):
            if item.type_name not in self.ignored_types:
                self.ignored_types.add(item.type_name)
                log.info("client %s: message type %r not handled; ignored like the simulator does",
                         self.peer, item.type_name[:40])
            return
        handler = getattr(self, f"on_{item.msg_type}")
        try:
            handler(item)
        except (ValueError, KeyError, IndexError) as exc:
            self._bad(f"{item.msg_type}: {exc}")

    def _bad(self, what: str) -> None:
        now = time.monotonic()
        self.bad_times.append(now)
        while self.bad_times and now - self.bad_times[0] > self.cfg.error_window:
            self.bad_times.popleft()
        n = len(self.bad_times)
        if n <= 10:
            log.warning("client %s: %s", self.peer, what)
        elif n == 11:
            log.warning("client %s: more bad input; not logging it for a while", self.peer)
        if n > self.cfg.max_errors:
            raise _Drop(f"more than {self.cfg.max_errors} bad messages within "
                        f"{self.cfg.error_window:g} s")

    # ------------------------------------------------------------------ scene
    def load(self, name: str) -> None:
        """Join (or create) the scene's world, spawn the car, announce ``car_loaded``."""
        self.world, self.car = self.server.join(name, self.car_name)
        if self.car_colour is not None:
            self.car.colour = self.car_colour
        self.scene_time = 0.0
        self.controls = (0.0, 0.0, 1.0)
        self.anchor = self.car.pose[:2]
        self._new_look()
        self._prepare_views(self.world.track)
        self.last_moved = time.monotonic()
        log.info("client %s: car %s loaded in %r", self.peer, self.car.name, name)
        self.send(P.CarLoaded())

    def _prepare_views(self, track: Track) -> None:
        """Build the cameras for ``track`` and draw one frame, so that loading costs (the track's
        raster, compiling the renderer the first time) fall in the load, not in a step's answer."""
        for i in (0, 1):
            view = self._view(i, track)
            if view is not None:
                view.frame(*track.start_pose(), self.appearance)
        self.view_track = track

    def leave_world(self) -> None:
        """Take the car out of its world (exit_scene, disconnect)."""
        if self.world is not None and self.car is not None:
            self.server.leave(self.world, self.car)
        self.world = self.car = None
        self.views = [None, None]
        self.view_track = None

    def _new_look(self) -> None:
        """A new randomised appearance for the next episode (``--randomize``)."""
        if self.cfg.randomize:
            from donkeyrl.sim.appearance import Appearance

            self.appearance = Appearance.random(self.rng)

    def _after_reset(self) -> None:
        self.controls = (0.0, 0.0, 1.0)  # the simulator zeroes the controls and brakes
        self._new_look()

    def step(self) -> None:
        """Advance one control period and send telemetry (plus a start-line crossing if any)."""
        assert self.world is not None and self.car is not None
        snap = self.world.step(self.car, *self.controls)
        self.scene_time += PERIOD
        if snap.telemetry.crossed_start:  # the car spawns behind the line: the first crossing starts the clock
            self.send(P.StartingLine(0, round(self.scene_time, 4)))
        self.send(self.telemetry_message(snap))

    def _view(self, i: int, track: Track) -> CameraView | None:
        settings = self.cameras[i]
        if settings is None:
            return None
        view = self.views[i]
        if view is None or view.settings != settings:
            view = self.views[i] = CameraView(settings, track)
        elif self.view_track is not track:
            view.set_track(track)
        return view

    def telemetry_message(self, snap: Snapshot) -> P.Telemetry:
        """Protocol telemetry from a world snapshot (units as the Unity simulator's)."""
        t = snap.telemetry
        x, z, yaw = snap.pose
        images = []
        for i in (0, 1):
            view = self._view(i, snap.track)
            images.append("" if view is None else view.encode(
                view.frame(x, z, yaw, self.appearance, snap.others), self.cfg.jpeg_quality))
        self.view_track = snap.track
        extra = {}
        if self.lidar is not None:
            extra["lidar"] = scan(self.lidar, x, z, yaw, obstacles(snap.track, snap.others))
        stride = node_stride(snap.track)
        return P.Telemetry(
            steering_angle=float(t.steering), throttle=float(t.throttle), speed=t.speed / UNIT,
            image=images[0], imageb=images[1], hit=snap.hit,
            time=round(self.scene_time, 4), accel_x=t.accel_x / UNIT, accel_y=0.0,
            accel_z=t.accel_z / UNIT, gyro_x=0.0, gyro_y=float(t.yaw_rate), gyro_z=0.0,
            pitch=math.degrees(t.pitch) % 360.0, yaw=math.degrees(t.yaw) % 360.0,
            roll=math.degrees(t.roll) % 360.0,
            activeNode=int(t.path_index) // stride, totalNodes=-(-snap.track.n // stride),
            cte=float(t.cte), pos_x=t.x / UNIT, pos_y=t.y / UNIT, pos_z=t.z / UNIT,
            vel_x=t.vel_x / UNIT, vel_y=0.0, vel_z=t.vel_z / UNIT, extended=True, extra=extra)

    # ------------------------------------------------------------------ handlers
    def on_get_scene_names(self, _msg: P.Message) -> None:
        self.send(P.SceneNames(tuple(self.server.scenes)))

    def on_load_scene(self, msg: P.LoadScene) -> None:
        if self.car is not None:  # the simulator's cars do not handle it: ignored
            log.info("client %s: load_scene %r ignored: already in %r (send exit_scene first)",
                     self.peer, msg.scene_name[:60], self.scene)
        elif msg.scene_name not in self.server.scenes:
            log.warning("client %s: unknown scene %r ignored", self.peer, msg.scene_name[:60])
        else:
            self.load(msg.scene_name)

    def on_exit_scene(self, _msg: P.Message) -> None:
        if self.car is None:
            return
        self.leave_world()
        self.menu_since = time.monotonic()
        self.send(P.SceneSelectionReady())

    def on_control(self, msg: P.Control) -> None:
        self.controls = (min(1.0, max(-1.0, msg.steering)), min(1.0, max(-1.0, msg.throttle)),
                         min(1.0, max(0.0, msg.brake)))
        if self.synchronous and self.car is not None and not self.paused:
            self.step()

    def on_reset_car(self, _msg: P.Message) -> None:
        if self.world is not None and self.car is not None:
            self.world.respawn(self.car)
            self._after_reset()

    def on_regen_road(self, msg: P.RegenRoad) -> None:
        if self.world is None or self.car is None or self.world.scene != REGEN_SCENE:
            log.info("client %s: regen_road ignored outside %s", self.peer, REGEN_SCENE)
            return
        world = self.world
        if msg.turn_increment:
            world.turn_increment = float(msg.turn_increment)
        seed = int(msg.rand_seed) % SEED_SPACE
        track = regenerated_road(seed, int(msg.road_style), world.turn_increment)
        world.set_track(track, seed)
        self._after_reset()
        self._prepare_views(track)
        log.info("client %s: road regenerated (seed %d, style %d)", self.peer, seed, msg.road_style)

    def on_node_position(self, msg: P.NodePositionRequest) -> None:
        if self.world is None:
            return
        track = self.world.track
        stride = node_stride(track)
        nodes = track.points[::stride]
        if not 0 <= msg.index < len(nodes):  # the simulator answers nothing
            log.debug("client %s: node_position %d out of range 0..%d ignored", self.peer, msg.index,
                      len(nodes) - 1)
            return
        x, z = nodes[msg.index]
        tx, tz = track.tangents[msg.index * stride]
        yaw = math.atan2(tx, tz)  # the node faces along the path: a rotation about the up axis
        y = float(np.asarray(track.heights)[msg.index * stride])
        self.send(P.NodePosition(msg.index, float(x), y, float(z), 0.0, math.sin(yaw / 2), 0.0,
                                 math.cos(yaw / 2)))

    def on_get_protocol_version(self, _msg: P.Message) -> None:
        self.send(P.ProtocolVersion("2"))

    def on_car_config(self, msg: P.CarConfig) -> None:
        self.car_colour = tuple(min(255, max(0, int(c))) for c in (msg.body_r, msg.body_g, msg.body_b))  # type: ignore[assignment]
        if msg.car_name and msg.car_name != "Racer Name":  # the simulator skips its placeholder
            self.car_name = msg.car_name[:64]
        if self.world is not None and self.car is not None:
            with self.world.lock:
                self.car.colour = self.car_colour  # type: ignore[assignment]
                if self.car_name:
                    self.car.name = self.car_name

    def on_racer_info(self, msg: P.RacerInfo) -> None:
        log.debug("client %s: racer_info %r (cosmetic)", self.peer, msg.racer_name[:64])

    def _cam_config(self, i: int, msg: P.CamConfig) -> None:
        current = self.cameras[i] or CameraSettings.default()
        settings, problems = current.apply(msg)
        self.cameras[i] = settings
        for problem in problems:
            self._bad(f"{msg.msg_type}: {problem}")

    def on_cam_config(self, msg: P.CamConfig) -> None:
        self._cam_config(0, msg)

    def on_cam_config_b(self, msg: P.CamConfigB) -> None:
        self._cam_config(1, msg)

    def on_lidar_config(self, msg: P.LidarConfig) -> None:
        self.lidar = LidarSettings.from_message(msg, self.lidar)  # ValueError: counted as bad

    def on_set_position(self, msg: P.SetPosition) -> None:
        if self.world is None or self.car is None:
            return
        # heading of the quaternion's forward vector q * (0, 0, 1) on the ground plane; pos_y and
        # any tilt are not kept: the built-in car always stands on the road
        qx, qy, qz, qw = msg.Qx, msg.Qy, msg.Qz, msg.Qw
        yaw = math.atan2(2.0 * (qx * qz + qw * qy), 1.0 - 2.0 * (qx * qx + qy * qy))
        self.world.teleport(self.car, msg.pos_x, msg.pos_z, yaw)

    def on_step_mode(self, msg: P.StepMode) -> None:
        self.synchronous = msg.step_mode == "synchronous" or self.cfg.fast
        log.info("client %s: step_mode %s: %s", self.peer, msg.step_mode,
                 "one step per control" if self.synchronous else "real time")

    def on_pause(self, msg: P.Pause) -> None:
        self.paused = bool(msg.is_pause)

    def on_quit_app(self, _msg: P.Message) -> None:
        if not self.cfg.allow_quit:
            log.info("client %s: quit_app ignored (server started with allow_quit=False)", self.peer)
            return
        log.warning("client %s sent quit_app: stopping the server", self.peer)
        self.server.request_stop()


class DonkeySimServer:
    """TCP server: accepts connections and runs one :class:`Session` thread per car."""

    def __init__(self, config: ServerConfig = ServerConfig()) -> None:
        from donkeyrl.sim.tracks import get_track

        self.config = config
        self.scenes = scene_names()
        if config.track is not None:
            get_track(config.track)  # fail now, with the catalogue's error, on a bad name
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((config.host, config.port))
        self._listener.listen(32)
        self.host, self.port = self._listener.getsockname()[:2]
        self._stop = threading.Event()
        self._sessions: dict[threading.Thread, Session] = {}
        self._worlds: dict[str, World] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._rng = np.random.default_rng(config.seed)
        self._connections = 0

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask the accept loop and every session to finish (non-blocking)."""
        self._stop.set()

    # ------------------------------------------------------------------ worlds
    def join(self, scene: str, car_name: str | None = None) -> tuple[World, Car]:
        """Put a new car into the scene's world, creating the world (and, for generated_road, a
        new random road) when no car is in it."""
        from donkeyrl.sim.tracks import get_track

        with self._lock:
            world = self._worlds.get(scene)
            if world is None or world.empty:
                seed = None
                if scene == REGEN_SCENE:
                    seed = int(self._rng.integers(SEED_SPACE))
                world = self._worlds[scene] = World(scene, get_track(scene, seed=seed), seed)
                log.info("scene %r loaded%s", scene, "" if seed is None else f" (road seed {seed})")
            return world, world.add_car(car_name)

    def leave(self, world: World, car: Car) -> None:
        """Remove a car; a world without cars is unloaded."""
        world.remove_car(car)
        with self._lock:
            if world.empty and self._worlds.get(world.scene) is world:
                del self._worlds[world.scene]

    def world(self, scene: str) -> World | None:
        """The loaded world of ``scene`` (None when no car is in it)."""
        with self._lock:
            return self._worlds.get(scene)

    def sessions(self) -> list[Session]:
        """The live connections."""
        with self._lock:
            return [s for t, s in self._sessions.items() if t.is_alive()]

    # ------------------------------------------------------------------ accept loop
    def serve_forever(self) -> None:
        """Accept connections until :meth:`request_stop` or :meth:`close`."""
        log.info("DonkeyCar protocol server on %s:%d (%s mode, %s)", self.host, self.port,
                 "fast" if self.config.fast else "real-time",
                 f"scene {self.config.track!r}" if self.config.track else "menu")
        try:
            while not self._stop.is_set():
                try:
                    readable, _, _ = select.select([self._listener], [], [], 0.2)
                except (OSError, ValueError):
                    break  # listener closed
                if readable:
                    self._accept()
        finally:
            self._shutdown()

    def _accept(self) -> None:
        try:
            sock, addr = self._listener.accept()
        except OSError:
            return
        peer = f"{addr[0]}:{addr[1]}"
        with self._lock:
            self._sessions = {t: s for t, s in self._sessions.items() if t.is_alive()}
            if len(self._sessions) >= self.config.max_clients and not self._evict(peer):
                log.warning("refusing %s: %d clients connected, none inactive for %g s", peer,
                            len(self._sessions), self.config.handshake_timeout)
                sock.close()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._connections += 1
            session = Session(self, sock, peer, self._connections)
            thread = threading.Thread(target=session.run, name=f"donkeysim-{peer}", daemon=True)
            self._sessions[thread] = session
        log.info("client %s connected", peer)
        thread.start()

    def _evict(self, newcomer: str) -> bool:
        """Make room by closing the connection inactive longest, if inactive long enough."""
        live = [(s.last_active, t, s) for t, s in self._sessions.items() if s.kick_reason is None]
        if not live:
            return False
        last, thread, victim = min(live, key=lambda item: item[0])
        inactive = time.monotonic() - last
        if not self.config.handshake_timeout or inactive < self.config.handshake_timeout:
            return False
        log.warning("server full: closing %s (inactive for %.0f s) to admit %s", victim.peer,
                    inactive, newcomer)
        victim.kick(f"inactive for {inactive:.0f} s while the server was full")
        del self._sessions[thread]
        return True

    def _shutdown(self) -> None:
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            threads = list(self._sessions)
        for thread in threads:
            thread.join(timeout=2.0)

    def start(self) -> DonkeySimServer:
        """Serve in a background thread (for tests and embedding); returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="donkeysim-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, close every connection, wait for the threads."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        else:
            self._shutdown()

    def __enter__(self) -> DonkeySimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
