"""Search space: validation errors, encode/decode round trips (TC-003 and property-based)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from donkeyrl.bo import SearchSpace, SearchSpaceError

SPEC = {
    "n_steer": {"type": "int", "low": 3, "high": 9},
    "n_throttle": {"type": "int", "low": 2, "high": 5},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "gamma": {"type": "float", "low": 0.9, "high": 0.999},
    "batch_size": {"type": "int", "low": 16, "high": 512, "log": True},
    "agent": {"type": "categorical", "choices": ["ppo", "dqn", "sac"]},
    "frame_skip": {"type": "fixed", "value": 2},
}


def test_tc003_round_trip() -> None:
    space = SearchSpace.from_dict({k: SPEC[k] for k in ("n_steer", "n_throttle", "learning_rate")})
    params = {"n_steer": 7, "n_throttle": 3, "learning_rate": 0.002}
    x = space.encode(params)
    assert x.shape == (3,) and np.all((x >= 0) & (x <= 1))
    assert space.decode(x) == params


def test_to_dict_from_dict_and_names() -> None:
    space = SearchSpace.from_dict(SPEC)
    again = SearchSpace.from_dict(space.to_dict())
    assert again.to_dict() == space.to_dict()
    assert space.names == list(SPEC)
    assert space.dim == len(SPEC) - 1  # the fixed parameter has no coordinate


def test_decode_gives_valid_points_and_fixed_values() -> None:
    space = SearchSpace.from_dict(SPEC)
    for x in np.random.default_rng(0).random((200, space.dim)):
        p = space.decode(x)
        assert isinstance(p["n_steer"], int) and 3 <= p["n_steer"] <= 9
        assert 16 <= p["batch_size"] <= 512 and isinstance(p["batch_size"], int)
        assert 1e-5 <= p["learning_rate"] <= 1e-2
        assert p["agent"] in ("ppo", "dqn", "sac") and p["frame_skip"] == 2


def test_sample_covers_integer_range_uniformly() -> None:
    space = SearchSpace.from_dict({"n": {"type": "int", "low": 3, "high": 9}})
    counts = np.bincount([p["n"] for p in space.sample(0, 7000)], minlength=10)[3:]
    assert counts.min() > 800  # 1000 expected per value: buckets are equal-width


def test_snap_matches_decode() -> None:
    space = SearchSpace.from_dict(SPEC)
    X = np.random.default_rng(1).random((50, space.dim))
    for x, xs in zip(X, space.snap(X)):
        assert space.decode(x) == space.decode(xs)
        assert np.allclose(space.encode(space.decode(x)), xs)


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"a": {"type": "float", "low": 1.0, "high": 1.0}}, ["'a'", "low=1.0", "high=1.0"]),
        ({"a": {"type": "int", "low": 5, "high": 2}}, ["'a'", "low=5"]),
        ({"a": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, ["log", "low=0.0"]),
        ({"a": {"type": "float", "low": -1.0, "high": 1.0, "log": True}}, ["log"]),
        ({"a": {"type": "categorical", "choices": []}}, ["'a'", "choices"]),
        ({"a": {"type": "categorical", "choices": ["x", "x"]}}, ["duplicate"]),
        ({"a": {"type": "normal"}}, ["type='normal'", "int"]),
        ({"a": {"type": "int", "low": 1.5, "high": 3}}, ["integers"]),
        ({"a": {"type": "float", "low": 0.0}}, ["missing 'high'"]),
        ({"a": {"type": "fixed"}}, ["value"]),
        ({}, ["non-empty"]),
    ],
)
def test_invalid_spaces_are_refused_clearly(spec: dict, words: list[str]) -> None:
    with pytest.raises(SearchSpaceError) as err:
        SearchSpace.from_dict(spec)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize(
    "params, words",
    [
        ({"n_steer": 12}, ["n_steer=12", "outside"]),
        ({"n_steer": 4.5}, ["not an integer"]),
        ({"agent": "a2c"}, ["a2c", "ppo"]),
        ({"learning_rate": float("nan")}, ["learning_rate"]),
        ({"learning_rate": "fast"}, ["not a number"]),
    ],
)
def test_invalid_values_are_refused(params: dict, words: list[str]) -> None:
    space = SearchSpace.from_dict(SPEC)
    good = space.decode(np.full(space.dim, 0.5))
    with pytest.raises(SearchSpaceError) as err:
        space.encode({**good, **params})
    for w in words:
        assert w in str(err.value)


def test_missing_parameter_is_refused_and_extra_keys_ignored() -> None:
    space = SearchSpace.from_dict(SPEC)
    good = space.decode(np.full(space.dim, 0.5))
    with pytest.raises(SearchSpaceError, match="gamma"):
        space.encode({k: v for k, v in good.items() if k != "gamma"})
    assert np.allclose(space.encode({**good, "seed": 3}), space.encode(good))


def _values(draw: st.DrawFn) -> dict:
    return {
        "n_steer": draw(st.integers(3, 9)),
        "n_throttle": draw(st.integers(2, 5)),
        "learning_rate": draw(st.floats(1e-5, 1e-2)),
        "gamma": draw(st.floats(0.9, 0.999)),
        "batch_size": draw(st.integers(16, 512)),
        "agent": draw(st.sampled_from(["ppo", "dqn", "sac"])),
        "frame_skip": 2,
    }


@settings(max_examples=300, deadline=None)
@given(st.composite(_values)())
def test_round_trip_property(params: dict) -> None:
    space = SearchSpace.from_dict(SPEC)
    out = space.decode(space.encode(params))
    for k, v in params.items():
        if isinstance(v, float):
            assert math.isclose(out[k], v, rel_tol=1e-10), (k, v, out[k])
        else:
            assert out[k] == v and type(out[k]) is type(v), (k, v, out[k])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6))
def test_decode_encode_is_stable(u: list[float]) -> None:
    """decode(encode(decode(x))) == decode(x): proposals are fixed points of the encoding."""
    space = SearchSpace.from_dict(SPEC)
    p = space.decode(np.array(u))
    assert space.decode(space.encode(p)) == p
