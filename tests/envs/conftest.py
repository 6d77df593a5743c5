"""Fixtures of the env tests: the protocol server over loopback (ephemeral port) for the real-simulator env."""

from __future__ import annotations

import pytest

from donkeyrl.donkey.server import DonkeySimServer, ServerConfig


@pytest.fixture
def fast_server():
    with DonkeySimServer(ServerConfig(port=0, fast=True, seed=0)) as srv:
        yield srv
