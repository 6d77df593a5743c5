"""Video frames of a drive: the camera view with an overlay, beside a bird's-eye map with a trail.

Layout of one frame (``scale`` 2, the default): the 160x120 camera view enlarged to 320x240 with
the speed, |cte| and lap written on top and steering / throttle bars at the bottom, and a
240x240 map of the whole track on the right with the car's trail coloured by speed (dark blue
slow, yellow fast) and the car as a red dot. 560x240 is a multiple of 16, which H.264 encoders
want.

GIFs are written with imageio, MP4s with imageio's ffmpeg plugin (the ``imageio-ffmpeg`` package
ships its own ffmpeg binary).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from donkeyrl.sim.track import Track
from donkeyrl.units import telemetry_to_sim

__all__ = ["FrameComposer", "thin_frames", "gif_bytes", "webp_bytes", "write_gif", "write_mp4", "SPEED_RANGE",
           "VIDEO_FPS"]

log = logging.getLogger(__name__)

#: Speeds (telemetry units/s) mapped onto the trail's colour scale: the built-in car tops out at 5.
SPEED_RANGE = (0.0, 5.0)
#: Control steps per second of the simulators: a video at this rate plays in real time.
VIDEO_FPS = 20
_ROAD = (90, 90, 90)
_GRASS = (34, 92, 40)


def _speed_colours(n: int = 64) -> np.ndarray:
    """(n, 3) uint8 RGB of matplotlib's viridis, slow to fast."""
    from matplotlib import colormaps

    return (np.asarray(colormaps["viridis"](np.linspace(0, 1, n)))[:, :3] * 255).astype(np.uint8)


class FrameComposer:
    """Builds the frames of one drive on ``track`` (see the module docstring)."""

    def __init__(self, track: Track, *, scale: int = 2) -> None:
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.track = track
        self.scale = int(scale)
        self.cam_size = (160 * self.scale, 120 * self.scale)
        self.map_size = 120 * self.scale
        left = track.points + track.normals * track.lat_left[:, None]
        right = track.points + track.normals * track.lat_right[:, None]
        both = np.vstack([left, right])
        lo, hi = both.min(axis=0), both.max(axis=0)
        margin = 8
        self._scale_px = (self.map_size - 2 * margin) / max(float(np.max(hi - lo)), 1e-6)
        self._centre = (lo + hi) / 2.0
        self._background = Image.new("RGB", (self.map_size, self.map_size), _GRASS)
        draw = ImageDraw.Draw(self._background)
        n = track.n if track.closed else track.n - 1
        for i in range(n):
            j = (i + 1) % track.n
            draw.polygon([self.to_px(p) for p in (left[i], left[j], right[j], right[i])], fill=_ROAD)
        sx, sy = self.to_px(track.points[0])
        draw.line([(sx - 4, sy), (sx + 4, sy)], fill=(255, 255, 255), width=2)
        self._trail = Image.new("RGBA", (self.map_size, self.map_size), (0, 0, 0, 0))
        self._trail_draw = ImageDraw.Draw(self._trail)
        self._colours = _speed_colours()
        self._last_px: tuple[float, float] | None = None
        self._last_camera: np.ndarray | None = None

    def to_px(self, p: Sequence[float]) -> tuple[float, float]:
        """Map pixel of a world point (x, z) in simulator units (z points up on the map)."""
        q = (np.asarray(p, dtype=float) - self._centre) * self._scale_px
        return float(self.map_size / 2 + q[0]), float(self.map_size / 2 - q[1])

    def frame(self, camera: np.ndarray | None, info: dict[str, Any]) -> np.ndarray:
        """One (H, W, 3) uint8 frame after a step; ``camera`` None repeats the previous view.

        ``info`` is the env's step info (pos, speed, cte, lap_count, steering, throttle); an empty
        dict (the view right after a reset) draws no overlay values and no trail.
        """
        if camera is not None:
            self._last_camera = camera
        cam = self._last_camera if self._last_camera is not None else np.zeros((120, 160, 3), np.uint8)
        view = Image.fromarray(cam if cam.ndim == 3 and cam.shape[-1] == 3 else
                               np.repeat(cam.reshape(cam.shape[0], cam.shape[1], -1)[..., :1], 3, axis=2))
        view = view.convert("RGB").resize(self.cam_size, Image.Resampling.NEAREST)
        self._overlay(view, info)
        out = Image.new("RGB", (self.cam_size[0] + self.map_size, self.cam_size[1]), (0, 0, 0))
        out.paste(view, (0, 0))
        out.paste(self._map(info), (self.cam_size[0], 0))
        return np.asarray(out)

    def _overlay(self, view: Image.Image, info: dict[str, Any]) -> None:
        draw = ImageDraw.Draw(view)
        w, h = view.size
        draw.rectangle((0, 0, w, 14), fill=(0, 0, 0))
        if info:
            text = (f"v {float(info.get('speed', 0.0)):4.2f}  cte {float(info.get('cte', 0.0)):+5.2f}  "
                    f"lap {int(info.get('lap_count', 0))}  t {float(info.get('time', 0.0)):5.1f}s")
            draw.text((3, 2), text, fill=(255, 255, 255))
        # steering bar (centre = straight) and throttle bar (right of centre = throttle, left = brake)
        bar_y = h - 26
        draw.rectangle((0, bar_y - 2, w, h), fill=(0, 0, 0))
        mid = w // 2
        half = w // 2 - 40
        for row, (label, key, colour) in enumerate((("steer", "steering", (80, 170, 255)),
                                                    ("thr", "throttle", (90, 220, 90)))):
            y = bar_y + row * 12
            draw.text((2, y), label, fill=(255, 255, 255))
            draw.line([(mid, y), (mid, y + 9)], fill=(160, 160, 160))
            value = float(np.clip(float(info.get(key, 0.0)) if info else 0.0, -1.0, 1.0))
            end = mid + value * half
            draw.rectangle((min(mid, end), y + 2, max(mid, end), y + 7),
                           fill=colour if value >= 0 or key == "steering" else (230, 80, 60))
            draw.text((w - 36, y), f"{value:+.2f}", fill=(255, 255, 255))

    def _map(self, info: dict[str, Any]) -> Image.Image:
        img = self._background.copy()
        if info and "pos" in info:
            pos = info["pos"]
            px = self.to_px((telemetry_to_sim(float(pos[0])), telemetry_to_sim(float(pos[2]))))
            lo, hi = SPEED_RANGE
            u = (float(info.get("speed", 0.0)) - lo) / (hi - lo)
            colour = tuple(int(c) for c in self._colours[int(np.clip(u, 0, 1) * (len(self._colours) - 1))])
            if self._last_px is not None:
                self._trail_draw.line([self._last_px, px], fill=(*colour, 255), width=2)
            self._last_px = px
            img.paste(self._trail, (0, 0), self._trail)
            draw = ImageDraw.Draw(img)
            draw.ellipse((px[0] - 4, px[1] - 4, px[0] + 4, px[1] + 4), fill=(230, 30, 30),
                         outline=(255, 255, 255))
        else:
            img.paste(self._trail, (0, 0), self._trail)
        ImageDraw.Draw(img).text((3, 2), self.track.name, fill=(255, 255, 255))
        return img


def thin_frames(frames: Sequence[np.ndarray], max_frames: int, min_every: int = 1) -> tuple[list[np.ndarray], int]:
    """Every k-th frame (k >= ``min_every``) so that at most ``max_frames`` remain; returns (frames, k)."""
    every = max(min_every, -(-len(frames) // max(max_frames, 1)))
    return list(frames[::every]), every


def gif_bytes(frames: Sequence[np.ndarray], fps: float) -> bytes:
    """An animated, looping GIF of ``frames`` played at ``fps``."""
    import imageio.v2 as imageio

    buf = io.BytesIO()
    imageio.mimsave(buf, list(frames), format="GIF", duration=1000.0 / fps, loop=0)
    return buf.getvalue()


def webp_bytes(frames: Sequence[np.ndarray], fps: float, quality: int = 75) -> bytes:
    """An animated, looping WebP of ``frames``: a third of the GIF's size for camera views (the
    road texture defeats GIF's 256-colour palettes), and every current browser shows it."""
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="WEBP", save_all=True, append_images=images[1:], duration=int(round(1000.0 / fps)),
                   loop=0, quality=quality, method=4)
    return buf.getvalue()


def write_gif(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """Writes an animated GIF (raises OSError when the file cannot be written)."""
    path.write_bytes(gif_bytes(frames, fps))
    log.info("wrote %d frames to %s", len(frames), path)


def write_mp4(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """Writes an H.264 MP4 through imageio's ffmpeg plugin (yuv420p: plays in browsers)."""
    import imageio.v2 as imageio

    writer = imageio.get_writer(str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                pixelformat="yuv420p", macro_block_size=16, quality=7)
    try:
        for f in frames:
            writer.append_data(np.ascontiguousarray(f))
    finally:
        writer.close()
    log.info("wrote %d frames to %s", len(frames), path)
