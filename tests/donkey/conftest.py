"""Fixtures: the protocol server over loopback (ephemeral ports) and the project's client."""

from __future__ import annotations

import pytest

from donkeyrl.donkey import protocol as P
from donkeyrl.donkey.client import ClientConfig, SimClient
from donkeyrl.donkey.server import DonkeySimServer, ServerConfig

FAST_CLIENT = ClientConfig(connect_timeout=10, load_timeout=60, io_timeout=20, config_delay=0.0)


@pytest.fixture
def fast_server():
    with DonkeySimServer(ServerConfig(port=0, fast=True, seed=0)) as srv:
        yield srv


def car(server: DonkeySimServer, scene: str = "generated_track") -> SimClient:
    """A connected client with a car loaded in ``scene``."""
    client = SimClient(server.host, server.port, FAST_CLIENT).connect()
    client.load_scene(scene)
    return client


def step(client: SimClient, steering: float = 0.0, throttle: float = 0.0, brake: float = 0.0,
         timeout: float = 20.0) -> P.Telemetry:
    """One control and the telemetry answering it (fast mode: exactly one)."""
    seq = client.telemetry_seq
    client.send(P.Control(steering, throttle, brake))
    return client.wait_telemetry(seq, timeout)[1]


def session_of(server: DonkeySimServer, index: int = 0):
    """The server-side session of the live connection with a car, in connection order."""
    live = sorted((s for s in server.sessions() if s.car is not None), key=lambda s: s.number)
    return live[index]
