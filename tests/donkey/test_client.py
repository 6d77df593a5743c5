"""The TCP client against the protocol server: connection errors, node paths, road regeneration."""

from __future__ import annotations

import numpy as np
import pytest

from donkeyrl.donkey import protocol as P
from donkeyrl.donkey.client import ClientConfig, SimClient, SimConnectError
from donkeyrl.donkey.launcher import free_port
from donkeyrl.donkey.server import node_stride
from donkeyrl.sim.tracks import get_track

from .conftest import FAST_CLIENT

pytestmark = pytest.mark.timeout(180)


def test_regen_road_node_path_and_protocol_version(fast_server):
    client = SimClient(fast_server.host, fast_server.port, FAST_CLIENT).connect()
    try:
        client.load_scene("generated_road")
        assert client.protocol_version() == "2"

        def path() -> np.ndarray:
            seq = client.telemetry_seq
            client.send(P.Control(0.0, 0.0, 1.0))
            _, tel = client.wait_telemetry(seq)
            return np.array([(n.pos_x, n.pos_z) for n in client.read_nodes(tel.totalNodes)])

        first = path()
        client.send(P.RegenRoad(road_style=0, rand_seed=7))
        second = path()
        assert len(first) > 500 and not np.allclose(first[:50], second[:50])
        truth = get_track("generated_road", seed=7)
        assert np.allclose(second[-1], truth.points[(len(second) - 1) * node_stride(truth)])
    finally:
        client.close()


def test_port_closed_is_a_clear_connect_error():
    port = free_port()
    cfg = ClientConfig(connect_timeout=1.0, retry_interval=0.2)
    with pytest.raises(SimConnectError, match=rf"127.0.0.1:{port} after \d+ attempts"):
        SimClient("127.0.0.1", port, cfg).connect()
