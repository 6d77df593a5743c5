"""The Gymnasium environment over the built-in simulator (gym-donkeycar contract).

Also the pieces the batched env (:mod:`donkeyrl.envs.vector`) shares with it, so that car ``i`` of a
batch and a single env seeded alike live the same episodes: :class:`TrackChoice` (which track an
episode runs on: fixed tracks, names or the regimes of :mod:`donkeyrl.sim.tracksets`),
:func:`draw_start` (track, start pose noise and appearance drawn from one generator, in one order)
and :func:`telemetry_info`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from donkeyrl.envs.common import EpisodeCore, EpisodeLimits, step_info, validate_action, yaw_degrees
from donkeyrl.sim.camera import Appearance, CameraConfig, Renderer
from donkeyrl.sim.simulator import HIT_NAMES, CarArrays, SimConfig, Simulator, Telemetry
from donkeyrl.sim.track import Track
from donkeyrl.sim.tracksets import TrackSampler
from donkeyrl.units import TELEMETRY_SCALE

log = logging.getLogger(__name__)

#: Start-pose noise: lateral offset (units) and yaw (rad) drawn uniformly in +/- these.
START_LATERAL = 0.25
START_YAW = np.radians(2.0)
#: Share of a domain-randomised car's episodes drawn in the track's own look (the look every
#: evaluation and race uses, and the real simulator's): a policy trained only on random looks
#: never saw the one it is judged on, and measured trained that way it drove every random look
#: and left the road within 5% of every track in its own look.
NOMINAL_LOOK_SHARE = 0.2
#: Track a simulator is built on before the first reset when the entries name only a regime.
PLACEHOLDER_TRACK = "generated_track"


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


class TrackChoice:
    """Where an env's episodes run: Track objects, track names, or training regimes.

    Names and regimes (``procedural``, ``catalogue``, ``mixed``) go through
    :class:`~donkeyrl.sim.tracksets.TrackSampler`, which draws one per episode from the episode's
    generator; a single fixed track draws nothing. Validation and test tracks are accepted here (an
    env also evaluates on them); training code checks the track protocol before building envs.
    """

    def __init__(self, track: str | Track | Sequence[str | Track]) -> None:
        items = [track] if isinstance(track, (str, Track)) else list(track)
        if not items:
            raise ValueError("at least one track is needed")
        self.sampler: TrackSampler | None = None
        self.tracks: list[Track] = []
        if all(isinstance(t, str) for t in items):
            self.sampler = TrackSampler(tuple(str(t) for t in items), allow_reserved=True)
            names = self.sampler.names
            self.tracks = resolve_tracks(list(names) if names else [PLACEHOLDER_TRACK])
        else:
            self.tracks = resolve_tracks(items)

    @property
    def first(self) -> Track:
        """The track to build a simulator on before the first reset."""
        return self.tracks[0]

    @property
    def fixed(self) -> bool:
        """True when every episode runs on the same track (nothing is drawn)."""
        if self.sampler is not None:
            return self.sampler.fixed
        return len(self.tracks) == 1

    def pick(self, rng: np.random.Generator, options: dict[str, Any] | None = None) -> Track:
        """The next episode's track: ``options["track"]`` if given, else drawn from ``rng``."""
        if options and "track" in options:
            return resolve_tracks(options["track"])[0]
        if self.fixed:
            return self.tracks[0]
        if self.sampler is not None:
            return self.sampler.next(rng)
        return self.tracks[int(rng.integers(len(self.tracks)))]


@dataclass(frozen=True)
class EpisodeStart:
    """What a reset draws for one car: its track, start pose noise and camera appearance."""

    track: Track
    lateral: float
    yaw_offset: float
    appearance: Appearance | None


def draw_start(rng: np.random.Generator, tracks: TrackChoice, options: dict[str, Any] | None, *,
               start_noise: bool, domain_randomization: bool) -> EpisodeStart:
    """One car's episode start, drawn in a fixed order (track, pose, look) from its generator."""
    track = tracks.pick(rng, options)
    lat, dyaw = start_offsets(rng) if start_noise else (0.0, 0.0)
    appearance = Appearance.random(rng) if domain_randomization else None
    if appearance is not None and rng.random() < NOMINAL_LOOK_SHARE:
        appearance = None
    return EpisodeStart(track, lat, dyaw, appearance)


def check_action_box(steer_limit: float, throttle_min: float, throttle_max: float) -> spaces.Box:
    """The (steering, throttle) Box of the built-in envs; ValueError naming a bad bound."""
    if not 0 < steer_limit <= 1:
        raise ValueError(f"steer_limit must be in (0, 1], got {steer_limit}")
    if not -1 <= throttle_min < throttle_max <= 1:
        raise ValueError(f"need -1 <= throttle_min < throttle_max <= 1, got {throttle_min}, {throttle_max}")
    return spaces.Box(np.array([-steer_limit, throttle_min], np.float32),
                      np.array([steer_limit, throttle_max], np.float32), dtype=np.float32)


def observation_box(camera: CameraConfig) -> spaces.Box:
    """The uint8 image Box of a camera format."""
    return spaces.Box(0, 255, camera.shape, np.uint8)


class EmbeddedDonkeyEnv(gym.Env):
    """A DonkeyCar on the built-in simulator, seen through its front camera.

    Description:
        The car drives a track of the catalogue (or one of several, or a fresh procedural track,
        drawn per episode). Physics at 100 Hz, one step = 0.05 s of simulated time, like the
        DonkeyCar simulator, but as fast as the CPU allows and deterministic for a given seed.
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
        ``info["truncated_reason"]`` say which (:class:`donkeyrl.envs.common.EpisodeCore`).
    Arguments:
        track: catalogue name, DonkeyCar env id or scene name, a training regime (``procedural``,
            ``catalogue``, ``mixed``), a Track, or a list of these (one is drawn per episode).
        camera: image size / crop / grey of the observation.
        limits: max_cte, step limit, watchdog and lap limit.
        steer_limit, throttle_min, throttle_max: the action box.
        domain_randomization: draw a new camera appearance (colours, light, texture, camera pose
            jitter) on every reset; a share of the resets (:data:`NOMINAL_LOOK_SHARE`) keeps the
            track's own look.
        start_noise: perturb the start pose (gives evaluation episodes some variety).
        render_mode: None or "rgb_array" (a 120x160 RGB frame whatever the observation is).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, track: str | Track | Sequence[str | Track] = "generated_track", *,
                 camera: CameraConfig | None = None, limits: EpisodeLimits | None = None,
                 steer_limit: float = 1.0, throttle_min: float = 0.0, throttle_max: float = 1.0,
                 domain_randomization: bool = False, start_noise: bool = True,
                 sim_config: SimConfig | None = None, render_mode: str | None = None) -> None:
        self.box = check_action_box(steer_limit, throttle_min, throttle_max)
        self.action_space = self.box
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.limits = limits or EpisodeLimits()
        self.limits.check()
        self.track_choice = TrackChoice(track)
        self.camera = camera or CameraConfig()
        self.domain_randomization = domain_randomization
        self.start_noise = start_noise
        self.render_mode = render_mode
        self.sim = Simulator(self.track_choice.first, 1, sim_config, camera=self.camera)
        self._view: Renderer | None = None  # full-size RGB renderer for render(), created on demand
        self.core = EpisodeCore(self.limits)
        self.observation_space = observation_box(self.camera)
        self._obs = np.zeros(self.observation_space.shape, np.uint8)

    @property
    def tracks(self) -> list[Track]:
        """The fixed tracks (or named tracks) episodes are drawn from."""
        return self.track_choice.tracks

    @property
    def _max_steps(self) -> int:
        return self.core.max_steps

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start = draw_start(self.np_random, self.track_choice, options, start_noise=self.start_noise,
                           domain_randomization=self.domain_randomization)
        if start.track is not self.sim.track:
            self.sim.set_track(start.track)
            self._view = None
        self.sim.reset(0, lateral=start.lateral, yaw_offset=start.yaw_offset)
        self.sim.set_appearance(0, start.appearance)
        self.core.start(start.track.length)
        self.sim.render(0, out=self._obs)
        return self._obs.copy(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = validate_action(action, self.box.low, self.box.high)
        self.sim.step(a[0], a[1])
        info = self._info()
        reward, terminated, truncated = self.core.step(
            info, cte=info["cte"], hit=info["hit"], forward_vel=info["forward_vel"], progress=info["progress"],
            lap_count=info["lap_count"], end_of_road=self.sim.at_end_of_road(0))
        self.sim.render(0, out=self._obs)
        return self._obs.copy(), reward, terminated, truncated, info

    def _info(self) -> dict[str, Any]:
        """This step's info, built like the batched env's (same numpy read-out, same rounding)."""
        return readout_infos(self.sim.readout(), [self.sim.track], self.sim.lap_times)[0]

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self.camera == CameraConfig():
            return self._obs.copy()
        if self._view is None:
            self._view = Renderer(self.sim.track, CameraConfig())
        st = self.sim.telemetry(0)
        look = self.sim.appearances[0]
        return self._view.render(st.x, st.z, st.yaw, look if isinstance(look, Appearance) else None)


#: The name this env had before the real-simulator env moved into this package.
DonkeyEnv = EmbeddedDonkeyEnv


def telemetry_info(tel: Telemetry, track: Track) -> dict[str, Any]:
    """The ``info`` of one car from its :class:`~donkeyrl.sim.simulator.Telemetry` snapshot.

    The envs build ``info`` with :func:`readout_infos` instead, one code path for one car and for a
    batch: the read-out's vectorised maths (e.g. the heading error's ``arctan2``) may round the
    last bit differently from the scalar ``Telemetry``, and the two training paths must agree
    to the bit.
    """
    return car_info(x=tel.x, y=tel.y, z=tel.z, yaw=tel.yaw, pitch=tel.pitch, roll=tel.roll, speed=tel.speed,
                    forward_vel=tel.forward_vel, vel_x=tel.vel_x, vel_z=tel.vel_z, yaw_rate=tel.yaw_rate,
                    accel_x=tel.accel_x, accel_z=tel.accel_z, cte=tel.cte, heading_error=tel.heading_error,
                    progress=tel.progress, lap_count=tel.lap_count, last_lap_time=tel.last_lap_time,
                    lap_times=tel.lap_times, hit=tel.hit, off_track=tel.off_track, time=tel.time,
                    steering=tel.steering, throttle=tel.throttle, track=track)


def readout_infos(cars: CarArrays, tracks: Sequence[Track], lap_times: Sequence[Sequence[float]]
                  ) -> list[dict[str, Any]]:
    """The ``info`` of every car from one :meth:`~donkeyrl.sim.simulator.Simulator.readout`."""
    columns = {name: getattr(cars, name).tolist() for name in _READOUT_FIELDS}
    hit_names = [HIT_NAMES[k] for k in cars.hit_kind.tolist()]
    return [car_info(**{name: values[i] for name, values in columns.items()}, hit=hit_names[i],
                     lap_times=lap_times[i], track=tracks[i]) for i in range(len(tracks))]


_READOUT_FIELDS = ("x", "y", "z", "yaw", "pitch", "roll", "speed", "forward_vel", "vel_x", "vel_z", "yaw_rate",
                   "accel_x", "accel_z", "cte", "heading_error", "progress", "lap_count", "last_lap_time",
                   "off_track", "time", "steering", "throttle")


def car_info(*, x: float, y: float, z: float, yaw: float, pitch: float, roll: float, speed: float,
             forward_vel: float, vel_x: float, vel_z: float, yaw_rate: float, accel_x: float, accel_z: float,
             cte: float, heading_error: float, progress: float, lap_count: int, last_lap_time: float,
             lap_times: Sequence[float], hit: str, off_track: bool, time: float, steering: float,
             throttle: float, track: Track) -> dict[str, Any]:
    """The gym-donkeycar info keys of a built-in car (simulator units and radians in, telemetry
    units and Unity-style degrees out) plus the exact track quantities; see
    :func:`donkeyrl.envs.common.step_info`."""
    s = TELEMETRY_SCALE
    return step_info(
        pos=(x / s, y / s, z / s), cte=cte, speed=speed / s, forward_vel=forward_vel / s, hit=hit,
        lap_count=lap_count, last_lap_time=last_lap_time, lap_times=lap_times, gyro=(0.0, yaw_rate, 0.0),
        accel=(accel_x / s, 0.0, accel_z / s), vel=(vel_x / s, 0.0, vel_z / s),
        car=(yaw_degrees(roll), yaw_degrees(pitch), yaw_degrees(yaw)), progress=progress,
        track_length=track.length, off_track=off_track, track=track.name, time=time, steering=steering,
        throttle=throttle, heading_error=heading_error)


__all__ = ["DonkeyEnv", "EmbeddedDonkeyEnv", "EpisodeStart", "TrackChoice", "car_info", "draw_start",
           "readout_infos", "resolve_tracks", "start_offsets", "telemetry_info"]
