"""How the rendered world looks: colours, lighting, texture noise and camera jitter.

Why a separate value object: domain randomisation must be seeded and reproducible, so a drawn
appearance is a plain frozen dataclass (hashable, printable, comparable) that the renderer turns
into small lookup tables once (:func:`pack`) and then reuses for every frame.

Colours are RGB 0-255 before lighting. Lighting is an affine map applied to every colour:
``(c - 128) * contrast + 128 + brightness``. Texture noise is a fixed, periodic, multi-octave noise
pattern anchored to world coordinates (so it moves with the ground as the car drives), scaled per
surface by ``noise`` and faded with distance by the renderer.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields

import numpy as np

RGB = tuple[int, int, int]

#: Surface classes, the first index of a packed colour table.
ROAD, EDGE, CENTRE, GROUND, BARRIER_A, BARRIER_B = range(6)
N_CLASSES = 6
#: Quantised noise levels, the second index of a packed colour table.
N_LEVELS = 16
#: Texture noise amplitude per class at ``noise=1`` (0-255 colour units, +/-).
CLASS_NOISE = (14.0, 8.0, 8.0, 28.0, 10.0, 10.0)
#: Side of the square world-anchored noise texture (texels); one texel = 1/16 unit at scale 1
#: (a power of two: the kernels wrap coordinates with a bit mask).
NOISE_SIZE = 512
NOISE_TEXELS_PER_UNIT = 16.0

#: Smallest luminance difference between random road and ground colours (0-255 units).
MIN_ROAD_CONTRAST = 25.0

# Layout of the packed float parameter vector (see pack()).
P_SKY_H, P_SKY_T, P_FOG = 0, 3, 6
P_CAM_H, P_PITCH, P_NSCALE, P_NOFFX, P_NOFFZ, P_FOG0, P_FOG1 = 9, 10, 11, 12, 13, 14, 15
P_EDGE_W, P_CENTRE_W, P_DASH_LEN, P_DASH_PERIOD = 16, 17, 18, 19
N_PARAMS = 20


@dataclass(frozen=True)
class Appearance:
    """One look of the world. :meth:`default` resembles the DonkeyCar generated road."""

    #: Road surface colour (asphalt).
    road: RGB = (72, 72, 76)
    #: Edge line colour (painted at the inner side of each road edge).
    edge_line: RGB = (235, 235, 235)
    #: Centre line colour.
    centre_line: RGB = (235, 200, 40)
    #: Off-road ground colour (grass).
    ground: RGB = (88, 150, 60)
    #: Sky colour straight up (reached about 35 degrees above the horizon).
    sky_top: RGB = (90, 150, 225)
    #: Sky colour at the horizon; distant ground fades into it (haze).
    sky_horizon: RGB = (190, 210, 230)
    #: Kerb/barrier stripe colours (alternating along the track every ``1`` unit).
    barrier_a: RGB = (200, 40, 40)
    barrier_b: RGB = (240, 240, 240)
    #: Added to every channel after contrast (0-255 units).
    brightness: float = 0.0
    #: Contrast factor around mid-grey 128.
    contrast: float = 1.0
    #: Texture noise amplitude multiplier (0 = flat colours).
    noise: float = 1.0
    #: Texture noise spatial frequency multiplier (2 = features half as large).
    noise_scale: float = 1.0
    #: World offset of the noise pattern (units), so different draws see different texture.
    noise_offset: tuple[float, float] = (0.0, 0.0)
    #: Width of the edge lines (units).
    edge_line_width: float = 0.3
    #: Width of the centre line (units).
    centre_line_width: float = 0.25
    #: Painted length of each centre-line dash and the dash period (units); period 0 = solid.
    dash_length: float = 2.0
    dash_period: float = 4.0
    #: Distances (units) where haze starts and where the ground has fully faded into the horizon.
    fog_start: float = 25.0
    fog_end: float = 90.0
    #: Camera mounting jitter added to the CameraConfig pose: height (units) and pitch (degrees).
    cam_height_delta: float = 0.0
    pitch_delta_deg: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "RGB":
                if len(value) != 3 or not all(0 <= int(c) <= 255 for c in value):
                    raise ValueError(f"Appearance.{f.name} must be 3 integers in 0..255, got {value!r}")
                object.__setattr__(self, f.name, tuple(int(c) for c in value))
        object.__setattr__(self, "noise_offset", tuple(float(c) for c in self.noise_offset))
        if not (self.contrast > 0 and math.isfinite(self.contrast)):
            raise ValueError(f"Appearance.contrast must be a positive number, got {self.contrast!r}")
        if self.noise < 0 or self.noise_scale <= 0:
            raise ValueError(f"Appearance.noise must be >= 0 and noise_scale > 0, got "
                             f"{self.noise!r}, {self.noise_scale!r}")
        if not 0 <= self.fog_start < self.fog_end:
            raise ValueError(f"Appearance needs 0 <= fog_start < fog_end, got {self.fog_start!r}, "
                             f"{self.fog_end!r}")
        if self.edge_line_width <= 0 or self.centre_line_width <= 0 or self.dash_period < 0:
            raise ValueError("Appearance line widths must be > 0 and dash_period >= 0")

    @classmethod
    def default(cls) -> Appearance:
        """The reference look (no randomisation)."""
        return cls()

    @classmethod
    def random(cls, rng: np.random.Generator | int | None = None) -> Appearance:
        """A randomised look for domain randomisation, reproducible from ``rng`` (or a seed).

        Varies every colour within its family (grey asphalt, white/cream lines, yellow/white centre,
        grass/dirt/sand ground, blue/grey sky), lighting, texture, line widths, haze distance and
        the camera mounting (height +/-0.1 units, pitch +/-3 degrees).
        """
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)

        def col(lo: tuple[int, int, int], hi: tuple[int, int, int]) -> RGB:
            return tuple(int(rng.integers(a, b + 1)) for a, b in zip(lo, hi))  # type: ignore[return-value]

        ground_kind = rng.integers(0, 3)
        ground = [col((40, 90, 30), (100, 165, 85)),        # grass
                  col((110, 85, 50), (165, 135, 100)),      # dirt
                  col((170, 150, 110), (220, 200, 160))][ground_kind]  # sand
        # Asphalt grey at least MIN_ROAD_CONTRAST away from the ground's luminance, so that a grey
        # image still shows the road.
        lum_ground = float(np.dot(ground, (0.299, 0.587, 0.114)))
        while True:
            g = int(rng.integers(50, 160))
            if abs(g - lum_ground) >= MIN_ROAD_CONTRAST:
                break
        tint = rng.integers(-8, 9, size=3)
        road = tuple(int(np.clip(g + t, 0, 255)) for t in tint)
        yellow = bool(rng.random() < 0.8)
        centre = col((200, 160, 0), (255, 230, 90)) if yellow else col((200, 200, 200), (255, 255, 255))
        horizon = col((150, 160, 170), (235, 235, 240))
        return cls(
            road=road,  # type: ignore[arg-type]
            edge_line=col((190, 190, 180), (255, 255, 255)),
            centre_line=centre,
            ground=ground,
            sky_top=col((50, 100, 160), (160, 200, 255)),
            sky_horizon=horizon,
            barrier_a=col((150, 0, 0), (255, 90, 60)) if rng.random() < 0.7 else col((0, 40, 120), (60, 110, 220)),
            barrier_b=col((200, 200, 200), (255, 255, 255)),
            brightness=float(rng.uniform(-40.0, 40.0)),
            contrast=float(rng.uniform(0.7, 1.3)),
            noise=float(rng.uniform(0.3, 1.6)),
            noise_scale=float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))),
            noise_offset=(float(rng.uniform(0, 64)), float(rng.uniform(0, 64))),
            edge_line_width=float(rng.uniform(0.2, 0.45)),
            centre_line_width=float(rng.uniform(0.15, 0.35)),
            dash_length=float(rng.uniform(1.0, 3.0)),
            dash_period=float(rng.choice([0.0, 4.0, 5.0, 6.0])),
            fog_start=float(rng.uniform(15.0, 40.0)),
            fog_end=float(rng.uniform(60.0, 120.0)),
            cam_height_delta=float(rng.uniform(-0.1, 0.1)),
            pitch_delta_deg=float(rng.uniform(-3.0, 3.0)),
        )


def _lit(rgb: np.ndarray, a: Appearance, grey: bool) -> np.ndarray:
    """Apply lighting (and the grey conversion) to float colours (..., 3) -> (..., 3) floats."""
    out = (np.asarray(rgb, dtype=np.float64) - 128.0) * a.contrast + 128.0 + a.brightness
    if grey:
        lum = out @ np.array([0.299, 0.587, 0.114])
        out = np.repeat(lum[..., None], 3, axis=-1)
    return out


@functools.lru_cache(maxsize=256)
def pack(a: Appearance, grey: bool) -> tuple[np.ndarray, np.ndarray]:
    """Tables for the kernels: colours (N_CLASSES, N_LEVELS, 3) uint8 and params (N_PARAMS,) float64.

    The colour table already includes noise level, lighting and grey conversion, so a pixel costs
    one lookup. In grey mode all three channels hold the luminance; the kernel writes channel 0.
    """
    base = np.array([a.road, a.edge_line, a.centre_line, a.ground, a.barrier_a, a.barrier_b],
                    dtype=np.float64)
    levels = (np.arange(N_LEVELS) - (N_LEVELS - 1) / 2) / ((N_LEVELS - 1) / 2)      # -1..1
    amp = np.array(CLASS_NOISE) * a.noise
    cols = base[:, None, :] + (amp[:, None] * levels[None, :])[:, :, None]
    lut = np.clip(np.rint(_lit(cols, a, grey)), 0, 255).astype(np.uint8)
    prm = np.zeros(N_PARAMS)
    prm[P_SKY_H:P_SKY_H + 3] = _lit(np.array(a.sky_horizon, float), a, grey)
    prm[P_SKY_T:P_SKY_T + 3] = _lit(np.array(a.sky_top, float), a, grey)
    prm[P_FOG:P_FOG + 3] = prm[P_SKY_H:P_SKY_H + 3]
    prm[P_CAM_H] = a.cam_height_delta
    prm[P_PITCH] = math.radians(a.pitch_delta_deg)
    prm[P_NSCALE] = NOISE_TEXELS_PER_UNIT * a.noise_scale
    prm[P_NOFFX], prm[P_NOFFZ] = a.noise_offset
    prm[P_FOG0], prm[P_FOG1] = a.fog_start, a.fog_end
    prm[P_EDGE_W], prm[P_CENTRE_W] = a.edge_line_width, a.centre_line_width
    prm[P_DASH_LEN], prm[P_DASH_PERIOD] = a.dash_length, a.dash_period
    lut.setflags(write=False)
    prm.setflags(write=False)
    return lut, prm


@functools.lru_cache(maxsize=1)
def noise_texture(seed: int = 12345) -> np.ndarray:
    """Periodic smooth noise (NOISE_SIZE, NOISE_SIZE) quantised to levels 0..N_LEVELS-1 (uint8).

    Built by filtering white noise in the Fourier domain with a 1/f falloff (several octaves at
    once), so it tiles seamlessly and looks like natural surface variation.
    """
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((NOISE_SIZE, NOISE_SIZE))
    k = np.fft.fftfreq(NOISE_SIZE)
    kk = np.hypot(k[:, None], k[None, :])
    filt = np.where(kk > 0, 1.0 / np.maximum(kk, 1.0 / NOISE_SIZE) ** 0.9, 0.0) * np.exp(-(kk / 0.25) ** 2)
    field = np.real(np.fft.ifft2(np.fft.fft2(white) * filt))
    field = (field - field.mean()) / field.std()
    q = np.clip(np.rint((field / 2.0 + 1.0) / 2.0 * (N_LEVELS - 1)), 0, N_LEVELS - 1)
    return np.ascontiguousarray(q.astype(np.uint8))
