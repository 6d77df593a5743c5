"""How the rendered world looks: colours, lighting, texture grain, shadow, scenery and camera jitter.

Why a separate value object: domain randomisation must be seeded and reproducible, so a drawn
appearance is a plain frozen dataclass (hashable, printable, comparable) that the renderer turns
into small lookup tables once (:func:`pack`) and then reuses for every frame.

Scene looks: :meth:`Appearance.for_scene` gives the look of a DonkeyCar scene (colours measured in
public frames of the real simulator where there are any: mountain_track's light concrete at about
RGB 174/184/194 with strong grain, generated_track's grey asphalt at about 128/134/140, pale
yellow and white paint, a grey-blue sky; the other scenes from their menu pictures). A track names
its look in ``Track.scene``. :meth:`Appearance.random` spans those looks and well beyond them.

Colours are RGB 0-255 before lighting. Lighting is an affine map applied to every colour:
``(c - 128) * contrast + 128 + brightness``. Texture noise is a fixed, periodic, multi-octave noise
pattern anchored to world coordinates (so it moves with the ground as the car drives), scaled per
surface by ``noise`` (and ``road_grain`` for the road) and faded with distance by the renderer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import cast

import numpy as np

RGB = tuple[int, int, int]

#: Surface classes, the first index of a packed colour table. BEYOND_L / BEYOND_R are ground seen
#: beyond a wall (same colour as GROUND; the renderer raises the wall where they start).
(ROAD, SHOULDER, EDGE, CENTRE, ACCENT, GROUND, BEYOND_L, BEYOND_R, WALL, WALL_STRIPE, FENCE, CONE, CONE_STRIPE,
 START_A, START_B, BACKDROP) = range(16)
N_CLASSES = 16
#: Quantised noise levels, the second index of a packed colour table.
N_LEVELS = 16
#: Texture noise amplitude per class at ``noise=1`` (0-255 colour units, +/-).
CLASS_NOISE = (26.0, 26.0, 8.0, 8.0, 8.0, 30.0, 30.0, 30.0, 12.0, 10.0, 6.0, 6.0, 4.0, 4.0, 4.0, 14.0)
#: Side of the square world-anchored noise texture (texels); one texel = 1/16 unit at scale 1
#: (a power of two: the kernels wrap coordinates with a bit mask).
NOISE_SIZE = 512
NOISE_TEXELS_PER_UNIT = 24.0

#: Smallest luminance difference between a newly drawn road colour and the ground (0-255 units).
MIN_ROAD_CONTRAST = 25.0
#: Share of random looks that keep their base scene's road and shoulder colours (jittered), so the
#: real scenes' low-contrast surfaces stay in the distribution (see ``Appearance.random``).
BASE_ROAD_SHARE = 0.5
#: How a look treats the track's dashes: keep them, paint every line solid, or dash every centre line.
DASH_MODES = ("track", "solid", "dashed")

# Layout of the packed float parameter vector (see pack()).
P_SKY_H, P_SKY_T, P_FOG = 0, 3, 6
(P_CAM_H, P_PITCH, P_NSCALE, P_NOFFX, P_NOFFZ, P_FOG0, P_FOG1, P_LINE_W, P_DASH_MODE, P_SHADOW, P_SHADOW_F,
 P_SHADOW_L, P_SHADOW_LEN, P_SHADOW_WID, P_WALLS, P_BACKDROP, P_YAW) = range(9, 26)
N_PARAMS = 26


def _rgb(name: str, value: object) -> RGB:
    vals = tuple(cast(Iterable[int], value))
    if len(vals) != 3 or not all(0 <= int(c) <= 255 for c in vals):
        raise ValueError(f"Appearance.{name} must be 3 integers in 0..255, got {value!r}")
    return (int(vals[0]), int(vals[1]), int(vals[2]))


@dataclass(frozen=True)
class Appearance:
    """One look of the world. The defaults are generated_track's; see :meth:`for_scene`."""

    #: Road surface and the strip between a road edge and its edge line (dirt on built roads).
    road: RGB = (128, 134, 140)
    shoulder: RGB = (143, 146, 150)
    #: Paint: edge lines (white), centre line (yellow), accent lines (orange borders, black tape).
    edge_line: RGB = (236, 244, 246)
    centre_line: RGB = (228, 205, 110)
    accent_line: RGB = (235, 140, 30)
    #: Off-road ground (grass, sand, floor).
    ground: RGB = (100, 118, 76)
    #: Walls (and the alternate stripe of barriers), chain-link fences, cones and the start line.
    wall: RGB = (30, 34, 56)
    wall_stripe: RGB = (230, 230, 230)
    fence: RGB = (38, 42, 52)
    cone: RGB = (235, 85, 35)
    cone_stripe: RGB = (245, 245, 245)
    start_a: RGB = (245, 245, 245)
    start_b: RGB = (25, 25, 25)
    #: Sky colour straight up (reached about 35 degrees above the horizon) and at the horizon;
    #: distant ground fades into the horizon colour (haze).
    sky_top: RGB = (92, 116, 156)
    sky_horizon: RGB = (205, 222, 220)
    #: A band of distant scenery (buildings, trees, hall walls) above the horizon, and its height
    #: in degrees (0 = none).
    backdrop: RGB = (90, 100, 80)
    backdrop_deg: float = 0.0
    #: Added to every channel after contrast (0-255 units).
    brightness: float = 0.0
    #: Contrast factor around mid-grey 128.
    contrast: float = 1.0
    #: Texture noise amplitude multiplier (0 = flat colours) and the extra factor of the road grain.
    noise: float = 1.0
    road_grain: float = 1.0
    #: Texture noise spatial frequency multiplier (2 = features half as large).
    noise_scale: float = 1.0
    #: World offset of the noise pattern (units), so different draws see different texture.
    noise_offset: tuple[float, float] = (0.0, 0.0)
    #: Multiplier of every painted line's width.
    line_width_scale: float = 1.0
    #: "track" (the track's dashes), "solid" (no dashes) or "dashed" (dashed centre lines).
    dash_mode: str = "track"
    #: The car's shadow: darkening (0 = none, 1 = black), centre (forward, lateral offset from the
    #: car origin, units; where the sun puts it) and size (length, width, units).
    shadow: float = 0.58
    shadow_offset: tuple[float, float] = (0.3, -0.55)
    shadow_size: tuple[float, float] = (2.6, 1.6)
    #: Draw walls and fences (False hides them; solid walls still stop the car).
    walls: bool = True
    #: Distances (units) where haze starts and where the ground has fully faded into the horizon.
    fog_start: float = 40.0
    fog_end: float = 140.0
    #: Camera mounting jitter added to the CameraConfig pose: height (units), pitch and yaw (degrees).
    cam_height_delta: float = 0.0
    pitch_delta_deg: float = 0.0
    yaw_delta_deg: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.type == "RGB":
                object.__setattr__(self, f.name, _rgb(f.name, getattr(self, f.name)))
        for name in ("noise_offset", "shadow_offset", "shadow_size"):
            object.__setattr__(self, name, tuple(float(c) for c in getattr(self, name)))
        if not (self.contrast > 0 and math.isfinite(self.contrast)):
            raise ValueError(f"Appearance.contrast must be a positive number, got {self.contrast!r}")
        if self.noise < 0 or self.road_grain < 0 or self.noise_scale <= 0:
            raise ValueError(f"Appearance.noise and road_grain must be >= 0 and noise_scale > 0, got "
                             f"{self.noise!r}, {self.road_grain!r}, {self.noise_scale!r}")
        if not 0 <= self.fog_start < self.fog_end:
            raise ValueError(f"Appearance needs 0 <= fog_start < fog_end, got {self.fog_start!r}, "
                             f"{self.fog_end!r}")
        if not self.line_width_scale > 0:
            raise ValueError(f"Appearance.line_width_scale must be > 0, got {self.line_width_scale!r}")
        if self.dash_mode not in DASH_MODES:
            raise ValueError(f"Appearance.dash_mode must be one of {DASH_MODES}, got {self.dash_mode!r}")
        if not 0 <= self.shadow <= 1 or min(self.shadow_size) <= 0:
            raise ValueError(f"Appearance.shadow must be in [0, 1] and shadow_size > 0, got {self.shadow!r}, "
                             f"{self.shadow_size!r}")
        if not 0 <= self.backdrop_deg < 45:
            raise ValueError(f"Appearance.backdrop_deg must be in [0, 45), got {self.backdrop_deg!r}")

    @classmethod
    def default(cls) -> Appearance:
        """The reference look (generated_track's, no randomisation)."""
        return cls()

    @classmethod
    def for_scene(cls, scene: str) -> Appearance:
        """The look of a DonkeyCar scene (``Track.scene``); unknown names get the default look."""
        return SCENE_LOOKS.get(scene, DEFAULT)

    @classmethod
    def random(cls, rng: np.random.Generator | int | None = None) -> Appearance:
        """A randomised look for domain randomisation, reproducible from ``rng`` (or a seed).

        Starts from one of the scene looks (so the real looks are in the distribution) and varies
        far beyond them: every colour within wide families (dark to light asphalt and concrete,
        white/cream/yellow/orange paint, grass/sand/dirt/floor ground, any sky), lighting,
        texture grain and size, line widths, dashed or solid lines, the shadow's strength and
        direction, walls shown or hidden, haze, a backdrop, and the camera mounting (height
        -0.15 to +0.3 units, pitch +/-3 degrees, yaw +/-2 degrees).
        """
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        base = list(SCENE_LOOKS.values())[int(rng.integers(len(SCENE_LOOKS)))]

        def jitter(c: RGB, amount: float) -> RGB:
            return tuple(int(np.clip(v + rng.uniform(-amount, amount), 0, 255)) for v in c)  # type: ignore[return-value]

        def col(lo: tuple[int, int, int], hi: tuple[int, int, int]) -> RGB:
            return tuple(int(rng.integers(a, b + 1)) for a, b in zip(lo, hi))  # type: ignore[return-value]

        ground = base.ground if rng.random() < 0.5 else col((40, 60, 20), (230, 210, 170))
        if rng.random() < BASE_ROAD_SHARE:
            # the scene's own surface, whatever it stands out from: several real scenes' roads
            # barely differ from their ground (warehouse, carpet, warren: 0-8 grey levels), and a
            # policy that never saw such a road follows the road's edge and fails on them
            road = jitter(base.road, 12)
            shoulder = jitter(base.shoulder, 12)
        else:
            lum_ground = float(np.dot(ground, (0.299, 0.587, 0.114)))
            while True:  # a new surface stands out from the ground, also in grey images
                g = int(rng.integers(35, 215))
                if abs(g - lum_ground) >= MIN_ROAD_CONTRAST:
                    break
            tint = rng.integers(-10, 11, size=3)
            road = tuple(int(np.clip(g + t, 0, 255)) for t in tint)  # type: ignore[assignment]
            shoulder = jitter(road, 30)
        centre = base.centre_line if rng.random() < 0.5 else (
            col((190, 150, 0), (255, 240, 190)) if rng.random() < 0.75 else col((200, 200, 200), (255, 255, 255)))
        sun = rng.uniform(0, 2 * np.pi)
        return replace(
            base,
            road=road,
            shoulder=shoulder,
            edge_line=col((190, 190, 170), (255, 255, 255)),
            centre_line=centre,
            accent_line=jitter(base.accent_line, 60),
            ground=ground,
            wall=jitter(base.wall, 70),
            fence=jitter(base.fence, 40),
            cone=jitter(base.cone, 30),
            sky_top=col((40, 80, 120), (200, 215, 240)),
            sky_horizon=col((130, 140, 150), (245, 245, 250)),
            backdrop=col((30, 30, 30), (220, 220, 220)),
            backdrop_deg=float(rng.choice([0.0, rng.uniform(1.0, 12.0)])),
            brightness=float(rng.uniform(-45.0, 45.0)),
            contrast=float(rng.uniform(0.65, 1.35)),
            noise=float(rng.uniform(0.2, 1.8)),
            road_grain=float(rng.uniform(0.3, 1.8)),
            noise_scale=float(np.exp(rng.uniform(np.log(0.4), np.log(2.5)))),
            noise_offset=(float(rng.uniform(0, 64)), float(rng.uniform(0, 64))),
            line_width_scale=float(rng.uniform(0.6, 1.8)),
            dash_mode=str(rng.choice(DASH_MODES, p=[0.6, 0.2, 0.2])),
            shadow=float(rng.uniform(0.0, 0.7)),
            shadow_offset=(float(0.3 + 0.8 * np.cos(sun)), float(0.8 * np.sin(sun))),
            shadow_size=(float(rng.uniform(2.0, 3.5)), float(rng.uniform(1.2, 2.0))),
            walls=bool(rng.random() < 0.8),
            fog_start=float(rng.uniform(20.0, 60.0)),
            fog_end=float(rng.uniform(80.0, 180.0)),
            # the current simulator car's geometry puts its camera ~0.25 higher than the fit
            # to the public frames (docs/fidelity.md): the jitter spans both
            cam_height_delta=float(rng.uniform(-0.15, 0.3)),
            pitch_delta_deg=float(rng.uniform(-3.0, 3.0)),
            yaw_delta_deg=float(rng.uniform(-2.0, 2.0)),
        )


DEFAULT = Appearance()
#: Looks of the DonkeyCar scenes (see the module docstring for where the colours come from).
SCENE_LOOKS: dict[str, Appearance] = {
    "default": DEFAULT,
    "generated_track": DEFAULT,
    # mountain_track, measured in the public gym-donkeycar frames: light concrete with strong grain,
    # pale yellow and white paint, a green verge, dark navy walls under dark chain-link fences
    "mountain_track": replace(DEFAULT, road=(162, 172, 182), shoulder=(124, 136, 111), edge_line=(240, 246, 247),
                              centre_line=(240, 238, 175), ground=(124, 136, 111), wall=(29, 33, 55),
                              fence=(30, 34, 48), sky_top=(88, 112, 153), sky_horizon=(150, 168, 195),
                              start_b=(118, 120, 126), road_grain=1.4, shadow=0.0),
    "generated_road": replace(DEFAULT, ground=(196, 178, 140), shoulder=(160, 150, 130),
                              sky_horizon=(215, 225, 230)),
    "generated_road_dark": replace(DEFAULT, road=(48, 48, 52), shoulder=(48, 48, 52), ground=(196, 178, 140),
                                   sky_horizon=(215, 225, 230)),
    "warehouse": replace(DEFAULT, road=(176, 164, 140), shoulder=(176, 164, 140), ground=(176, 164, 140),
                         centre_line=(225, 200, 90), sky_top=(80, 70, 60), sky_horizon=(150, 135, 115),
                         backdrop=(105, 80, 60), backdrop_deg=14.0, shadow=0.25, fog_end=200.0),
    "sparkfun_avc": replace(DEFAULT, road=(98, 98, 96), shoulder=(98, 98, 96), accent_line=(230, 130, 30),
                            ground=(120, 112, 90), backdrop=(170, 170, 175), backdrop_deg=3.0),
    "carpet": replace(DEFAULT, road=(118, 118, 124), shoulder=(118, 118, 124), ground=(118, 118, 124),
                      accent_line=(22, 22, 24), centre_line=(225, 205, 40), road_grain=1.6,
                      sky_top=(200, 200, 205), sky_horizon=(215, 215, 220), backdrop=(190, 192, 196),
                      backdrop_deg=20.0, cone=(240, 110, 30), shadow=0.2, fog_end=200.0),
    "waveshare": replace(DEFAULT, road=(200, 200, 196), shoulder=(200, 200, 196), ground=(200, 200, 196),
                         edge_line=(250, 250, 250), accent_line=(236, 150, 30), road_grain=0.5,
                         sky_top=(120, 90, 70), sky_horizon=(150, 110, 90), backdrop=(140, 60, 50),
                         backdrop_deg=20.0, shadow=0.25),
    "mini_monaco": replace(DEFAULT, road=(104, 104, 108), shoulder=(104, 104, 108), ground=(80, 115, 60),
                           wall=(120, 124, 128), wall_stripe=(200, 200, 200), fence=(60, 64, 70),
                           backdrop=(55, 85, 45), backdrop_deg=6.0),
    "warren": replace(DEFAULT, road=(112, 112, 114), shoulder=(112, 112, 114), ground=(70, 128, 70),
                      backdrop=(225, 228, 230), backdrop_deg=16.0, sky_top=(230, 232, 235),
                      sky_horizon=(235, 236, 238)),
    "thunderhill": replace(DEFAULT, road=(72, 72, 76), shoulder=(72, 72, 76), ground=(150, 140, 100),
                           wall=(150, 150, 150), wall_stripe=(210, 60, 50), fence=(70, 72, 76)),
}


def _lit(rgb: np.ndarray, a: Appearance, grey: bool) -> np.ndarray:
    """Apply lighting (and the grey conversion) to float colours (..., 3) -> (..., 3) floats."""
    out = (np.asarray(rgb, dtype=np.float64) - 128.0) * a.contrast + 128.0 + a.brightness
    if grey:
        lum = out @ np.array([0.299, 0.587, 0.114])
        out = np.repeat(lum[..., None], 3, axis=-1)
    return out


@functools.lru_cache(maxsize=512)
def pack(a: Appearance, grey: bool) -> tuple[np.ndarray, np.ndarray]:
    """Tables for the kernels: colours (N_CLASSES, N_LEVELS, 3) uint8 and params (N_PARAMS,) float64.

    The colour table already includes noise level, lighting and grey conversion, so a pixel costs
    one lookup. In grey mode all three channels hold the luminance; the kernel writes channel 0.
    """
    base = np.array([a.road, a.shoulder, a.edge_line, a.centre_line, a.accent_line, a.ground, a.ground, a.ground,
                     a.wall, a.wall_stripe, a.fence, a.cone, a.cone_stripe, a.start_a, a.start_b, a.backdrop],
                    dtype=np.float64)
    levels = (np.arange(N_LEVELS) - (N_LEVELS - 1) / 2) / ((N_LEVELS - 1) / 2)      # -1..1
    amp = np.array(CLASS_NOISE) * a.noise
    amp[ROAD] *= a.road_grain
    amp[SHOULDER] *= a.road_grain
    cols = base[:, None, :] + (amp[:, None] * levels[None, :])[:, :, None]
    lut = np.clip(np.rint(_lit(cols, a, grey)), 0, 255).astype(np.uint8)
    prm = np.zeros(N_PARAMS)
    prm[P_SKY_H:P_SKY_H + 3] = _lit(np.array(a.sky_horizon, float), a, grey)
    prm[P_SKY_T:P_SKY_T + 3] = _lit(np.array(a.sky_top, float), a, grey)
    prm[P_FOG:P_FOG + 3] = prm[P_SKY_H:P_SKY_H + 3]
    prm[P_CAM_H] = a.cam_height_delta
    prm[P_PITCH] = math.radians(a.pitch_delta_deg)
    prm[P_YAW] = math.radians(a.yaw_delta_deg)
    prm[P_NSCALE] = NOISE_TEXELS_PER_UNIT * a.noise_scale
    prm[P_NOFFX], prm[P_NOFFZ] = a.noise_offset
    prm[P_FOG0], prm[P_FOG1] = a.fog_start, a.fog_end
    prm[P_LINE_W] = a.line_width_scale
    prm[P_DASH_MODE] = DASH_MODES.index(a.dash_mode)
    prm[P_SHADOW] = a.shadow
    prm[P_SHADOW_F], prm[P_SHADOW_L] = a.shadow_offset
    prm[P_SHADOW_LEN], prm[P_SHADOW_WID] = a.shadow_size
    prm[P_WALLS] = 1.0 if a.walls else 0.0
    prm[P_BACKDROP] = math.radians(a.backdrop_deg)
    lut.setflags(write=False)
    prm.setflags(write=False)
    return lut, prm


@functools.lru_cache(maxsize=1)
def noise_texture(seed: int = 12345) -> np.ndarray:
    """Periodic smooth noise (NOISE_SIZE, NOISE_SIZE) quantised to levels 0..N_LEVELS-1 (uint8).

    Built by filtering white noise in the Fourier domain with a 1/f falloff (several octaves at
    once), so it tiles seamlessly and looks like natural surface variation; a fine grain (high
    frequencies) is kept, like concrete and asphalt.
    """
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((NOISE_SIZE, NOISE_SIZE))
    k = np.fft.fftfreq(NOISE_SIZE)
    kk = np.hypot(k[:, None], k[None, :])
    filt = np.where(kk > 0, 1.0 / np.maximum(kk, 1.0 / NOISE_SIZE) ** 0.7, 0.0) * np.exp(-(kk / 0.35) ** 2)
    field = np.real(np.fft.ifft2(np.fft.fft2(white) * filt))
    field = (field - field.mean()) / field.std()
    q = np.clip(np.rint((field / 2.0 + 1.0) / 2.0 * (N_LEVELS - 1)), 0, N_LEVELS - 1)
    return np.ascontiguousarray(q.astype(np.uint8))
