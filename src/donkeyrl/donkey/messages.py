"""Typed messages of the DonkeyCar protocol and the value parsing they share (pure, no I/O).

One frozen dataclass per message type, in two registries because the two directions reuse names
(``node_position`` is both a request and its answer). Parsing is lenient where the Unity simulator
is (numbers may arrive as strings, decimal commas) and strict where a wrong value would silently
corrupt an episode (non-finite numbers, wrong types): those raise :class:`ProtocolError`.
Framing and encoding live in :mod:`donkeyrl.donkey.protocol`, which re-exports everything here.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, cast

#: Longest simulator -> client line kept (a 640x480 PNG in base64 is about 1.2 MB).
MAX_SIM_MESSAGE = 8 * 1024 * 1024
#: Longest client -> simulator object kept (client messages are a few hundred bytes).
MAX_CLIENT_MESSAGE = 64 * 1024
#: How many bytes of offending input an error message shows.
SNIPPET = 80


class ProtocolError(ValueError):
    """Input that is not a valid protocol message; ``data`` holds the offending bytes (shortened)."""

    def __init__(self, reason: str, data: bytes | str = b"") -> None:
        raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
        self.reason = reason
        self.data = shorten(raw)
        super().__init__(f"{reason}: {self.data!r}" if raw else reason)


def shorten(data: bytes, limit: int = SNIPPET) -> bytes:
    """``data`` cut to ``limit`` bytes with a marker saying how much was dropped."""
    if len(data) <= limit:
        return data
    return data[: limit - 20] + f"...(+{len(data) - limit + 20} bytes)".encode()


# ----------------------------------------------------------------------------- value parsing
_DECIMAL_COMMA = re.compile(rb"(:\s*-?\d+),(\d+(?:[eE][-+]?\d+)?)(?=\s*[,}\]])")


def loads_tolerant(raw: bytes) -> Any:
    """Parse JSON, repairing decimal commas (``"cte": 0,42``) written by some locales.

    Keys are always strings, so after ``:`` a ``digits,digits`` followed by a delimiter can only
    be a decimal comma. The repair is tried only when strict parsing fails.
    """
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        pass
    fixed = raw
    for _ in range(2):  # overlapping matches ("a":1,2,"b":3,4) need a second pass at most
        fixed = _DECIMAL_COMMA.sub(rb"\1.\2", fixed)
    return json.loads(fixed)


def to_float(name: str, value: Any) -> float:
    """A finite float from a JSON number or a numeric string (decimal comma accepted)."""
    if isinstance(value, bool):
        raise ProtocolError(f"field {name!r} must be a number, got a boolean", str(value))
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip().replace(",", "."))
        except ValueError:
            raise ProtocolError(f"field {name!r} must be a number", value) from None
    else:
        raise ProtocolError(f"field {name!r} must be a number, got {type(value).__name__}", str(value))
    if not math.isfinite(out):
        raise ProtocolError(f"field {name!r} must be finite", str(value))
    return out


def to_int(name: str, value: Any) -> int:
    """An integer from a JSON number or numeric string ("3", "3.0")."""
    out = to_float(name, value)
    if out != int(out):
        raise ProtocolError(f"field {name!r} must be an integer", str(value))
    return int(out)


def to_bool(name: str, value: Any) -> bool:
    """A flag from a JSON boolean, a number or a string ("1", "true", "0", "false"...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "on", "off"):
        return value.strip().lower() in ("true", "yes", "on")
    return to_float(name, value) != 0.0


def to_str(name: str, value: Any) -> str:
    """A string field; numbers are accepted and converted (lenient like the simulator)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ProtocolError(f"field {name!r} must be a string, got {type(value).__name__}", str(value))


_CONVERT = {float: to_float, int: to_int, str: to_str, bool: to_bool, "float": to_float, "int": to_int,
            "str": to_str, "bool": to_bool}


# ----------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class Message:
    """Base of every typed message: ``msg_type`` plus typed fields (unknown extras are kept)."""

    msg_type: ClassVar[str] = ""
    #: Which stream the message travels on: "client" (to the simulator) or "sim" (from it).
    direction: ClassVar[str] = ""

    def to_fields(self) -> dict[str, Any]:
        """The message's fields as plain Python values (without ``msg_type``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}

    @classmethod
    def from_fields(cls, obj: dict[str, Any]) -> Message:
        """Build from a decoded JSON object; missing fields take their defaults."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra" or f.name not in obj:
                continue
            conv = _CONVERT.get(f.type)
            kwargs[f.name] = conv(f.name, obj[f.name]) if conv else obj[f.name]
        return cls(**kwargs)


# --- client -> simulator --------------------------------------------------------------------
@dataclass(frozen=True)
class Control(Message):
    """Drive command: steering in [-1, 1] (x16 degrees), throttle in [-1, 1], brake in [0, 1]."""

    msg_type: ClassVar[str] = "control"
    direction: ClassVar[str] = "client"
    steering: float = 0.0
    throttle: float = 0.0
    brake: float = 0.0


def _empty(name: str, doc: str, direction: str) -> type[Message]:
    """A message type without fields (reset_car, exit_scene...)."""
    cls: type[Message] = dataclass(frozen=True)(type(_camel(name), (Message,), {
        "__doc__": doc, "msg_type": name, "direction": direction,
        "__annotations__": {"msg_type": ClassVar[str], "direction": ClassVar[str]}}))
    cls.__module__ = __name__
    return cls


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


ResetCar = _empty("reset_car", "Teleport the car to the start, zero its controls (no answer).", "client")
GetSceneNames = _empty("get_scene_names", "Ask the menu for its scene list.", "client")
ExitScene = _empty("exit_scene", "Leave the scene, back to the menu.", "client")
GetProtocolVersion = _empty("get_protocol_version", "Ask for the protocol version.", "client")
QuitApp = _empty("quit_app", "Quit the simulator.", "client")


@dataclass(frozen=True)
class LoadScene(Message):
    """Load a scene from the menu (the simulator ignores unknown names)."""

    msg_type: ClassVar[str] = "load_scene"
    direction: ClassVar[str] = "client"
    scene_name: str = "generated_track"


@dataclass(frozen=True)
class CarConfig(Message):
    """Cosmetic car settings."""

    msg_type: ClassVar[str] = "car_config"
    direction: ClassVar[str] = "client"
    body_style: str = "donkey"
    body_r: int = 255
    body_g: int = 72
    body_b: int = 0
    car_name: str = "donkeyrl"
    font_size: int = 50


@dataclass(frozen=True)
class CamConfig(Message):
    """Camera settings; 0 keeps the simulator's current value for that field.

    ``img_enc`` is kept as sent: the simulator applies it only when it has exactly three letters
    (gym-donkeycar sends "0" when the user did not choose one). Offsets and rotations are the
    camera's pose in the car frame (x right, y up, z forward; Unity Euler angles in degrees).
    """

    msg_type: ClassVar[str] = "cam_config"
    direction: ClassVar[str] = "client"
    fov: float = 0.0
    fish_eye_x: float = 0.0
    fish_eye_y: float = 0.0
    img_w: int = 0
    img_h: int = 0
    img_d: int = 0
    img_enc: str = "JPG"
    offset_x: float = 0.0
    offset_y: float = 0.0
    offset_z: float = 0.0
    rot_x: float = 0.0
    rot_y: float = 0.0
    rot_z: float = 0.0


@dataclass(frozen=True)
class CamConfigB(CamConfig):
    """Settings of the second camera; receiving one turns that camera on (telemetry ``imageb``)."""

    msg_type: ClassVar[str] = "cam_config_b"


@dataclass(frozen=True)
class LidarConfig(Message):
    """Turn on (or reconfigure) the lidar; wire names as the simulator spells them.

    Rays sweep 360 degrees clockwise (seen from above) in ``degPerSweepInc`` steps, starting
    ``degAngDown`` degrees below the lidar's forward direction; each of the ``numSweepsLevels``
    sweeps is ``degAngDelta`` degrees further down (negative: up). Hits within ``maxRange`` are
    reported in telemetry ``lidar`` as ``{"d", "rx", "ry"}``. Defaults are gym-donkeycar's.
    """

    msg_type: ClassVar[str] = "lidar_config"
    direction: ClassVar[str] = "client"
    degPerSweepInc: float = 2.0
    degAngDown: float = 0.0
    degAngDelta: float = -1.0
    numSweepsLevels: int = 1
    maxRange: float = 50.0
    noise: float = 0.5
    offset_x: float = 0.0
    offset_y: float = 0.5
    offset_z: float = 0.5
    rot_x: float = 0.0


@dataclass(frozen=True)
class SetPosition(Message):
    """Teleport the car to (pos_x, pos_y, pos_z) in raw simulator units (not divided by 8), with
    the orientation quaternion (Qx, Qy, Qz, Qw) (identity when not sent)."""

    msg_type: ClassVar[str] = "set_position"
    direction: ClassVar[str] = "client"
    pos_x: float = 0.0
    pos_y: float = 0.0
    pos_z: float = 0.0
    Qx: float = 0.0
    Qy: float = 0.0
    Qz: float = 0.0
    Qw: float = 1.0


@dataclass(frozen=True)
class StepMode(Message):
    """``step_mode``: "synchronous" or "asynchronous", with the ``time_step`` (s) asked for."""

    msg_type: ClassVar[str] = "step_mode"
    direction: ClassVar[str] = "client"
    step_mode: str = "asynchronous"
    time_step: float = 0.05


@dataclass(frozen=True)
class Pause(Message):
    """Freeze (``is_pause`` true) or resume the car's clock."""

    msg_type: ClassVar[str] = "pause"
    direction: ClassVar[str] = "client"
    is_pause: bool = True


@dataclass(frozen=True)
class RacerInfo(Message):
    """Racer biography shown by race builds (cosmetic)."""

    msg_type: ClassVar[str] = "racer_info"
    direction: ClassVar[str] = "client"
    racer_name: str = ""
    car_name: str = ""
    bio: str = ""
    country: str = ""
    guid: str = ""


@dataclass(frozen=True)
class RegenRoad(Message):
    """Rebuild the generated road with a seed (generated_road only) and reset the car."""

    msg_type: ClassVar[str] = "regen_road"
    direction: ClassVar[str] = "client"
    road_style: int = 0
    rand_seed: int = 0
    turn_increment: float = 0.0


@dataclass(frozen=True)
class NodePositionRequest(Message):
    """Ask for centre-line node ``index`` (answered by :class:`NodePosition`)."""

    msg_type: ClassVar[str] = "node_position"
    direction: ClassVar[str] = "client"
    index: int = 0


# --- simulator -> client --------------------------------------------------------------------
SceneSelectionReady = _empty("scene_selection_ready", "The simulator is in its menu.", "sim")
CarLoaded = _empty("car_loaded", "The car has spawned in the scene.", "sim")


@dataclass(frozen=True)
class SceneNames(Message):
    """The menu's scene list."""

    msg_type: ClassVar[str] = "scene_names"
    direction: ClassVar[str] = "sim"
    scene_names: tuple[str, ...] = ()

    @classmethod
    def from_fields(cls, obj: dict[str, Any]) -> SceneNames:
        names = obj.get("scene_names", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ProtocolError("scene_names must be a list of strings", json.dumps(names)[:200])
        return cls(tuple(names))

    def to_fields(self) -> dict[str, Any]:
        return {"scene_names": list(self.scene_names)}


@dataclass(frozen=True)
class ProtocolVersion(Message):
    """Answer to ``get_protocol_version``."""

    msg_type: ClassVar[str] = "protocol_version"
    direction: ClassVar[str] = "sim"
    version: str = "2"


@dataclass(frozen=True)
class NodePosition(Message):
    """One centre-line node in raw simulator units, with its orientation quaternion."""

    msg_type: ClassVar[str] = "node_position"
    direction: ClassVar[str] = "sim"
    index: int = 0
    pos_x: float = 0.0
    pos_y: float = 0.0
    pos_z: float = 0.0
    Qx: float = 0.0
    Qy: float = 0.0
    Qz: float = 0.0
    Qw: float = 1.0


@dataclass(frozen=True)
class StartingLine(Message):
    """``collision_with_starting_line``: the car crossed the start line at ``timeStamp`` (s)."""

    msg_type: ClassVar[str] = "collision_with_starting_line"
    direction: ClassVar[str] = "sim"
    starting_line_index: int = 0
    timeStamp: float = 0.0


@dataclass(frozen=True)
class Telemetry(Message):
    """One telemetry frame. Units as the simulator sends them: positions, speeds and accelerations
    are divided by 8, ``cte`` is in simulator units, angles in degrees (0..360), gyro in rad/s.
    ``image`` stays base64 text (decode with :func:`decode_image`)."""

    msg_type: ClassVar[str] = "telemetry"
    direction: ClassVar[str] = "sim"
    steering_angle: float = 0.0
    throttle: float = 0.0
    speed: float = 0.0
    image: str = ""
    imageb: str = ""
    hit: str = "none"
    time: float = 0.0
    accel_x: float = 0.0
    accel_y: float = 0.0
    accel_z: float = 0.0
    gyro_x: float = 0.0
    gyro_y: float = 0.0
    gyro_z: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    roll: float = 0.0
    activeNode: int = 0
    totalNodes: int = 0
    cte: float = 0.0
    pos_x: float = 0.0
    pos_y: float = 0.0
    pos_z: float = 0.0
    vel_x: float = 0.0
    vel_y: float = 0.0
    vel_z: float = 0.0
    #: True when the frame carried ``cte`` (extended telemetry, on by default in the simulator).
    extended: bool = False
    #: Fields this codec does not know (``lidar``, race-build extras...), kept verbatim.
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_fields(cls, obj: dict[str, Any]) -> Telemetry:
        known = {f.name for f in fields(cls)}
        base = cast(Telemetry, super().from_fields({k: v for k, v in obj.items() if k != "extended"}))
        extra = {k: v for k, v in obj.items() if k not in known and k not in ("msg_type", "image_b")}
        imageb = obj.get("imageb", obj.get("image_b", ""))
        return replace(base, extended="cte" in obj, extra=extra, imageb=to_str("imageb", imageb))

    def to_fields(self) -> dict[str, Any]:
        out = super().to_fields()
        if not out.pop("extended"):
            for name in EXTENDED_FIELDS:
                del out[name]
        if not self.imageb:
            del out["imageb"]
        out.update(self.extra)
        return out


#: Fields sent only with extended telemetry (on by default in the Unity simulator).
EXTENDED_FIELDS = ("cte", "pos_x", "pos_y", "pos_z", "vel_x", "vel_y", "vel_z")


@dataclass(frozen=True)
class Unknown(Message):
    """A well-formed message of a type this codec does not model (race-build ``ping``...)."""

    direction: ClassVar[str] = "any"
    type_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


CLIENT_MESSAGES: dict[str, type[Message]] = {m.msg_type: m for m in (
    Control, ResetCar, GetSceneNames, LoadScene, ExitScene, CarConfig, CamConfig, CamConfigB,
    LidarConfig, RegenRoad, NodePositionRequest, GetProtocolVersion, QuitApp, SetPosition, StepMode,
    Pause, RacerInfo)}
SIM_MESSAGES: dict[str, type[Message]] = {m.msg_type: m for m in (
    SceneSelectionReady, SceneNames, CarLoaded, Telemetry, StartingLine, NodePosition,
    ProtocolVersion)}


def message_from_object(obj: Any, registry: dict[str, type[Message]], raw: bytes = b"") -> Message:
    """Typed message from a decoded JSON object; raises :class:`ProtocolError` when invalid."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}", raw)
    kind = obj.get("msg_type")
    if not isinstance(kind, str):
        raise ProtocolError("missing or non-string msg_type", raw)
    cls = registry.get(kind)
    if cls is None:
        return Unknown(type_name=kind, extra={k: v for k, v in obj.items() if k != "msg_type"})
    try:
        return cls.from_fields(obj)
    except ProtocolError as exc:
        raise ProtocolError(f"{kind}: {exc.reason}", raw or exc.data) from None
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{kind}: {exc}", raw) from None
