"""Helpers of the real-simulator env tests: an env on a protocol server and a path-following driver.

Its own module (not conftest.py, which several test folders have) so test files can import it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from donkeyrl.donkey.client import ClientConfig
from donkeyrl.donkey.server import DonkeySimServer
from donkeyrl.envs.common import EpisodeLimits
from donkeyrl.envs.unity import UnityDonkeyEnv

FAST_CLIENT = ClientConfig(connect_timeout=10, load_timeout=60, io_timeout=20, config_delay=0.0)


def unity_env(server: DonkeySimServer, track: Any = "generated_track", **kwargs: Any) -> UnityDonkeyEnv:
    """A UnityDonkeyEnv connected to ``server`` (``max_cte``/``max_steps`` become its limits)."""
    kwargs.setdefault("client_config", FAST_CLIENT)
    kwargs["limits"] = EpisodeLimits(max_cte=kwargs.pop("max_cte", 8.0), max_steps=kwargs.pop("max_steps", None))
    return UnityDonkeyEnv(track, host=server.host, port=server.port, **kwargs)


def pursuit(env: UnityDonkeyEnv, info: dict, lookahead: float = 6.0) -> np.ndarray:
    """Pure pursuit on the centre line the env read with node_position (telemetry only)."""
    track = env.track
    assert track is not None
    x, _, z = (v * 8.0 for v in info["pos"])
    proj = track.project(x, z)
    tx, tz = track.point_at(proj.s + lookahead)
    yaw = math.radians(info["car"][2])
    dx, dz = tx - x, tz - z
    # angle of the target to the right of the heading (forward = (sin, cos), right = (cos, -sin))
    right = dx * math.cos(yaw) - dz * math.sin(yaw)
    ahead = dx * math.sin(yaw) + dz * math.cos(yaw)
    steer = math.atan2(2 * 1.6 * right, ahead * ahead + right * right) / math.radians(16)
    return np.array([np.clip(steer, -1, 1), 0.45], dtype=np.float32)


def session_of(server: DonkeySimServer) -> Any:
    """The server-side session of the (single) live connection, to compare with the truth."""
    live = [s for t, s in server._sessions.items() if t.is_alive() and s.sim is not None]
    assert len(live) == 1
    return live[0]
