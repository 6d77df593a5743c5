"""TCP client of the DonkeyCar simulator: connect with retries, handshake, message inbox.

Why its own client: the reference client has no connect retry, waits forever for the car, and
hides a lost simulator behind a dead thread. Here a background reader thread decodes the stream
into an inbox (latest telemetry with a sequence number + a bounded queue of other messages);
every wait has a timeout, and a lost connection surfaces as :class:`SimDisconnected` on the next
call, which the trial runner turns into ``run_status = "sim_disconnected"``.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from donkeyrl.donkey import protocol as P

log = logging.getLogger(__name__)


class SimError(RuntimeError):
    """Base of the client's errors."""


class SimConnectError(SimError, ConnectionError):
    """No simulator accepted the connection (after retries)."""


class SimDisconnected(SimError, ConnectionError):
    """The simulator closed or reset the connection (crash, quit, network)."""


class SimTimeout(SimError, TimeoutError):
    """The simulator did not answer in time."""


class UnknownSceneError(SimError, ValueError):
    """The requested scene is not in the simulator's menu."""


@dataclass(frozen=True)
class ClientConfig:
    """Timeouts of the client (seconds)."""

    #: Overall time allowed to establish the TCP connection (retrying while refused).
    connect_timeout: float = 30.0
    #: Pause between connection attempts.
    retry_interval: float = 0.5
    #: Time allowed for the menu / car_loaded handshake (scene loading can be slow).
    load_timeout: float = 60.0
    #: Time allowed for one answer (telemetry after a control, node_position...).
    io_timeout: float = 10.0
    #: Pause after each config message (the reference client uses 0.1 s; 0 for the built-in server).
    config_delay: float = 0.1

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "retry_interval", "load_timeout", "io_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ClientConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.config_delay < 0:
            raise ValueError(f"ClientConfig.config_delay must be >= 0, got {self.config_delay!r}")


class SimClient:
    """One connection (one car) to a simulator. Thread-safe sends; one background reader."""

    #: Non-telemetry messages kept at most (older ones are dropped with a warning).
    MAX_EVENTS = 10000

    def __init__(self, host: str = "127.0.0.1", port: int = 9091,
                 config: ClientConfig = ClientConfig()) -> None:
        self.host, self.port, self.config = host, int(port), config
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._telemetry: P.Telemetry | None = None
        self._telemetry_seq = 0
        self._events: collections.deque[P.Message] = collections.deque()
        self._closed_reason: str | None = None
        self._closing = False
        self.protocol_errors = 0
        self.scene: str | None = None

    # ------------------------------------------------------------------ connection
    def connect(self) -> SimClient:
        """Open the TCP connection, retrying refused connections until ``connect_timeout``."""
        cfg = self.config
        deadline = time.monotonic() + cfg.connect_timeout
        attempts, last = 0, None
        while True:
            attempts += 1
            try:
                sock = socket.create_connection((self.host, self.port),
                                                timeout=max(0.1, min(5.0, deadline - time.monotonic())))
                break
            except OSError as exc:
                last = exc
            if time.monotonic() + cfg.retry_interval > deadline:
                raise SimConnectError(
                    f"could not connect to a DonkeyCar simulator at {self.host}:{self.port} after "
                    f"{attempts} attempts in {cfg.connect_timeout:g} s ({last}); is the simulator "
                    "running on that port? (start one with --sim-path or `donkeyrl sim serve`)")
            time.sleep(cfg.retry_interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        self._sock = sock
        self._reader = threading.Thread(target=self._read_loop, name=f"donkeysim-{self.port}",
                                        daemon=True)
        self._reader.start()
        log.info("connected to simulator at %s:%d", self.host, self.port)
        return self

    def _read_loop(self) -> None:
        """Decode the stream into the inbox until EOF; never dies on bad input."""
        decoder = P.SimStreamDecoder()
        reason = "connection closed by the simulator"
        sock = self._sock
        assert sock is not None
        received = False
        try:
            while True:
                data = sock.recv(1 << 16)
                if not data:
                    if not received:  # refused at once: the usual cause is a full server
                        reason = ("connection closed by the simulator before it sent anything (is it "
                                  "full? `donkeyrl sim serve` admits --max-clients connections)")
                    break
                received = True
                for item in decoder.feed(data):
                    if isinstance(item, P.ProtocolError):
                        self.protocol_errors += 1
                        log.warning("ignoring bad message from the simulator: %s", item)
                    else:
                        self._deliver(item)
        except OSError as exc:
            reason = f"connection lost: {exc}"
        with self._cond:
            self._closed_reason = reason
            self._cond.notify_all()
        if not self._closing:
            log.warning("simulator at %s:%d: %s", self.host, self.port, reason)

    def _deliver(self, msg: P.Message) -> None:
        with self._cond:
            if isinstance(msg, P.Telemetry):
                self._telemetry = msg
                self._telemetry_seq += 1
            else:
                if len(self._events) >= self.MAX_EVENTS:
                    dropped = self._events.popleft()
                    log.warning("inbox full, dropping %s", dropped.msg_type)
                self._events.append(msg)
            self._cond.notify_all()

    @property
    def connected(self) -> bool:
        """True while the connection is open."""
        return self._sock is not None and self._closed_reason is None

    def _check(self) -> None:
        if self._sock is None:
            raise SimDisconnected("not connected (call connect() first)")
        if self._closed_reason is not None:
            raise SimDisconnected(f"simulator at {self.host}:{self.port} lost: {self._closed_reason}")

    def send(self, msg: P.Message) -> None:
        """Send one message; raises :class:`SimDisconnected` if the simulator is gone."""
        self._check()
        data = P.encode_client(msg)
        assert self._sock is not None
        try:
            with self._send_lock:
                self._sock.sendall(data)
        except OSError as exc:
            with self._cond:
                self._closed_reason = self._closed_reason or f"send failed: {exc}"
            raise SimDisconnected(f"simulator at {self.host}:{self.port} lost: {exc}") from exc

    # ------------------------------------------------------------------ inbox
    @property
    def telemetry_seq(self) -> int:
        """How many telemetry frames have arrived so far."""
        with self._cond:
            return self._telemetry_seq

    def wait_telemetry(self, after_seq: int, timeout: float | None = None) -> tuple[int, P.Telemetry]:
        """The latest telemetry once one newer than ``after_seq`` has arrived."""
        timeout = self.config.io_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._telemetry_seq <= after_seq:
                self._check()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SimTimeout(f"no telemetry from {self.host}:{self.port} within {timeout:g} s")
                self._cond.wait(left)
            assert self._telemetry is not None
            return self._telemetry_seq, self._telemetry

    def wait_message(self, kinds: tuple[type[P.Message], ...], timeout: float | None = None,
                     what: str = "", match: Callable[[P.Message], bool] | None = None) -> P.Message:
        """Remove and return the first queued message of one of ``kinds`` (matching ``match``)."""
        timeout = self.config.io_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self._events:
                    if isinstance(msg, kinds) and (match is None or match(msg)):
                        self._events.remove(msg)
                        return msg
                self._check()
                left = deadline - time.monotonic()
                if left <= 0:
                    names = what or "/".join(k.msg_type for k in kinds)
                    raise SimTimeout(f"simulator at {self.host}:{self.port} sent no {names} "
                                     f"within {timeout:g} s")
                self._cond.wait(left)

    def pop_events(self, kind: type[P.Message]) -> list[P.Message]:
        """Remove and return every queued message of ``kind`` (e.g. start-line crossings)."""
        with self._cond:
            hits = [m for m in self._events if isinstance(m, kind)]
            for m in hits:
                self._events.remove(m)
            return hits

    def clear_events(self) -> None:
        """Forget every queued non-telemetry message."""
        with self._cond:
            self._events.clear()

    # ------------------------------------------------------------------ handshake
    def load_scene(self, scene: str, *, reload: bool = False) -> str:
        """Get a car into ``scene``, from the menu or from an already-loaded scene.

        In the menu: list the scenes (unknown name -> :class:`UnknownSceneError` naming the
        available ones), load, wait for ``car_loaded``. Already in a scene: keep it (its name cannot
        be checked over the protocol) unless ``reload``, which exits to the menu first.
        Returns ``"menu"`` or ``"scene"``: where the simulator was.
        """
        first = self.wait_message((P.SceneSelectionReady, P.CarLoaded), self.config.load_timeout,
                                  "scene_selection_ready or car_loaded")
        where = "menu" if isinstance(first, P.SceneSelectionReady) else "scene"
        if where == "scene":
            if not reload:
                log.warning("simulator already in a scene; using it as is (requested %r)", scene)
                self.scene = scene
                return where
            self.exit_scene()
            self.wait_message((P.SceneSelectionReady,), self.config.load_timeout)
        self.send(P.GetSceneNames())
        names = self.wait_message((P.SceneNames,), self.config.io_timeout)
        available = names.scene_names  # type: ignore[attr-defined]
        if scene not in available:
            raise UnknownSceneError(f"scene {scene!r} is not offered by the simulator at "
                                    f"{self.host}:{self.port}; available: {', '.join(available)}")
        self.send(P.LoadScene(scene_name=scene))
        self.wait_message((P.CarLoaded,), self.config.load_timeout, "car_loaded")
        self.scene = scene
        log.info("car loaded in scene %r", scene)
        return where

    def configure(self, cam: P.CamConfig | None = None, car: P.CarConfig | None = None) -> None:
        """Send car and camera config, ``config_delay`` apart like the reference client.

        No control is sent here: a caller that steps the simulator must pair every control with
        its telemetry (in the server's fast mode one control = one telemetry), or it would read
        the previous control's answer forever after.
        """
        for msg in (car, cam):
            if msg is not None:
                self.send(msg)
                time.sleep(self.config.config_delay)

    def read_nodes(self, total: int, window: int = 64) -> list[P.NodePosition]:
        """All ``total`` centre-line nodes via ``node_position`` (``window`` requests in flight)."""
        if total <= 0:
            return []
        got: dict[int, P.NodePosition] = {}
        nxt = 0
        while len(got) < total:
            while nxt < total and nxt - len(got) < window:
                self.send(P.NodePositionRequest(index=nxt))
                nxt += 1
            msg = self.wait_message((P.NodePosition,), self.config.io_timeout, "node_position")
            assert isinstance(msg, P.NodePosition)
            if 0 <= msg.index < total:
                got[msg.index] = msg
        return [got[i] for i in range(total)]

    def protocol_version(self) -> str:
        """The simulator's protocol version string."""
        self.send(P.GetProtocolVersion())
        msg = self.wait_message((P.ProtocolVersion,))
        return msg.version  # type: ignore[attr-defined]

    def exit_scene(self) -> None:
        """Back to the menu (the simulator stays up for the next client)."""
        self.clear_events()
        self.send(P.ExitScene())

    def close(self, exit_scene: bool = True) -> None:
        """Leave the simulator usable: brake, exit the scene (optional), close the socket."""
        if self._sock is None:
            return
        self._closing = True
        if exit_scene and self.connected:
            try:
                self.send(P.Control(0.0, 0.0, 1.0))
                self.send(P.ExitScene())
            except SimDisconnected:
                pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        self._sock = None

    def __enter__(self) -> SimClient:
        return self if self._sock is not None else self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()
