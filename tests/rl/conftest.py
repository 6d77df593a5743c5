"""Fixtures of the rl tests; the fake env itself lives in rl_fakes.py."""

from __future__ import annotations

from typing import Any

import pytest

from rl_fakes import FakeDonkeyEnv

@pytest.fixture
def fake_factory():
    """make_env stand-in; returns (factory, list of envs it built)."""
    built: list[FakeDonkeyEnv] = []

    def factory(track: Any = "generated_track", **kwargs: Any) -> FakeDonkeyEnv:
        env = FakeDonkeyEnv(track, **kwargs)
        env.make_kwargs = dict(kwargs, track=track)
        built.append(env)
        return env

    return factory, built
