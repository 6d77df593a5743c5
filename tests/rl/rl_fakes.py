"""A tiny stand-in for donkeyrl.envs.make_env: same spaces and info keys, trivial physics.

Its own module (not conftest.py, which several test folders have) so test files can import it.

A car on a circular road (radius 32 units, length ~201 units); the image shows one bright stripe
whose column encodes lateral offset + heading error, so a CNN can learn to steer from it.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

RADIUS = 32.0
LENGTH = 2 * math.pi * RADIUS
DT = 0.05
CLOSED: list[FakeDonkeyEnv] = []


class FakeDonkeyEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, track: Any = "generated_track", *, camera: Any = None, max_cte: float = 8.0,
                 steer_limit: float = 1.0, throttle_min: float = 0.0, throttle_max: float = 1.0,
                 max_steps: int | None = None, seed: int | None = None, **_: Any) -> None:
        self.track_name = track if isinstance(track, str) else track[0]
        h, w, c = (120, 160, 3) if camera is None else (camera.height, camera.width, 1 if camera.grey else 3)
        self.observation_space = spaces.Box(0, 255, (h, w, c), np.uint8)
        self.action_space = spaces.Box(np.array([-steer_limit, throttle_min], np.float32),
                                       np.array([steer_limit, throttle_max], np.float32))
        self.max_cte = max_cte
        self.max_steps = max_steps or 400
        self.closed = False
        self.last_action = None
        self.reset(seed=seed)

    def _obs(self) -> np.ndarray:
        h, w, c = self.observation_space.shape
        img = np.full((h, w, c), 40, np.uint8)
        col = int(np.clip(w / 2 - (self.lat / self.max_cte + self.psi) * w / 3, 0, w - 1))
        img[:, max(col - 1, 0):col + 2] = 220
        return img

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.s = self.lat = self.psi = self.v = self.t = 0.0
        self.high = 0.0
        self.steps = self.laps = 0
        self.lap_times: list[float] = []
        self.lap_start = 0.0
        self.window: list[float] = []
        return self._obs(), self._info(0.0, 0.0)

    def _info(self, steer: float, throttle: float) -> dict[str, Any]:
        return {"pos": (0.0, 0.0, 0.0), "cte": self.lat, "speed": self.v / 8, "forward_vel": self.v / 8,
                "hit": "none", "lap_count": self.laps,
                "last_lap_time": self.lap_times[-1] if self.lap_times else 0.0,
                "progress": self.high, "track_length": LENGTH, "off_track": abs(self.lat) > 6,
                "lap_times": list(self.lap_times), "track": self.track_name, "time": self.t,
                "steering": steer, "throttle": throttle}

    def step(self, action):
        steer, throttle = (float(a) for a in np.asarray(action, np.float32))
        self.last_action = (steer, throttle)
        self.v += (throttle * 40.0 - self.v) * 0.2
        self.psi += (steer * 0.6 - self.v * DT / RADIUS * 0.5)
        self.lat += self.v * math.sin(self.psi) * DT
        self.s += self.v * math.cos(self.psi) * DT
        self.t += DT
        self.steps += 1
        if self.s > self.high:
            self.high = self.s
        if self.high >= LENGTH * (self.laps + 1):
            self.laps += 1
            self.lap_times.append(self.t - self.lap_start)
            self.lap_start = self.t
        self.window.append(self.high)
        info = self._info(steer, throttle)
        terminated = abs(self.lat) > self.max_cte
        reward = -1.0 if terminated else (1 - abs(self.lat) / self.max_cte) * self.v / 8
        truncated = False
        if terminated:
            info["terminated_reason"] = "cte"
        elif self.steps >= self.max_steps:
            truncated, info["truncated_reason"] = True, "step_limit"
        elif len(self.window) > 60 and self.window[-1] - self.window[-61] < 1.0:
            truncated, info["truncated_reason"] = True, "stuck"
        return self._obs(), reward, terminated, truncated, info

    def close(self) -> None:
        self.closed = True
        CLOSED.append(self)


def fake_make_env(track: Any = "generated_track", **kwargs: Any) -> FakeDonkeyEnv:
    return FakeDonkeyEnv(track, **kwargs)
