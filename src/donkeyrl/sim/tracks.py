"""The named track catalogue, name resolution, and the procedural generator entry point.

Every catalogue track is built deterministically from a turtle layout (see
:mod:`donkeyrl.sim.generators`): straights and arcs whose radii are all >= 7 units on the path, so
the car (turning circle radius ~5.6 units) can drive every bend. Names include the DonkeyCar
simulator's scene names, so a protocol server can offer them, and the gym-donkeycar env ids map to
their analogues.

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

from donkeyrl.sim.generators import L, R, S, generate_track, generated_road, layout_track, profile
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
def _generated_track(name: str, split: str, desc: str) -> Track:
    segs = [S(40), R(14, 90), S(22), R(11, 90), L(12, 60), R(12, 60), S(14), R(14, 90), S(14), R(12, 90)]
    return layout_track(name, segs, half_width=4.5, target_length=216,
                        split=split, description=desc)


def _mountain_track(name: str, split: str, desc: str) -> Track:
    segs = [S(60), R(40, 70), S(45), R(30, 100), L(45, 40), R(35, 60), S(55), R(45, 80), L(40, 30),
            R(30, 80), R(50, 40)]
    hw = functools.partial(profile, [0.0, 0.3, 0.5, 0.8, 1.0], [5.5, 5.0, 4.5, 5.0, 5.5])
    return layout_track(name, segs, half_width=hw, smooth=4.0, mirror=True, target_length=516,
                        split=split, description=desc)


def _mini_monaco(name: str, split: str, desc: str) -> Track:
    # two hairpin "fingers" dip into the loop; the long bottom straight has a chicane
    segs = [S(60), R(10, 90), S(10), R(8, 90), S(25), L(8, 180), S(25), R(8, 90), S(20), R(12, 90),
            S(8), R(8, 90), S(10), L(8, 180), S(10), R(8, 90), S(18),
            R(12, 90), S(15), L(10, 30), R(10, 60), L(10, 30), S(15), R(12, 90)]
    return layout_track(name, segs, half_width=3.5, barriers=True, split=split, description=desc)


def _warehouse(name: str, split: str, desc: str) -> Track:
    segs = [S(70), R(8, 90), S(35), R(8, 90), S(20), R(8, 90), L(8, 90), S(18), R(8, 90), S(14),
            R(9, 90)]
    hw = functools.partial(profile, [0.0, 0.4, 0.6, 1.0], [3.0, 2.5, 2.5, 3.0])
    return layout_track(name, segs, half_width=hw, mirror=True, target_length=353,
                        split=split, description=desc)


def _circuit_launch(name: str, split: str, desc: str) -> Track:
    segs = [S(70), R(12, 100), S(30), L(14, 80), R(10, 110), S(45), R(18, 60), L(12, 70), R(12, 70),
            S(40), R(11, 120), S(20), R(16, 50)]
    return layout_track(name, segs, half_width=4.0, barriers=True, split=split, description=desc)


def _sparkfun_avc(name: str, split: str, desc: str) -> Track:
    segs = [S(230), R(14, 90), S(120), L(20, 30), R(20, 30), S(90), R(14, 90), S(220), R(18, 90),
            S(160), R(14, 90)]
    return layout_track(name, segs, half_width=5.5, target_length=1047,
                        split=split, description=desc)


def _waveshare(name: str, split: str, desc: str) -> Track:
    # The real scene's path is ~64 units; that needs ~7.2-unit stadium bends, at the very edge of
    # what the car (turning radius ~5.6) holds with any correction margin, so bends here are 8
    # units and the lap is ~70.
    segs = [S(10), R(8, 180), S(10), R(8, 180)]
    return layout_track(name, segs, half_width=2.6, smooth=2.0, mirror=True,
                        split=split, description=desc)


def _warren(name: str, split: str, desc: str) -> Track:
    segs = [S(50), R(20, 80), L(25, 50), R(18, 110), S(35), L(22, 60), R(15, 140), S(40), R(25, 70),
            L(20, 60), R(22, 70), S(30), R(30, 60)]
    return layout_track(name, segs, half_width=4.0, smooth=4.0, mirror=True,
                        split=split, description=desc)


def _roboracingleague(name: str, split: str, desc: str) -> Track:
    segs = [S(80), R(15, 90), S(40), R(10, 120), L(12, 120), R(12, 90), S(50), R(20, 90), S(60),
            L(15, 60), R(15, 90), S(25), R(25, 60)]
    return layout_track(name, segs, half_width=4.5, mirror=True, split=split, description=desc)


def _thunderhill(name: str, split: str, desc: str) -> Track:
    segs = [S(350), R(35, 100), S(120), L(60, 40), R(45, 90), S(250), R(25, 90), L(40, 80),
            S(150), R(70, 60), S(200), R(30, 90), L(50, 70), R(40, 80), S(300), R(45, 40),
            L(35, 60), R(60, 60)]
    return layout_track(name, segs, half_width=6.0, smooth=6.0, target_length=2825,
                        split=split, description=desc)


def _oval(name: str, split: str, desc: str) -> Track:
    segs = [S(100), R(25, 180), S(100), R(25, 180)]
    return layout_track(name, segs, half_width=6.0, smooth=5.0, split=split, description=desc)


def _chicane_alley(name: str, split: str, desc: str) -> Track:
    chicane = [L(12, 35), R(12, 70), L(12, 35)]
    segs = [S(30), *chicane, S(25), *chicane, S(30), R(15, 180), S(30), *chicane, S(25), *chicane,
            S(30), R(15, 180)]
    return layout_track(name, segs, half_width=4.0, mirror=True, split=split, description=desc)


def _canyon(name: str, split: str, desc: str) -> Track:
    segs = [S(60), R(30, 90), L(20, 60), R(9, 170), S(40), L(25, 50), R(18, 100), S(50), R(12, 80),
            L(15, 40), R(20, 70)]
    hw = functools.partial(profile, [0.0, 0.2, 0.35, 0.5, 0.7, 0.85, 1.0],
                           [6.0, 4.5, 2.5, 3.5, 5.5, 3.0, 6.0])
    return layout_track(name, segs, half_width=hw, smooth=4.0, mirror=True,
                        split=split, description=desc)


def _generated_road_default(name: str, split: str, desc: str) -> Track:
    return generated_road(DEFAULT_ROAD_SEED, name=name, split=split, description=desc)


CATALOGUE: dict[str, _Spec] = {
    "generated_road": _Spec(_generated_road_default, "train",
                            "seeded random open road, 2000 units, path on the right-lane centre"),
    "generated_track": _Spec(_generated_track, "train", "short closed loop with an S-bend"),
    "mountain_track": _Spec(_mountain_track, "train", "large loop of long sweeping bends"),
    "mini_monaco": _Spec(_mini_monaco, "train", "tight hairpins between barriers"),
    "warehouse": _Spec(_warehouse, "train", "narrow road with square 90-degree corners"),
    "sparkfun_avc": _Spec(_sparkfun_avc, "train", "long straights, four right-angle corners, a kink"),
    "waveshare": _Spec(_waveshare, "train",
                       "tiny narrow loop (70 units, radius-8 bends), near-constant turning"),
    "roboracingleague_1": _Spec(_roboracingleague, "train", "square-ish loop with a tight S-bend notch"),
    "oval": _Spec(_oval, "train", "wide oval: two straights, two constant-radius turns"),
    "chicane_alley": _Spec(_chicane_alley, "train", "straights broken by S-chicanes"),
    "circuit_launch": _Spec(_circuit_launch, "heldout", "compact technical circuit with barriers"),
    "warren": _Spec(_warren, "heldout", "flowing medium-speed bends in both directions"),
    "thunderhill": _Spec(_thunderhill, "heldout", "long fast circuit: straights and sweepers"),
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
    return generated_road(seed, split=spec.split, description=f"{spec.description} (seed {seed})")


@functools.lru_cache(maxsize=256)
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
