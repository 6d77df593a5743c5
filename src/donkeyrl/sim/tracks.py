"""The named track catalogue, name resolution, and the procedural generator entry point.

The DonkeyCar simulator's scenes are rebuilt from its own path data (:mod:`donkeyrl.sim.realtracks`:
real shapes, positions, heights and road layouts; generated_road with the simulator's random-walk
algorithm, :func:`donkeyrl.sim.generators.generated_road`). The project's own tracks (oval,
chicane_alley, canyon) are turtle layouts (:mod:`donkeyrl.sim.generators`) with the same road model
(two lanes, the path on the right lane's centre) and radii >= 7 units on the path. Names include
the scene names, so a protocol server can offer them, and the gym-donkeycar env ids map to them.
Some real scenes bend tighter than the car's turning circle (radius ~5.4 units) on the path; the
car, like the real one, must drive wider there.

Splits: the training set covers straights (oval, sparkfun_avc), sweepers (mountain_track),
hairpins and barriers (mini_monaco), chicanes (chicane_alley) and narrow roads (warehouse,
waveshare); the held-out set (circuit_launch, warren, thunderhill, canyon) mixes the same skills in
layouts never seen in training, to check generalisation.
"""

from __future__ import annotations

import difflib
import functools
import logging
import numbers
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from donkeyrl.sim.generators import (LOAD_ROAD_OFFSET, L, R, S, generate_track, generated_road, layout_track,
                                     profile)
from donkeyrl.sim.realtracks import build_scene
from donkeyrl.sim.track import Track

log = logging.getLogger(__name__)

#: Seed of the default generated_road (the one you get without asking for a seed).
DEFAULT_ROAD_SEED = 1
#: Largest seed accepted (numpy's seeding takes any non-negative int; this keeps names short).
MAX_SEED = 2**63 - 1
PROCEDURAL_PREFIX = "procedural"

#: gym-donkeycar env id -> catalogue name (protocol doc section 5).
ENV_IDS: dict[str, str] = {
    "donkey-generated-roads-v0": "generated_road",
    "donkey-warehouse-v0": "warehouse",
    "donkey-avc-sparkfun-v0": "sparkfun_avc",
    "donkey-generated-track-v0": "generated_track",
    "donkey-mountain-track-v0": "mountain_track",
    "donkey-roboracingleague-track-v0": "roboracingleague_1",
    "donkey-waveshare-v0": "waveshare",
    "donkey-minimonaco-track-v0": "mini_monaco",
    "donkey-warren-track-v0": "warren",
    "donkey-thunderhill-track-v0": "thunderhill",
    "donkey-circuit-launch-track-v0": "circuit_launch",
}


class UnknownTrackError(ValueError):
    """A track name that is neither a catalogue name, a scene name, an env id nor procedural-<seed>."""


class InvalidSeedError(ValueError):
    """A track seed that is not an integer in [0, MAX_SEED]."""


@dataclass(frozen=True)
class TrackInfo:
    """One row of the catalogue listing (what ``donkeyrl tracks`` prints)."""

    name: str  #: canonical name (also the DonkeyCar scene name for the analogues)
    length: float  #: path length in simulator units
    width: float  #: mean road width (2 x half-width) in simulator units
    min_width: float  #: narrowest road width in simulator units
    closed: bool  #: a loop (laps count) rather than an open road
    barriers: bool  #: walls beside the road that report a hit
    split: str  #: "train" or "heldout"
    description: str  #: one line on the track's character
    env_ids: tuple[str, ...]  #: gym-donkeycar env ids that map to this track

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly dict (rounded lengths)."""
        d = asdict(self)
        d.update(length=round(self.length, 1), width=round(self.width, 2),
                 min_width=round(self.min_width, 2), env_ids=list(self.env_ids))
        return d


@dataclass(frozen=True)
class _Spec:
    builder: Callable[[str, str, str], Track]  # (name, split, description) -> Track
    split: str
    description: str


# ------------------------------------------------------------------------------------- layouts
def _scene(name: str, split: str, desc: str) -> Track:
    return build_scene(name, split=split, description=desc)


def _oval(name: str, split: str, desc: str) -> Track:
    segs = [S(100), R(25, 180), S(100), R(25, 180)]
    return layout_track(name, segs, half_width=6.0, smooth=5.0, split=split, description=desc)


def _chicane_alley(name: str, split: str, desc: str) -> Track:
    chicane = [L(12, 35), R(12, 70), L(12, 35)]
    segs = [S(30), *chicane, S(25), *chicane, S(30), R(15, 180), S(30), *chicane, S(25), *chicane,
            S(30), R(15, 180)]
    return layout_track(name, segs, half_width=4.0, mirror=True, dashed=True, split=split, description=desc)


def _canyon(name: str, split: str, desc: str) -> Track:
    segs = [S(60), R(30, 90), L(20, 60), R(9, 170), S(40), L(25, 50), R(18, 100), S(50), R(12, 80),
            L(15, 40), R(20, 70)]
    hw = functools.partial(profile, [0.0, 0.2, 0.35, 0.5, 0.7, 0.85, 1.0],
                           [6.0, 4.5, 2.5, 3.5, 5.5, 3.0, 6.0])
    return layout_track(name, segs, half_width=hw, smooth=4.0, mirror=True, split=split, description=desc)


def _generated_road_default(name: str, split: str, desc: str) -> Track:
    return generated_road(DEFAULT_ROAD_SEED, road_offset=LOAD_ROAD_OFFSET, name=name, split=split,
                          description=desc)


CATALOGUE: dict[str, _Spec] = {
    "generated_road": _Spec(_generated_road_default, "train",
                            "seeded random open road, 2000 units, the simulator's random-walk curvature"),
    "generated_track": _Spec(_scene, "train", "short closed loop with an S-bend, cones, checkered start"),
    "mountain_track": _Spec(_scene, "train", "hilly loop between walls and fences; the path is the left lane"),
    "mini_monaco": _Spec(_scene, "train", "tight hairpins between barriers"),
    "warehouse": _Spec(_scene, "train", "peanut-shaped loop on a concrete floor"),
    "sparkfun_avc": _Spec(_scene, "train", "long figure of eight with a crossing, gentle hills"),
    "waveshare": _Spec(_scene, "train", "tiny narrow loop on a mat (66 units), near-constant turning"),
    "roboracingleague_1": _Spec(_scene, "train", "tape track on carpet: four tight U-turn fingers"),
    "oval": _Spec(_oval, "train", "wide oval: two straights, two constant-radius turns"),
    "chicane_alley": _Spec(_chicane_alley, "train", "straights broken by S-chicanes"),
    "circuit_launch": _Spec(_scene, "heldout", "tape track on carpet: figure of eight with tight bends"),
    "warren": _Spec(_scene, "heldout", "flowing loop with a long straight, lines on turf"),
    "thunderhill": _Spec(_scene, "heldout", "long hilly race circuit between barriers (2,820 units)"),
    "canyon": _Spec(_canyon, "heldout", "width varies from wide to very narrow, with a hairpin"),
}

TRAIN_TRACKS: tuple[str, ...] = tuple(n for n, sp in CATALOGUE.items() if sp.split == "train")
HELDOUT_TRACKS: tuple[str, ...] = tuple(n for n, sp in CATALOGUE.items() if sp.split == "heldout")
#: Tracks whose shape depends on the seed passed to :func:`get_track`.
SEEDED_TRACKS: tuple[str, ...] = ("generated_road", PROCEDURAL_PREFIX)


# ------------------------------------------------------------------------------ name resolution
def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


_ALIASES: dict[str, str] = {
    **{_norm(n): n for n in CATALOGUE},
    **{_norm(k): v for k, v in ENV_IDS.items()},
}
_PROCEDURAL_RE = re.compile(rf"^{PROCEDURAL_PREFIX}(?:[-_](.*))?$")


def valid_names() -> list[str]:
    """Every accepted spelling, for error messages: catalogue names, env ids, procedural-<seed>."""
    return [*CATALOGUE, *ENV_IDS, f"{PROCEDURAL_PREFIX}-<seed>"]


def _unknown(name: object) -> UnknownTrackError:
    hint = ""
    if isinstance(name, str):
        close = difflib.get_close_matches(_norm(name), list(_ALIASES), n=1, cutoff=0.6)
        if close:
            hint = f" Did you mean {_ALIASES[close[0]]!r}?"
    return UnknownTrackError(f"unknown track {name!r}.{hint} Valid names: {', '.join(valid_names())}")


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, or raise :class:`InvalidSeedError` naming the bad value."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InvalidSeedError(f"track seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
    value = int(seed)
    if not 0 <= value <= MAX_SEED:
        raise InvalidSeedError(f"track seed must be an integer in [0, {MAX_SEED}], got {value}")
    return value


def _parse_procedural(name: str) -> int | None:
    """Seed from "procedural-<seed>" (None when the name carries no seed)."""
    m = _PROCEDURAL_RE.match(name.strip().lower())
    if m is None:
        raise _unknown(name)
    text = m.group(1)
    if not text:
        return None
    if not re.fullmatch(r"\d+", text):
        raise InvalidSeedError(f"bad procedural track name {name!r}: the seed {text!r} must be a "
                               f"non-negative integer, e.g. '{PROCEDURAL_PREFIX}-42'")
    return check_seed(int(text))


def resolve_track_name(name: str) -> str:
    """Canonical name for a catalogue name, DonkeyCar scene name or gym env id (case-insensitive,
    '-' and '_' interchangeable); "procedural-<seed>" comes back normalised. Raises
    :class:`UnknownTrackError` (with a close-match suggestion) for anything else."""
    if not isinstance(name, str):
        raise UnknownTrackError(f"track name must be a string, got {name!r}. "
                                f"Valid names: {', '.join(valid_names())}")
    key = _norm(name)
    if key in _ALIASES:
        return _ALIASES[key]
    if key.startswith(PROCEDURAL_PREFIX):
        seed = _parse_procedural(name)
        return PROCEDURAL_PREFIX if seed is None else f"{PROCEDURAL_PREFIX}-{seed}"
    raise _unknown(name)


def get_track(name: str, seed: int | None = None) -> Track:
    """The track called ``name`` (any spelling :func:`resolve_track_name` accepts).

    ``seed`` picks the variant of seeded tracks: ``generated_road`` (a different road per seed;
    default :data:`DEFAULT_ROAD_SEED`) and ``procedural`` (same as ``procedural-<seed>``; default
    0). Fixed tracks ignore it, so callers may pass an episode seed for any track. Results are
    cached: the returned Track is immutable and shared.
    """
    canonical = resolve_track_name(name)
    if seed is not None:
        seed = check_seed(seed)
    if canonical.startswith(PROCEDURAL_PREFIX):
        named = _parse_procedural(canonical)
        if named is not None and seed is not None and named != seed:
            raise InvalidSeedError(f"track {name!r} names seed {named} but seed={seed} was also given")
        return _build_procedural(named if named is not None else (seed if seed is not None else 0))
    if canonical == "generated_road":
        return _build_road(DEFAULT_ROAD_SEED if seed is None else seed)
    return _build(canonical)


@functools.cache
def _build(canonical: str) -> Track:
    spec = CATALOGUE[canonical]
    log.debug("building track %s", canonical)
    return spec.builder(canonical, spec.split, spec.description)


@functools.lru_cache(maxsize=64)
def _build_road(seed: int) -> Track:
    spec = CATALOGUE["generated_road"]
    return generated_road(seed, road_offset=LOAD_ROAD_OFFSET, split=spec.split,
                          description=f"{spec.description} (seed {seed})")


#: Procedural tracks kept by :func:`get_track`: enough for the validation and test seeds
#: (evaluated again and again); the training stream draws fresh seeds, which a cache cannot help,
#: and each kept Track holds its arrays (and may keep a cached raster alive).
PROCEDURAL_CACHE_SIZE = 32


@functools.lru_cache(maxsize=PROCEDURAL_CACHE_SIZE)
def _build_procedural(seed: int) -> Track:
    return generate_track(seed)


def list_tracks(split: str = "all") -> list[TrackInfo]:
    """Catalogue listing (builds each track once), optionally only one split."""
    if split not in ("all", "train", "heldout"):
        raise ValueError(f"split must be 'all', 'train' or 'heldout', got {split!r}")
    out = []
    for name, spec in CATALOGUE.items():
        if split != "all" and spec.split != split:
            continue
        tr = get_track(name)
        width = tr.lat_right - tr.lat_left
        out.append(TrackInfo(name=name, length=tr.length, width=float(np.mean(width)),
                             min_width=float(np.min(width)), closed=tr.closed, barriers=tr.barriers,
                             split=spec.split, description=spec.description,
                             env_ids=tuple(k for k, v in ENV_IDS.items() if v == name)))
    return out
