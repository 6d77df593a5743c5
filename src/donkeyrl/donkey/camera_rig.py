"""The car camera of the protocol server, configured the way the DonkeyCar simulator does it.

Why a module of its own: ``cam_config`` has Unity semantics that the built-in renderer does not
have (a camera pose given as a position and Euler angles in the car frame, a fisheye image effect,
grey images sent as three equal channels), and the server must apply them exactly as the real
simulator does, or clients configured for one silently get different images from the other.

What ``cam_config`` does in the simulator (``CameraSensor.SetConfig`` and ``TcpCarHandler``):
    - size: applied only when both ``img_w`` and ``img_h`` are non-zero;
    - ``img_d``: applied when non-zero; depth 1 = grey (Rec. 709 luma) written to all three
      channels of an RGB image, so clients still decode (H, W, 3);
    - ``img_enc``: applied only when it has exactly three characters; "PNG" and "TGA" select those
      encoders, any other three-letter code JPEG; anything else ("0", "JPEG", "") is ignored;
    - offsets: when any of x, y, z is non-zero the camera's local position becomes (x, y, z);
    - rotations: when any of rot_x, rot_y, rot_z is non-zero its local Euler angles become them
      (x = pitch down, y = yaw right, z = roll with the camera's top moving left);
    - ``fov``: vertical field of view, applied when non-zero;
    - fisheye: when either strength is non-zero Unity's standard ``Fisheye`` image effect is
      switched on with those strengths (and stays on).

How they are rendered here (the built-in renderer draws a level camera at a pose):
    - offset x / z and yaw (rot_y): exact, by moving the camera pose given to the renderer (the
      car's shadow, drawn around that pose, moves with an x offset or a yaw: approximation);
    - height (offset y, above the car's origin, which stands ORIGIN_HEIGHT above the road), pitch
      (rot_x), fov, size: exact, through the renderer's camera config; a camera at or below the
      road (possible in Unity) is raised to MIN_CAM_HEIGHT (documented deviation);
    - roll (rot_z): exact for a pinhole camera (a roll about the optical axis rotates the image):
      a frame with the same focal length, wide enough to hold the rotated image, is rendered and
      resampled bilinearly;
    - fisheye: Unity's shader formula, source coordinates clamped to the frame like the shader's
      texture; resampled bilinearly (the shader samples its texture bilinearly too).
"""

from __future__ import annotations

import base64
import io
import logging
import math
from dataclasses import dataclass, replace
from functools import cached_property

import numba as nb
import numpy as np

from donkeyrl.donkey.messages import CamConfig
from donkeyrl.sim.appearance import Appearance
from donkeyrl.sim.camera import CameraConfig, Renderer

log = logging.getLogger(__name__)

#: The simulator's camera mount in the car frame (protocol reference, section 6): 1.12 units above
#: the car's origin, 0.55 ahead. Unity offsets are relative to the origin, the built-in renderer's
#: camera height to the road: the difference is the height of the car's origin above the road.
UNITY_CAMERA_Y = 1.12
ORIGIN_HEIGHT = max(0.0, CameraConfig().cam_height - UNITY_CAMERA_Y)
#: Largest camera image a client may request (pixels per side); bounds the rendering cost.
MAX_IMAGE_SIDE = 1024
#: Lowest camera height the renderer can draw (units); Unity allows the camera at or below ground.
MIN_CAM_HEIGHT = 0.02
#: Largest |offset| (units) and |fisheye strength| accepted.
MAX_OFFSET = 1000.0
MAX_FISHEYE = 10.0
#: Pitch limit of the renderer (degrees, exclusive).
MAX_PITCH = 89.0
#: Unity's CameraSensor grey conversion (Rec. 709 luma), truncated to a byte like its C# cast.
GREY_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
#: Unity's Fisheye effect scales strengths by 80 / 512 ("to keep values like the old version").
FISHEYE_SCALE = 80.0 / 512.0
#: Encoders by three-letter code; any other three-letter code encodes JPEG, like the simulator.
ENCODERS = {"PNG": "PNG", "TGA": "TGA"}


@dataclass(frozen=True)
class CameraSettings:
    """A camera as the simulator holds it after a series of ``cam_config`` messages."""

    #: Image size (pixels).
    width: int = 160
    height: int = 120
    #: 1 = grey (three equal channels), anything else RGB.
    depth: int = 3
    #: Three-letter encoding code as last accepted ("JPG", "PNG", "TGA", or any other = JPEG).
    encoding: str = "JPG"
    #: Vertical field of view (degrees).
    fov: float = 90.0
    #: Position in the car frame (units): x right, y up (above the car's origin), z forward.
    offset: tuple[float, float, float] = (0.0, 1.12, 0.55)
    #: Unity Euler angles (degrees): x = pitch down, y = yaw right, z = roll (top to the left).
    rotation: tuple[float, float, float] = (15.0, 0.0, 0.0)
    #: Fisheye strengths (x, y); (0, 0) = off.
    fisheye: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def default(cls) -> CameraSettings:
        """The built-in simulator's default camera (the DonkeyCar camera, see sim/camera.py)."""
        c = CameraConfig()
        return cls(width=c.width, height=c.height, depth=1 if c.grey else 3, fov=c.fov_deg,
                   offset=(0.0, c.cam_height - ORIGIN_HEIGHT, c.cam_forward),
                   rotation=(c.pitch_deg, 0.0, 0.0))

    @property
    def grey(self) -> bool:
        """True when frames are grey (sent as three equal channels)."""
        return self.depth == 1

    @property
    def image_format(self) -> str:
        """PIL format name of the encoder."""
        return ENCODERS.get(self.encoding, "JPEG")

    @property
    def remapped(self) -> bool:
        """True when frames need resampling (roll or fisheye)."""
        return _wrap(self.rotation[2]) != 0.0 or self.fisheye != (0.0, 0.0)

    def apply(self, msg: CamConfig) -> tuple[CameraSettings, list[str]]:
        """The settings after ``msg``, with the simulator's rules (module docstring), and the
        problems found: fields with impossible values are left unchanged and named, the rest of
        the message is still applied (the simulator never rejects a whole cam_config)."""
        out, problems = self, []
        if msg.img_d:
            out = replace(out, depth=int(msg.img_d))
        if msg.img_w and msg.img_h:
            if 1 <= msg.img_w <= MAX_IMAGE_SIDE and 1 <= msg.img_h <= MAX_IMAGE_SIDE:
                out = replace(out, width=int(msg.img_w), height=int(msg.img_h))
            else:
                problems.append(f"camera size {msg.img_w}x{msg.img_h} ignored: each side must be in "
                                f"1..{MAX_IMAGE_SIDE}")
        if len(msg.img_enc) == 3:
            out = replace(out, encoding=msg.img_enc)
        elif msg.img_enc != out.encoding:
            log.debug("img_enc %r ignored (not a three-letter code), keeping %s", msg.img_enc,
                      out.encoding)
        if msg.fov:
            if 0.0 < msg.fov < 180.0:
                out = replace(out, fov=float(msg.fov))
            else:
                problems.append(f"fov {msg.fov:g} ignored: must be in (0, 180) degrees")
        offset = (msg.offset_x, msg.offset_y, msg.offset_z)
        if any(offset):
            if all(abs(v) < MAX_OFFSET for v in offset):
                out = replace(out, offset=tuple(float(v) for v in offset))  # type: ignore[arg-type]
            else:
                problems.append(f"camera offset {offset} ignored: each must be within +-{MAX_OFFSET:g}")
        rot = (msg.rot_x, msg.rot_y, msg.rot_z)
        if any(rot):
            if abs(_wrap(msg.rot_x)) < MAX_PITCH:
                out = replace(out, rotation=tuple(_wrap(v) for v in rot))  # type: ignore[arg-type]
            else:
                problems.append(f"camera rot_x {msg.rot_x:g} ignored: pitch must be within "
                                f"+-{MAX_PITCH:g} degrees")
        fish = (msg.fish_eye_x, msg.fish_eye_y)
        if any(fish):
            if all(abs(v) <= MAX_FISHEYE for v in fish):
                out = replace(out, fisheye=(float(fish[0]), float(fish[1])))
            else:
                problems.append(f"fisheye {fish} ignored: strengths must be within +-{MAX_FISHEYE:g}")
        return out, problems


def _wrap(deg: float) -> float:
    """An angle in degrees wrapped to (-180, 180] (Unity reports 345 for -15)."""
    out = math.fmod(float(deg), 360.0)
    if out > 180.0:
        out -= 360.0
    elif out <= -180.0:
        out += 360.0
    return out


@dataclass(frozen=True)
class CarShape:
    """Another car as the camera draws it: a box (units) at a ground pose, in a body colour."""

    x: float
    z: float
    yaw: float
    half_length: float
    half_width: float
    height: float
    colour: tuple[int, int, int]


class CameraView:
    """Renders what a :class:`CameraSettings` camera on a car sees, encoded for telemetry.

    One per camera per connection; :meth:`set_track` follows a regenerated road.
    """

    def __init__(self, settings: CameraSettings, track: object) -> None:
        self.settings = s = settings
        roll = math.radians(_wrap(s.rotation[2]))
        tan_v = math.tan(math.radians(s.fov) / 2)
        tan_h = tan_v * s.width / s.height
        # Half-extents of the camera plane the output covers; with a roll, the unrolled frame must
        # hold the rotated rectangle (same focal length, so pixels keep their size).
        self._tan = (tan_h, tan_v)
        wide_h = abs(tan_h * math.cos(roll)) + abs(tan_v * math.sin(roll))
        wide_v = abs(tan_h * math.sin(roll)) + abs(tan_v * math.cos(roll))
        self._wide = (wide_h, wide_v)
        w = min(4096, max(1, math.ceil(s.width * wide_h / tan_h - 1e-9)))
        h = min(4096, max(1, math.ceil(s.height * wide_v / tan_v - 1e-9)))
        self.config = CameraConfig(
            width=w, height=h, grey=False, crop_top=0.0, fov_deg=math.degrees(2 * math.atan(wide_v)),
            cam_height=max(MIN_CAM_HEIGHT, s.offset[1] + ORIGIN_HEIGHT), cam_forward=s.offset[2],
            pitch_deg=s.rotation[0],
            aspect=wide_h / wide_v)
        self.renderer = Renderer(track, self.config)  # type: ignore[arg-type]

    def set_track(self, track: object) -> None:
        """Draw another track (a regenerated road)."""
        self.renderer.set_track(track)  # type: ignore[arg-type]

    def pose(self, x: float, z: float, yaw: float) -> tuple[float, float, float]:
        """The pose to give the renderer for a car at (x, z, yaw). The renderer puts its camera
        ``offset_z`` ahead of the pose along the pose's heading; the camera must end up at the
        car-frame offset (x right, z forward) and turned by rot_y (to the right): so the pose is
        the camera position moved back along the camera's heading. With no x offset and no yaw
        this is the car's own pose (and the car's shadow is exact); otherwise the shadow, drawn
        around the pose, moves with the camera (a small, documented approximation)."""
        ox, _, oz = self.settings.offset
        fx, fz = math.sin(yaw), math.cos(yaw)
        cyaw = yaw + math.radians(self.settings.rotation[1])
        cx, cz = x + fx * oz + fz * ox, z + fz * oz - fx * ox
        return cx - math.sin(cyaw) * oz, cz - math.cos(cyaw) * oz, cyaw

    def camera_position(self, x: float, z: float, yaw: float) -> tuple[float, float]:
        """Ground position of the camera on a car at (x, z, yaw)."""
        px, pz, cyaw = self.pose(x, z, yaw)
        oz = self.settings.offset[2]
        return px + math.sin(cyaw) * oz, pz + math.cos(cyaw) * oz

    def frame(self, x: float, z: float, yaw: float, appearance: object | None = None,
              cars: tuple[CarShape, ...] = ()) -> np.ndarray:
        """The camera image (H, W, 3) uint8 of a car at (x, z, yaw), other ``cars`` drawn in."""
        px, pz, cyaw = self.pose(x, z, yaw)
        img = self.renderer.render(px, pz, cyaw, appearance)  # type: ignore[arg-type]
        if cars:
            cx, cz = self.camera_position(x, z, yaw)
            img = self._draw_cars(img, cx, cz, cyaw, cars, appearance)
        if self.settings.remapped:
            img = self._remap(img)
        if self.settings.grey:
            lum = (img.astype(np.float32) @ GREY_WEIGHTS).astype(np.uint8)
            img = np.repeat(lum[:, :, None], 3, axis=2)
        return img

    def encode(self, img: np.ndarray, quality: int = 75) -> str:
        """Base64 text of ``img`` in the configured encoding (JPEG quality as Unity's default)."""
        from PIL import Image

        buf = io.BytesIO()
        fmt = self.settings.image_format
        Image.fromarray(img).save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
        return base64.b64encode(buf.getvalue()).decode("ascii")

    # ------------------------------------------------------------------ resampling
    @cached_property
    def _map(self) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear resampling table: for each output pixel (row-major) the flat indices of its
        four source pixels and their weights, from the output through the fisheye, then the roll."""
        s = self.settings
        W, H = s.width, s.height
        cx = (np.arange(W) + 0.5) / W * 2.0 - 1.0           # -1 (left) .. 1 (right)
        cy = (np.arange(H) + 0.5) / H * 2.0 - 1.0           # -1 (top) .. 1 (bottom)
        gx, gy = np.meshgrid(cx, cy)
        fx, fy = s.fisheye
        if fx or fy:  # Unity's Fisheye shader: sample at uv - offs, texture clamped at the edges
            ix, iy = fx * (W / H) * FISHEYE_SCALE, fy * FISHEYE_SCALE
            sx = gx - 2.0 * (1.0 - gy * gy) * iy * gx
            sy = gy - 2.0 * (1.0 - gx * gx) * ix * gy
            gx = np.clip(sx, -1.0 + 1.0 / W, 1.0 - 1.0 / W)
            gy = np.clip(sy, -1.0 + 1.0 / H, 1.0 - 1.0 / H)
        tan_h, tan_v = self._tan
        u, v = gx * tan_h, -gy * tan_v                      # camera plane, v up
        roll = math.radians(_wrap(s.rotation[2]))
        u0 = u * math.cos(roll) - v * math.sin(roll)        # where the unrolled camera sees it
        v0 = u * math.sin(roll) + v * math.cos(roll)
        wide_h, wide_v = self._wide
        Wr, Hr = self.config.width, self.config.height
        col = np.clip((u0 / wide_h + 1.0) / 2.0 * Wr - 0.5, 0.0, Wr - 1.0).ravel()
        row = np.clip((1.0 - v0 / wide_v) / 2.0 * Hr - 0.5, 0.0, Hr - 1.0).ravel()
        c0 = np.clip(np.floor(col).astype(np.int64), 0, max(Wr - 2, 0))
        r0 = np.clip(np.floor(row).astype(np.int64), 0, max(Hr - 2, 0))
        wx, wy = col - c0, row - r0
        c1, r1 = np.minimum(c0 + 1, Wr - 1), np.minimum(r0 + 1, Hr - 1)
        idx = np.stack([r0 * Wr + c0, r0 * Wr + c1, r1 * Wr + c0, r1 * Wr + c1], axis=1)
        wts = np.stack([(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy], axis=1)
        return np.ascontiguousarray(idx, dtype=np.int32), np.ascontiguousarray(wts, dtype=np.float32)

    def _remap(self, img: np.ndarray) -> np.ndarray:
        idx, wts = self._map
        out = np.empty((self.settings.height, self.settings.width, img.shape[2]), dtype=np.uint8)
        _bilinear(img.reshape(-1, img.shape[2]), idx, wts, out.reshape(-1, img.shape[2]))
        return out

    # ------------------------------------------------------------------ other cars
    def _draw_cars(self, img: np.ndarray, cx: float, cz: float, cyaw: float,
                   cars: tuple[CarShape, ...], appearance: object | None) -> np.ndarray:
        """Paint other cars as solid boxes (far to near, so nearer cars cover farther ones).

        An approximation: the renderer draws no vertical objects, so a box is filled with the
        car's body colour over whatever the ground renderer drew, with a darker top face; boxes
        reaching behind the camera are left out.
        """
        from PIL import Image, ImageDraw

        cfg = self.config
        if isinstance(appearance, Appearance):  # the look's camera mounting jitter
            cam_h = cfg.cam_height + appearance.cam_height_delta
            pitch = math.radians(cfg.pitch_deg + appearance.pitch_delta_deg)
            cyaw += math.radians(appearance.yaw_delta_deg)
        else:
            cam_h, pitch = cfg.cam_height, math.radians(cfg.pitch_deg)
        sp, cp = math.sin(pitch), math.cos(pitch)
        fx, fz = math.sin(cyaw), math.cos(cyaw)
        wide_h, wide_v = self._wide
        W, H = cfg.width, cfg.height
        polys = []
        for car in cars:
            dist = math.hypot(car.x - cx, car.z - cz)
            if dist > 120.0:
                continue
            bf, br = math.sin(car.yaw), math.cos(car.yaw)
            corners = []
            for a, b, y in ((1, 1, 0), (1, -1, 0), (-1, -1, 0), (-1, 1, 0),
                            (1, 1, 1), (1, -1, 1), (-1, -1, 1), (-1, 1, 1)):
                px = car.x + bf * a * car.half_length + br * b * car.half_width
                pz = car.z + br * a * car.half_length - bf * b * car.half_width
                dx, dz, dy = px - cx, pz - cz, y * car.height - cam_h
                ahead, right = dx * fx + dz * fz, dx * fz - dz * fx
                depth = ahead * cp - dy * sp                # along the optical axis
                up = ahead * sp + dy * cp
                if depth < 0.05:
                    break
                corners.append(((right / depth / wide_h + 1.0) / 2.0 * W,
                                (1.0 - up / depth / wide_v) / 2.0 * H))
            else:
                polys.append((dist, corners, car.colour))
        if not polys:
            return img
        im = Image.fromarray(img)
        draw = ImageDraw.Draw(im)
        for _, corners, colour in sorted(polys, key=lambda p: -p[0]):
            draw.polygon(_hull(corners), fill=colour)
            draw.polygon(corners[4:], fill=tuple(int(c * 0.7) for c in colour))
        return np.asarray(im)


@nb.njit(cache=True)
def _bilinear(src, idx, wts, out):  # pragma: no cover - jitted
    """out[p] = the weighted mix of the four source pixels of table row p (a compiled loop:
    numpy's fancy indexing took ~30x longer; no project dependency has an image remap)."""
    for p in range(out.shape[0]):
        for ch in range(out.shape[1]):
            acc = (wts[p, 0] * src[idx[p, 0], ch] + wts[p, 1] * src[idx[p, 1], ch]
                   + wts[p, 2] * src[idx[p, 2], ch] + wts[p, 3] * src[idx[p, 3], ch])
            out[p, ch] = np.uint8(min(acc + np.float32(0.5), np.float32(255.0)))


def _hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Convex hull of a box's projected corners, as a polygon (the corners when degenerate)."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(np.asarray(points))
    except (QhullError, ValueError):
        return points
    return [points[i] for i in hull.vertices]
