"""The track protocol: three disjoint track sets, and the training-track regimes that sample them.

Why three sets (like the generalisation literature, e.g. CoinRun, where PPO overfits below
thousands of levels): a study that selects its champion on the tracks it trains on measures
memorisation. Here

- **training**: the catalogue's training tracks plus an unlimited stream of procedural tracks;
- **validation**: what a study's objective is measured on (some catalogue tracks that are never
  trained on, plus a fixed range of procedural seeds);
- **test**: never used to select anything, only reported (the held-out catalogue tracks plus
  another fixed procedural range).

The procedural stream used for training draws seeds from :data:`TRAIN_SEED_RANGE`, which does not
overlap :data:`VALIDATION_SEEDS` or :data:`TEST_SEEDS`; naming a reserved seed as a training track
is an error (:func:`check_training_tracks`).

Regimes (usable wherever training tracks are named, e.g. ``donkeyrl train --track``):

- ``procedural``: a fresh procedural track every episode, from the seeded stream;
- ``catalogue``: the catalogue training tracks, one drawn uniformly per episode;
- ``mixed``: half the episodes on a catalogue training track, half on a fresh procedural track;
- any track name (see :func:`donkeyrl.sim.tracks.resolve_track_name`); names and regimes can be
  mixed: ``--track warehouse procedural`` gives ``procedural`` half of the episodes.

This module is the one place that names the sets; ``donkeyrl tracks`` prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from donkeyrl.sim.track import Track
from donkeyrl.sim.tracks import CATALOGUE, PROCEDURAL_PREFIX, UnknownTrackError, get_track, resolve_track_name

__all__ = [
    "REGIMES", "SETS", "TRAIN_SEED_RANGE", "VALIDATION_SEEDS", "TEST_SEEDS", "TrackSetError",
    "TrackSampler", "check_training_tracks", "expand_set", "set_of", "training_catalogue",
    "validation_tracks", "test_tracks",
]

#: Catalogue tracks a study's objective is measured on (never trained on by the regimes).
VALIDATION_CATALOGUE: tuple[str, ...] = ("roboracingleague_1", "chicane_alley")
#: Catalogue tracks that are only ever reported (the held-out scenes).
TEST_CATALOGUE: tuple[str, ...] = ("circuit_launch", "warren", "thunderhill", "canyon")
#: Procedural seeds of the validation set (a fixed range; see the module docstring).
VALIDATION_SEEDS: range = range(10_000, 10_008)
#: Procedural seeds of the test set.
TEST_SEEDS: range = range(20_000, 20_012)
#: Seeds the training stream draws from: disjoint from both fixed ranges by construction.
TRAIN_SEED_RANGE: range = range(100_000, 2**31)
#: Share of episodes on a fresh procedural track when ``procedural`` is mixed with named tracks.
PROCEDURAL_SHARE = 0.5

REGIMES: dict[str, str] = {
    "procedural": "a fresh procedural track every episode (seeded stream, no validation/test seed)",
    "catalogue": "the catalogue training tracks, one per episode",
    "mixed": "half catalogue training tracks, half fresh procedural tracks",
}
SETS = ("train", "validation", "test")


class TrackSetError(ValueError):
    """A track list that breaks the protocol (unknown regime, reserved seed, empty list)."""


def training_catalogue() -> tuple[str, ...]:
    """Catalogue tracks of the training set: every catalogue track not in validation or test."""
    reserved = set(VALIDATION_CATALOGUE) | set(TEST_CATALOGUE)
    return tuple(n for n in CATALOGUE if n not in reserved)


def _procedural(seeds: range) -> tuple[str, ...]:
    return tuple(f"{PROCEDURAL_PREFIX}-{s}" for s in seeds)


def validation_tracks() -> tuple[str, ...]:
    """Every track of the validation set, catalogue first."""
    return VALIDATION_CATALOGUE + _procedural(VALIDATION_SEEDS)


def test_tracks() -> tuple[str, ...]:
    """Every track of the test set, catalogue first."""
    return TEST_CATALOGUE + _procedural(TEST_SEEDS)


def expand_set(name: str) -> tuple[str, ...]:
    """The track names of a fixed set: ``validation`` or ``test`` (``train`` is a stream)."""
    if name == "validation":
        return validation_tracks()
    if name == "test":
        return test_tracks()
    raise TrackSetError(f"unknown track set {name!r}; fixed sets: validation, test "
                        f"(the training set is sampled, see --track regimes {list(REGIMES)})")


def _seed_of(canonical: str) -> int | None:
    if canonical.startswith(f"{PROCEDURAL_PREFIX}-"):
        return int(canonical.split("-", 1)[1])
    return None


def set_of(track: str) -> str:
    """``train``, ``validation`` or ``test`` for a track name (procedural seeds by their range)."""
    canonical = resolve_track_name(track)
    if canonical in VALIDATION_CATALOGUE:
        return "validation"
    if canonical in TEST_CATALOGUE:
        return "test"
    seed = _seed_of(canonical)
    if seed is not None and seed in VALIDATION_SEEDS:
        return "validation"
    if seed is not None and seed in TEST_SEEDS:
        return "test"
    return "train"


def check_training_tracks(entries: Sequence[str], *, allow_reserved: bool = False) -> tuple[str, ...]:
    """Validated, canonical training entries (regime words kept as they are).

    Raises TrackSetError for an empty list or, unless ``allow_reserved``, a validation or test
    track named for training (that would leak the sets the study selects and reports on).
    Unknown names raise :class:`donkeyrl.sim.tracks.UnknownTrackError` listing the valid names
    and the regimes.
    """
    if not entries:
        raise TrackSetError("at least one training track or regime is needed "
                            f"(a track name or one of {list(REGIMES)})")
    out: list[str] = []
    for entry in entries:
        key = str(entry).strip().lower()
        if key in REGIMES:
            out.append(key)
            continue
        try:
            canonical = resolve_track_name(entry)
        except UnknownTrackError as exc:
            raise UnknownTrackError(f"{exc}; or a regime: {', '.join(REGIMES)}") from None
        if canonical == PROCEDURAL_PREFIX:  # a bare "procedural" spelled differently
            out.append("procedural")
            continue
        which = set_of(canonical)
        if which != "train" and not allow_reserved:
            raise TrackSetError(
                f"track {entry!r} belongs to the {which} set and cannot be trained on (train on "
                f"the training set: {', '.join(training_catalogue())}, 'procedural' or "
                f"procedural-<seed> with seed >= {TRAIN_SEED_RANGE.start}); pass it to evaluate "
                "instead")
        out.append(canonical)
    return tuple(out)


@dataclass
class TrackSampler:
    """Draws the track of each episode from training entries (names and regimes).

    ``next(rng)`` returns a Track. Catalogue names are drawn uniformly; when the entries also hold
    ``procedural`` (or ``mixed``) a fresh procedural track is drawn with probability
    :data:`PROCEDURAL_SHARE` (always, when ``procedural`` is the only entry). Procedural seeds come
    from ``rng``, so a seeded env replays the same track sequence.
    """

    entries: tuple[str, ...]
    allow_reserved: bool = False

    def __post_init__(self) -> None:
        checked = check_training_tracks(self.entries, allow_reserved=self.allow_reserved)
        names: list[str] = []
        procedural = False
        for e in checked:
            if e == "procedural":
                procedural = True
            elif e == "catalogue":
                names.extend(training_catalogue())
            elif e == "mixed":
                names.extend(training_catalogue())
                procedural = True
            else:
                names.append(e)
        self.names: tuple[str, ...] = tuple(dict.fromkeys(names))
        self.procedural = procedural

    @property
    def fixed(self) -> bool:
        """True when every episode is on one known track (no sampling at all)."""
        return not self.procedural and len(self.names) == 1

    def next(self, rng: np.random.Generator) -> Track:
        """The track of the next episode."""
        if self.procedural and (not self.names or rng.random() < PROCEDURAL_SHARE):
            seed = int(rng.integers(TRAIN_SEED_RANGE.start, TRAIN_SEED_RANGE.stop))
            return get_track(f"{PROCEDURAL_PREFIX}-{seed}")
        return get_track(self.names[int(rng.integers(len(self.names)))])
