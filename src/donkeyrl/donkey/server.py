"""The simulator side of the DonkeyCar protocol over the built-in simulator.

Why: the Unity simulator cannot run everywhere (no GPU, CI, this project's tests), yet every
DonkeyCar tool speaks its TCP protocol. Serving the embedded simulator over the same protocol gives
a headless, fast DonkeyCar simulator for any such tool, and a real peer to test the client against.

Behaviour mirrors the Unity simulator (see the protocol reference): one car per connection, a menu
listing the scenes (the track catalogue, which includes the DonkeyCar scene names), telemetry at
20 Hz of simulated time with positions and speeds divided by 8 and cte in simulator units. Each
connection gets its own :class:`~donkeyrl.sim.simulator.Simulator`, so clients never affect each
other. ``fast`` mode steps the car once per ``control`` message and answers with exactly one
telemetry (as fast as the client answers), instead of running on the wall clock.

Hostile input (garbage, huge messages, floods, abrupt disconnects) is logged and survived; a
connection that keeps sending bad messages, or does not read its telemetry, is dropped alone.
"""

from __future__ import annotations

import logging
import math
import select
import socket
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from donkeyrl.donkey import protocol as P

log = logging.getLogger(__name__)

#: Simulated seconds per control period / telemetry frame (physics at 100 Hz, telemetry every 5th).
PERIOD = 0.05
#: Telemetry units per simulator unit.
UNIT = 8.0
#: Spacing of the centre-line nodes served by ``node_position`` (simulator units, like the
#: generated road's 2-unit nodes).
NODE_SPACING = 2.0
#: Largest camera image a client may request (pixels per side); bounds the rendering cost.
MAX_IMAGE_SIDE = 1024


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
    #: Most simultaneous connections; more are refused (closed at once).
    max_clients: int = 16
    #: Bad messages tolerated per connection before it is dropped.
    max_errors: int = 100
    #: Seconds a send may block (client not reading) before the connection is dropped.
    send_timeout: float = 10.0
    #: Honour ``quit_app`` (stops the whole server, like the Unity simulator quitting).
    allow_quit: bool = True
    #: Seed of the per-connection simulators (None: random).
    seed: int | None = None


@lru_cache(maxsize=64)
def _track(name: str, seed: int | None):
    from donkeyrl.sim.tracks import get_track

    return get_track(name, seed=seed)


def scene_names() -> list[str]:
    """The menu: every catalogue track name (DonkeyCar scene names included)."""
    from donkeyrl.sim.tracks import list_tracks

    return [info.name for info in list_tracks()]


class Session:
    """One connection = one car; runs in its own thread."""

    def __init__(self, server: DonkeySimServer, sock: socket.socket, peer: str) -> None:
        from donkeyrl.sim.camera import CameraConfig

        self.server, self.sock, self.peer = server, sock, peer
        self.cfg = server.config
        self.decoder = P.ClientStreamDecoder()
        self.errors = 0
        self.scene: str | None = None
        self.sim = None
        self.renderer = None
        self.camera = CameraConfig()
        self.img_enc = "JPG"
        self.controls = (0.0, 0.0, 0.0)
        self.scene_time = 0.0
        self.nodes = np.zeros((0, 2))
        self.stride = 1

    # ------------------------------------------------------------------ io
    def send(self, msg: P.Message) -> None:
        self.sock.sendall(P.encode_sim(msg))

    def run(self) -> None:
        """Serve until the client leaves, the server stops, or the client misbehaves too much."""
        try:
            self.sock.settimeout(self.cfg.send_timeout)
            if self.cfg.track:
                self.load(self.cfg.track)
            else:
                self.send(P.SceneSelectionReady())
            self._loop()
        except (OSError, ConnectionError) as exc:
            log.info("client %s gone: %s", self.peer, exc)
        except _Drop as exc:
            log.warning("dropping client %s: %s", self.peer, exc)
        except Exception:
            log.exception("client %s: internal error, closing its connection", self.peer)
        finally:
            self.sock.close()

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self.server.stopping:
            realtime = self.sim is not None and not self.cfg.fast
            wait = max(0.0, next_tick - time.monotonic()) if realtime else 0.25
            readable, _, _ = select.select([self.sock], [], [], wait)
            if readable:
                data = self.sock.recv(1 << 16)
                if not data:
                    log.info("client %s disconnected", self.peer)
                    return
                for item in self.decoder.feed(data):
                    self._handle(item)
            if realtime and self.sim is not None and time.monotonic() >= next_tick:
                self.step()
                next_tick += PERIOD
                if time.monotonic() - next_tick > 0.5:  # far behind (machine busy): do not catch up
                    next_tick = time.monotonic() + PERIOD
            elif not realtime:
                next_tick = time.monotonic()

    def _handle(self, item: P.Message | P.ProtocolError) -> None:
        if isinstance(item, P.ProtocolError):
            self._bad(str(item))
            return
        handler = getattr(self, f"on_{item.msg_type}", None)
        if handler is None:
            self._bad(f"unsupported message type {getattr(item, 'type_name', item.msg_type)!r} ignored")
            return
        try:
            handler(item)
        except (ValueError, KeyError, IndexError) as exc:
            self._bad(f"{item.msg_type}: {exc}")

    def _bad(self, what: str) -> None:
        self.errors += 1
        if self.errors <= 10:
            log.warning("client %s: %s", self.peer, what)
        elif self.errors == 11:
            log.warning("client %s: more bad input; not logging it any more", self.peer)
        if self.errors > self.cfg.max_errors:
            raise _Drop(f"more than {self.cfg.max_errors} bad messages")

    # ------------------------------------------------------------------ scene
    def load(self, name: str, seed: int | None = None) -> None:
        """Build the scene's simulator and renderer, then announce ``car_loaded``."""
        from donkeyrl.sim.camera import Renderer
        from donkeyrl.sim.simulator import Simulator

        track = _track(name, seed)
        self.sim = Simulator(track, n_cars=1, camera=None, seed=self.cfg.seed)
        self.renderer = Renderer(track, self.camera)
        self.scene, self.scene_time = name, 0.0
        self._set_nodes(track)
        self._after_reset()
        log.info("client %s: car loaded in %r", self.peer, name)
        self.send(P.CarLoaded())

    def _set_nodes(self, track) -> None:
        self.stride = max(1, int(round(NODE_SPACING / (track.length / track.n))))
        self.nodes = np.asarray(track.points[:: self.stride])

    def _after_reset(self) -> None:
        self.controls = (0.0, 0.0, 1.0)  # the simulator zeroes the controls and brakes

    def step(self) -> None:
        """Advance one control period and send telemetry (plus a start-line crossing if any)."""
        assert self.sim is not None
        steer, throttle, brake = self.controls
        self.sim.step(np.array([steer]), np.array([throttle]), np.array([brake]))
        self.scene_time += PERIOD
        t = self.sim.telemetry(0)
        if t.crossed_start:  # the car spawns behind the line: the first crossing starts the clock
            self.send(P.StartingLine(0, round(self.scene_time, 4)))
        self.send(self.telemetry_message(t))

    def telemetry_message(self, t) -> P.Telemetry:
        """Protocol telemetry from the simulator's :class:`Telemetry` (units as the Unity sim)."""
        assert self.renderer is not None
        img = self.renderer.render(t.x, t.z, t.yaw)
        return P.Telemetry(
            steering_angle=float(t.steering), throttle=float(t.throttle), speed=t.speed / UNIT,
            image=P.encode_image(img, self.img_enc, self.cfg.jpeg_quality), hit=str(t.hit),
            time=round(self.scene_time, 4), accel_x=t.accel_x / UNIT, accel_y=0.0,
            accel_z=t.accel_z / UNIT, gyro_x=0.0, gyro_y=float(t.yaw_rate), gyro_z=0.0,
            pitch=0.0, yaw=math.degrees(t.yaw) % 360.0, roll=0.0,
            activeNode=int(t.path_index) // self.stride, totalNodes=len(self.nodes),
            cte=float(t.cte), pos_x=t.x / UNIT, pos_y=0.0, pos_z=t.z / UNIT,
            vel_x=t.vel_x / UNIT, vel_y=0.0, vel_z=t.vel_z / UNIT, extended=True)

    # ------------------------------------------------------------------ handlers
    def on_get_scene_names(self, _msg: P.Message) -> None:
        self.send(P.SceneNames(tuple(self.server.scenes)))

    def on_load_scene(self, msg: P.LoadScene) -> None:
        if self.sim is not None:
            raise ValueError("load_scene ignored: already in a scene (send exit_scene first)")
        if msg.scene_name not in self.server.scenes:
            raise ValueError(f"unknown scene {msg.scene_name!r} ignored")
        self.load(msg.scene_name)

    def on_exit_scene(self, _msg: P.Message) -> None:
        if self.sim is None:
            return
        self.sim = self.renderer = None
        self.scene = None
        self.send(P.SceneSelectionReady())

    def on_control(self, msg: P.Control) -> None:
        self.controls = (min(1.0, max(-1.0, msg.steering)), min(1.0, max(-1.0, msg.throttle)),
                         min(1.0, max(0.0, msg.brake)))
        if self.cfg.fast and self.sim is not None:
            self.step()

    def on_reset_car(self, _msg: P.Message) -> None:
        if self.sim is not None:
            self.sim.reset()
            self._after_reset()

    def on_regen_road(self, msg: P.RegenRoad) -> None:
        if self.sim is None or self.renderer is None or self.scene is None:
            raise ValueError("regen_road outside a scene ignored")
        track = _track(self.scene, int(msg.rand_seed))
        self.sim.set_track(track)
        self.renderer.set_track(track)
        self._set_nodes(track)
        self.sim.reset()
        self._after_reset()

    def on_node_position(self, msg: P.NodePositionRequest) -> None:
        if self.sim is None:
            raise ValueError("node_position outside a scene ignored")
        if not 0 <= msg.index < len(self.nodes):
            raise IndexError(f"node index {msg.index} out of range 0..{len(self.nodes) - 1}")
        x, z = self.nodes[msg.index]
        tx, tz = self.sim.track.tangents[msg.index * self.stride]
        yaw = math.atan2(tx, tz)  # the node faces along the path: a rotation about the up axis
        self.send(P.NodePosition(msg.index, float(x), 0.0, float(z), 0.0, math.sin(yaw / 2), 0.0,
                                 math.cos(yaw / 2)))

    def on_get_protocol_version(self, _msg: P.Message) -> None:
        self.send(P.ProtocolVersion("2"))

    def on_car_config(self, msg: P.CarConfig) -> None:
        log.debug("client %s: car_config %s (cosmetic, ignored)", self.peer, msg)

    def on_cam_config(self, msg: P.CamConfig) -> None:
        cam = self.camera
        w, h = msg.img_w or cam.width, msg.img_h or cam.height
        if not (1 <= w <= MAX_IMAGE_SIDE and 1 <= h <= MAX_IMAGE_SIDE):
            raise ValueError(f"camera size {w}x{h} outside 1..{MAX_IMAGE_SIDE}")
        enc = msg.img_enc.upper() or "JPG"
        if enc not in ("JPG", "JPEG", "PNG", "TGA"):
            raise ValueError(f"img_enc {msg.img_enc!r} is not one of JPG, PNG, TGA")
        changes: dict[str, object] = {"width": w, "height": h, "grey": msg.img_d == 1,
                                      "aspect": w / h}
        if msg.fov:
            changes["fov_deg"] = msg.fov
        if msg.offset_x or msg.offset_y or msg.offset_z:
            changes.update(cam_height=msg.offset_y or cam.cam_height, cam_forward=msg.offset_z)
        if msg.rot_x:
            changes["pitch_deg"] = msg.rot_x
        self.camera = replace(cam, **changes)  # raises ValueError on bad values
        self.img_enc = enc
        if self.renderer is not None:
            from donkeyrl.sim.camera import Renderer

            self.renderer = Renderer(self.renderer.track, self.camera)

    def on_quit_app(self, _msg: P.Message) -> None:
        if not self.cfg.allow_quit:
            raise ValueError("quit_app refused (server started with allow_quit=False)")
        log.warning("client %s sent quit_app: stopping the server", self.peer)
        self.server.request_stop()


class _Drop(Exception):
    """Internal: close this connection."""


class DonkeySimServer:
    """TCP server: accepts connections and runs one :class:`Session` thread per car."""

    def __init__(self, config: ServerConfig = ServerConfig()) -> None:
        self.config = config
        self.scenes = scene_names()
        if config.track is not None:
            _track(config.track, None)  # fail now, with the catalogue's error, on a bad name
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((config.host, config.port))
        self._listener.listen(32)
        self.host, self.port = self._listener.getsockname()[:2]
        self._stop = threading.Event()
        self._sessions: dict[threading.Thread, Session] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask the accept loop and every session to finish (non-blocking)."""
        self._stop.set()

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
            if len(self._sessions) >= self.config.max_clients:
                log.warning("refusing %s: already %d clients", peer, len(self._sessions))
                sock.close()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = Session(self, sock, peer)
            thread = threading.Thread(target=session.run, name=f"donkeysim-{peer}", daemon=True)
            self._sessions[thread] = session
        log.info("client %s connected", peer)
        thread.start()

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
