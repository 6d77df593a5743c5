"""The track protocol: disjoint sets, reserved seeds refused for training, seeded regimes."""

from __future__ import annotations

import numpy as np
import pytest

from donkeyrl.sim import tracksets as ts
from donkeyrl.sim.tracks import CATALOGUE, UnknownTrackError


def test_sets_are_disjoint_and_cover_the_catalogue():
    train, val, test = set(ts.training_catalogue()), set(ts.validation_tracks()), set(ts.test_tracks())
    assert not train & val and not train & test and not val & test
    assert set(CATALOGUE) <= train | val | test
    assert not set(ts.VALIDATION_SEEDS) & set(ts.TEST_SEEDS)
    for r in (ts.VALIDATION_SEEDS, ts.TEST_SEEDS):
        assert r.stop <= ts.TRAIN_SEED_RANGE.start


def test_set_of_names_each_track():
    assert ts.set_of("generated_track") == "train"
    assert ts.set_of("donkey-warren-track-v0") == "test"
    assert ts.set_of(f"procedural-{ts.VALIDATION_SEEDS.start}") == "validation"
    assert ts.set_of(f"procedural-{ts.TEST_SEEDS.stop - 1}") == "test"
    assert ts.set_of("procedural-123456") == "train"


@pytest.mark.parametrize("bad", ["warren", f"procedural-{ts.TEST_SEEDS.start}",
                                 f"procedural-{ts.VALIDATION_SEEDS.start + 1}", "chicane_alley"])
def test_reserved_tracks_cannot_be_trained_on(bad):
    with pytest.raises(ts.TrackSetError, match="cannot be trained on"):
        ts.check_training_tracks(["generated_track", bad])
    assert ts.check_training_tracks([bad], allow_reserved=True)


def test_unknown_regime_names_the_valid_ones():
    with pytest.raises(UnknownTrackError, match="Valid names.*; or a regime: procedural, catalogue, mixed"):
        ts.check_training_tracks(["procedurall_stream"])
    with pytest.raises(ts.TrackSetError, match="at least one"):
        ts.check_training_tracks([])
    with pytest.raises(ts.TrackSetError, match="validation, test"):
        ts.expand_set("train")


def test_procedural_stream_is_seeded_and_never_yields_a_reserved_seed():
    sampler = ts.TrackSampler(("procedural",))
    a = [sampler.next(np.random.default_rng(7)).name for _ in range(3)]
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    seq1 = [sampler.next(rng1).name for _ in range(5)]
    seq2 = [sampler.next(rng2).name for _ in range(5)]
    assert seq1 == seq2 and len(set(seq1)) == 5
    assert len(set(a)) == 1
    for name in seq1:
        assert ts.set_of(name) == "train"


def test_mixed_regime_draws_both_kinds():
    sampler = ts.TrackSampler(("mixed",))
    assert set(sampler.names) == set(ts.training_catalogue()) and sampler.procedural
    rng = np.random.default_rng(0)
    names = [sampler.next(rng).name for _ in range(40)]
    procedural = sum(n.startswith("procedural-") for n in names)
    assert 8 <= procedural <= 32
    assert ts.TrackSampler(("generated_track",)).fixed
