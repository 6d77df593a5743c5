"""The DonkeyCar simulator wire protocol as a pure codec: bytes in, typed messages out (no sockets).

Why a separate pure module: the framing rules are the error-prone part of talking to the Unity
simulator (client messages are flat JSON objects sent back to back with string values and no
newline; the simulator answers newline-framed JSON with real numbers, sometimes with decimal
commas), and a pure codec can be tested exhaustively (arbitrary TCP chunking, garbage, huge input)
without a network. Both sides live here because the project also *serves* the protocol
(:mod:`donkeyrl.donkey.server`).

Directions:
    client -> simulator: :func:`encode_client` (flat JSON, every value a string, no newline);
        parsed by :class:`ClientStreamDecoder` (the server side).
    simulator -> client: :func:`encode_sim` (JSON numbers, ``\\n``-terminated);
        parsed by :class:`SimStreamDecoder` (the client side).

Decoders never raise on bad input: ``feed`` returns a list mixing messages and
:class:`ProtocolError` objects, so a reader loop can log the error and carry on.
"""

from __future__ import annotations

import base64
import io
import json
import math
from typing import Any

import numpy as np

from donkeyrl.donkey.messages import (  # noqa: F401 - re-exported: the codec's public API
    MAX_SIM_MESSAGE,
    MAX_CLIENT_MESSAGE,
    SNIPPET,
    ProtocolError,
    shorten,
    loads_tolerant,
    to_float,
    to_int,
    to_str,
    to_bool,
    Message,
    Control,
    ResetCar,
    GetSceneNames,
    ExitScene,
    GetProtocolVersion,
    QuitApp,
    LoadScene,
    CarConfig,
    CamConfig,
    CamConfigB,
    LidarConfig,
    SetPosition,
    StepMode,
    Pause,
    RacerInfo,
    RegenRoad,
    NodePositionRequest,
    SceneSelectionReady,
    CarLoaded,
    SceneNames,
    ProtocolVersion,
    NodePosition,
    StartingLine,
    Telemetry,
    EXTENDED_FIELDS,
    Unknown,
    CLIENT_MESSAGES,
    SIM_MESSAGES,
    message_from_object,
    replace,
)


# ----------------------------------------------------------------------------- encoding
def _client_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"field {name!r}: cannot send non-finite value {value!r}")
        return repr(value)
    text = str(value)
    if any(c in text for c in "{}\n"):
        raise ValueError(f"field {name!r}: value {text!r} contains '{{', '}}' or a newline, which "
                         "breaks the simulator's message splitting")
    return text


def encode_client(msg: Message) -> bytes:
    """Client -> simulator bytes: one flat JSON object, every value a string, no newline."""
    if msg.direction != "client":
        raise ValueError(f"{type(msg).__name__} is not a client -> simulator message")
    obj = {"msg_type": msg.msg_type}
    obj.update({k: _client_value(k, v) for k, v in msg.to_fields().items()})
    return json.dumps(obj, separators=(",", ":")).encode()


def encode_sim(msg: Message) -> bytes:
    """Simulator -> client bytes: JSON with real numbers, terminated by a newline."""
    if msg.direction != "sim":
        raise ValueError(f"{type(msg).__name__} is not a simulator -> client message")
    obj: dict[str, Any] = {"msg_type": msg.msg_type}
    obj.update(msg.to_fields())
    if msg.msg_type in ("scene_selection_ready",):
        obj["loaded"] = "1"
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n"


# ----------------------------------------------------------------------------- decoding
class SimStreamDecoder:
    """Incremental decoder of the simulator's newline-framed stream (the client side).

    ``feed`` accepts any chunking of the byte stream. A line longer than ``max_message`` is
    dropped (reported once) and the decoder resynchronises at the next newline, so memory
    stays bounded whatever the peer sends.
    """

    registry = SIM_MESSAGES

    def __init__(self, max_message: int = MAX_SIM_MESSAGE) -> None:
        self.max_message = max_message
        self._buf = bytearray()
        self._skipping = False

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the end of a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message | ProtocolError]:
        """Decode every complete message in ``data`` (plus what was buffered)."""
        out: list[Message | ProtocolError] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            piece = data[start:nl]
            start = nl + 1
            if self._skipping:
                self._skipping = False
                self._buf.clear()
                continue
            if self._buf:
                self._buf += piece
                line, self._buf = bytes(self._buf), bytearray()
            else:
                line = piece
            if len(line) > self.max_message:
                out.append(ProtocolError(f"message longer than {self.max_message} bytes dropped", line))
                continue
            self._decode(line, out)
        rest = data[start:]
        if not self._skipping:
            self._buf += rest
            if len(self._buf) > self.max_message:
                out.append(ProtocolError(f"message longer than {self.max_message} bytes dropped",
                                         bytes(self._buf[:SNIPPET])))
                self._buf.clear()
                self._skipping = True
        return out

    def _decode(self, line: bytes, out: list[Message | ProtocolError]) -> None:
        line = line.strip()
        if not line:
            return
        try:
            obj = loads_tolerant(line)
            out.append(message_from_object(obj, self.registry, line))
        except ProtocolError as exc:
            out.append(exc)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            out.append(ProtocolError(f"invalid JSON ({type(exc).__name__})", line))


class ClientStreamDecoder(SimStreamDecoder):
    """Incremental decoder of the client's stream (the server side): flat objects back to back.

    Like the Unity simulator it frames on braces (an object runs from ``{`` to the next ``}``),
    but bytes outside objects are reported instead of silently dropped, newlines between objects
    are fine, and numeric (unquoted) values are accepted too.
    """

    registry = CLIENT_MESSAGES

    def __init__(self, max_message: int = MAX_CLIENT_MESSAGE) -> None:
        super().__init__(max_message)

    def feed(self, data: bytes) -> list[Message | ProtocolError]:
        out: list[Message | ProtocolError] = []
        self._buf += data
        buf = self._buf
        pos = 0
        while pos < len(buf):
            if self._skipping:  # inside an over-long object: drop up to its closing brace
                close = buf.find(b"}", pos)
                if close < 0:
                    pos = len(buf)
                    break
                pos, self._skipping = close + 1, False
                continue
            open_ = buf.find(b"{", pos)
            junk = bytes(buf[pos:open_ if open_ >= 0 else len(buf)])
            if junk.strip():
                out.append(ProtocolError("bytes outside any JSON object", junk))
            if open_ < 0:
                pos = len(buf)
                break
            close = buf.find(b"}", open_)
            nested = buf.find(b"{", open_ + 1)
            if close < 0:
                if len(buf) - open_ > self.max_message:
                    out.append(ProtocolError(f"message longer than {self.max_message} bytes dropped",
                                             bytes(buf[open_:open_ + SNIPPET])))
                    pos, self._skipping = len(buf), True
                else:
                    pos = open_
                break
            if 0 <= nested < close:  # an unterminated object followed by another one
                out.append(ProtocolError("unterminated JSON object", bytes(buf[open_:nested])))
                pos = nested
                continue
            piece = bytes(buf[open_:close + 1])
            pos = close + 1
            if len(piece) > self.max_message:
                out.append(ProtocolError(f"message longer than {self.max_message} bytes dropped", piece))
                continue
            self._decode(piece, out)
        del buf[:pos]
        return out


# ----------------------------------------------------------------------------- images
def decode_image(b64: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB (or (H, W, 1) for a grey image) from a base64 JPEG/PNG/TGA string."""
    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(b64, validate=False)
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            if im.mode in ("L", "I", "I;16"):
                arr = np.asarray(im.convert("L"))[:, :, None]
            else:
                arr = np.asarray(im.convert("RGB"))
    except (ValueError, OSError, UnidentifiedImageError) as exc:
        raise ProtocolError(f"undecodable image ({exc})", b64[:SNIPPET]) from None
    return np.ascontiguousarray(arr)


def encode_image(img: np.ndarray, fmt: str = "JPG", quality: int = 75) -> str:
    """Base64 text of ``img`` (uint8 (H, W, 3) or (H, W, 1)) as JPG, PNG or TGA.

    Quality 75 is what Unity's ``EncodeToJPG`` uses by default, so images look like the real
    simulator's.
    """
    from PIL import Image

    arr = np.asarray(img, dtype=np.uint8)
    im = Image.fromarray(arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    buf = io.BytesIO()
    fmt = fmt.upper()
    if fmt in ("JPG", "JPEG"):
        im.save(buf, format="JPEG", quality=quality)
    elif fmt in ("PNG", "TGA"):
        im.save(buf, format=fmt)
    else:
        raise ValueError(f"image encoding {fmt!r} is not one of JPG, PNG, TGA")
    return base64.b64encode(buf.getvalue()).decode("ascii")
