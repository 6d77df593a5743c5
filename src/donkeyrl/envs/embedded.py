"""The Gymnasium environment over the built-in simulator (gym-donkeycar contract)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from donkeyrl.envs.common import (TELEMETRY_SCALE, EpisodeLimits, ProgressWatchdog, auto_max_steps,
                                  classify_step, donkey_reward, validate_action,
                                  yaw_degrees)
from donkeyrl.sim.camera import Appearance, CameraConfig
from donkeyrl.sim.simulator import SimConfig, Simulator, Telemetry
from donkeyrl.sim.track import Track

log = logging.getLogger(__name__)

#: Start-pose noise: lateral offset (units) and yaw (rad) drawn uniformly in +/- these.
START_LATERAL = 0.25
START_YAW = np.radians(2.0)


def start_offsets(rng: np.random.Generator) -> tuple[float, float]:
    """A random start perturbation: (lateral offset in units, yaw offset in rad)."""
    return float(rng.uniform(-START_LATERAL, START_LATERAL)), float(rng.uniform(-START_YAW, START_YAW))


def resolve_tracks(track: str | Track | Sequence[str | Track]) -> list[Track]:
    """Track objects for a name, a Track, or a list of either (names may be DonkeyCar env ids)."""
    from donkeyrl.sim.tracks import get_track

    items = [track] if isinstance(track, (str, Track)) else list(track)
    if not items:
        raise ValueError("at least one track is needed")
    return [t if isinstance(t, Track) else get_track(t) for t in items]


class DonkeyEnv(gym.Env):
    """A DonkeyCar on the built-in simulator, seen through its front camera.

    Description:
        The car drives a track of the catalogue (or one of several, sampled per episode). Physics
        at 100 Hz, one step = 0.05 s of simulated time, like the DonkeyCar simulator, but as fast
        as the CPU allows and deterministic for a given seed.
    Action Space:
        ``Box([-steer_limit, throttle_min], [steer_limit, throttle_max], float32)``: (steering,
        throttle). Steering 1 = 16 degrees right. Finite values outside the box are clipped to it
        (the simulator clamps too); NaN, inf or a wrong shape raise ValueError.
    Observation Space:
        ``Box(0, 255, (H, W, C), uint8)``: the camera image, 120x160x3 by default; a CameraConfig
        can ask for a smaller, cropped or grey image rendered directly.
    Rewards:
        The DonkeyCar default (see :func:`donkeyrl.envs.common.donkey_reward`). Other rewards are
        wrappers in :mod:`donkeyrl.rl.wrappers` computed from ``info``.
    Starting State:
        At rest on the path just behind the start line, with a small random lateral and yaw offset
        (``start_noise``).
    Episode End:
        Terminated when |cte| > max_cte or the car hits a barrier. Truncated at the step limit,
        after ``max_laps`` laps, at the end of an open road, or when the progress watchdog sees no
        progress (parked, reversing or circling car). ``info["terminated_reason"]`` /
        ``info["truncated_reason"]`` say which.
    Arguments:
        track: catalogue name, DonkeyCar env id or scene name, a Track, or a list (one is sampled
            per episode, for multi-track training).
        camera: image size / crop / grey of the observation.
        limits: max_cte, step limit, watchdog and lap limit.
        steer_limit, throttle_min, throttle_max: the action box.
        domain_randomization: draw a new camera appearance (colours, light, texture, camera pose
            jitter) on every reset.
        start_noise: perturb the start pose (gives evaluation episodes some variety).
        render_mode: None or "rgb_array" (a 120x160 RGB frame whatever the observation is).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, track: str | Track | Sequence[str | Track] = "generated_track", *,
                 camera: CameraConfig | None = None, limits: EpisodeLimits | None = None,
                 steer_limit: float = 1.0, throttle_min: float = 0.0, throttle_max: float = 1.0,
                 domain_randomization: bool = False, start_noise: bool = True,
                 sim_config: SimConfig | None = None, render_mode: str | None = None) -> None:
        if not 0 < steer_limit <= 1:
            raise ValueError(f"steer_limit must be in (0, 1], got {steer_limit}")
        if not -1 <= throttle_min < throttle_max <= 1:
            raise ValueError(f"need -1 <= throttle_min < throttle_max <= 1, got {throttle_min}, {throttle_max}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.tracks = resolve_tracks(track)
        self.camera = camera or CameraConfig()
        self.limits = limits or EpisodeLimits()
        if not self.limits.max_cte > 0:
            raise ValueError(f"max_cte must be > 0, got {self.limits.max_cte}")
        self.domain_randomization = domain_randomization
        self.start_noise = start_noise
        self.render_mode = render_mode
        self.sim = Simulator(self.tracks[0], 1, sim_config, camera=self.camera)
        self._view = None  # full-size RGB renderer for render(), created on demand
        self.watchdog = ProgressWatchdog(self.limits.stuck_steps, self.limits.stuck_progress)
        c = 1 if self.camera.grey else 3
        self.observation_space = spaces.Box(0, 255, (self.camera.height, self.camera.width, c), np.uint8)
        self.action_space = spaces.Box(np.array([-steer_limit, throttle_min], np.float32),
                                       np.array([steer_limit, throttle_max], np.float32), dtype=np.float32)
        self._obs = np.zeros(self.observation_space.shape, np.uint8)
        self._steps = 0
        self._max_steps = 0

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        track = self._pick_track(options)
        if track is not self.sim.track:
            self.sim.set_track(track)
            self._view = None
        lat, dyaw = start_offsets(self.np_random) if self.start_noise else (0.0, 0.0)
        self.sim.reset(0, lateral=lat, yaw_offset=dyaw)
        appearance = Appearance.random(self.np_random) if self.domain_randomization else None
        self.sim.set_appearance(0, appearance)
        self._steps = 0
        self._max_steps = self.limits.max_steps or auto_max_steps(track.length, self.sim.config.control_dt)
        self.watchdog.reset(0.0)
        self.sim.render(0, out=self._obs)
        return self._obs.copy(), telemetry_info(self.sim.telemetry(0), self.sim.track)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = validate_action(action, self.action_space.low, self.action_space.high)
        self.sim.step(a[0], a[1])
        self._steps += 1
        tel = self.sim.telemetry(0)
        stuck = self.watchdog.update(tel.progress)
        terminated_reason, truncated_reason = classify_step(
            tel.cte, tel.hit, stuck, self.sim.at_end_of_road(0), tel.lap_count, self._steps,
            self._max_steps, self.limits)
        terminated = terminated_reason is not None
        reward = donkey_reward(tel.cte, tel.forward_vel / TELEMETRY_SCALE, tel.hit, terminated,
                               self.limits.max_cte)
        self.sim.render(0, out=self._obs)
        info = telemetry_info(tel, self.sim.track)
        if terminated_reason:
            info["terminated_reason"] = terminated_reason
        if truncated_reason:
            info["truncated_reason"] = truncated_reason
        return self._obs.copy(), float(reward), terminated, truncated_reason is not None, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self.camera == CameraConfig():
            return self._obs.copy()
        if self._view is None:
            from donkeyrl.sim.camera import Renderer

            self._view = Renderer(self.sim.track, CameraConfig())
        st = self.sim.telemetry(0)
        return self._view.render(st.x, st.z, st.yaw, self.sim.appearances[0])

    # ------------------------------------------------------------------ helpers
    def _pick_track(self, options: dict[str, Any] | None) -> Track:
        if options and "track" in options:
            return resolve_tracks(options["track"])[0]
        if len(self.tracks) == 1:
            return self.tracks[0]
        return self.tracks[int(self.np_random.integers(len(self.tracks)))]


def telemetry_info(tel: Telemetry, track: Track) -> dict[str, Any]:
    """The gym-donkeycar info keys (telemetry units) plus the exact track quantities."""
    s = TELEMETRY_SCALE
    return {
        "pos": (tel.x / s, 0.0, tel.z / s), "cte": tel.cte, "speed": tel.speed / s,
        "forward_vel": tel.forward_vel / s, "hit": tel.hit, "lap_count": tel.lap_count,
        "last_lap_time": tel.last_lap_time, "gyro": (0.0, tel.yaw_rate, 0.0),
        "accel": (tel.accel_x / s, 0.0, tel.accel_z / s), "vel": (tel.vel_x / s, 0.0, tel.vel_z / s),
        "car": (0.0, 0.0, yaw_degrees(tel.yaw)), "progress": tel.progress,
        "track_length": track.length, "off_track": tel.off_track,
        "lap_times": list(tel.lap_times), "track": track.name, "time": tel.time,
        "steering": tel.steering, "throttle": tel.throttle, "heading_error": tel.heading_error,
    }
