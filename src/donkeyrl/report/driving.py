"""Drive a trained model on named tracks and keep a step-by-step trace of each drive.

Why not :func:`donkeyrl.rl.evaluate.evaluate`: the report and the videos need more than the
episode's summary: where the car was at every step (the driving line on the map), its speed,
|cte|, steering and throttle, and optionally the camera view. The env is still the model's own
wrapper stack, rebuilt from its TrialConfig by :func:`donkeyrl.rl.envbuild.build_vec_env`, so the
policy sees exactly what it was trained on; the factory passed to it only changes what a drive
needs (lap limit, step limit, start noise, a full-size camera view) and always uses the built-in
simulator, on which the track sets live.

Several tracks are driven together: one env per track, and one batched ``model.predict`` per step
for all tracks still driving. On a 2-core machine a batch of 26 small frames costs about twice a
single one, so driving the validation and test sets together is several times faster than one
track after the other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from donkeyrl.units import telemetry_to_sim
from donkeyrl.rl.envbuild import build_vec_env, metrics_wrappers

__all__ = ["DriveTrace", "TRACE_KEYS", "drive_tracks", "drive_factory", "camera_view"]

log = logging.getLogger(__name__)

#: Per-step quantities of a trace: position (simulator units), speed (telemetry units/s), cte and
#: progress (simulator units), steering and throttle as the simulator applied them, laps, time (s).
TRACE_KEYS = ("x", "z", "speed", "cte", "progress", "steering", "throttle", "lap", "time")


@dataclass
class DriveTrace:
    """One episode of a model on one track."""

    track: str
    steps: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in TRACE_KEYS})
    metrics: dict[str, Any] = field(default_factory=dict)
    """The episode's driving metrics (``EpisodeMetrics.to_dict()``: lap_times, mean_abs_cte,
    completion, end_reason, ...), from the DrivingMetrics wrapper of the model's stack."""
    track_length: float = 0.0

    def add(self, info: dict[str, Any]) -> None:
        pos = info.get("pos", (0.0, 0.0, 0.0))
        row = (telemetry_to_sim(float(pos[0])), telemetry_to_sim(float(pos[2])),
               float(info.get("speed", 0.0)), float(info.get("cte", 0.0)),
               float(info.get("progress", 0.0)), float(info.get("steering", 0.0)),
               float(info.get("throttle", 0.0)), float(info.get("lap_count", 0)),
               float(info.get("time", 0.0)))
        for k, v in zip(TRACE_KEYS, row):
            self.steps[k].append(v)
        self.track_length = float(info.get("track_length", self.track_length))

    def to_json(self, digits: int = 3) -> dict[str, Any]:
        """JSON-ready, numbers rounded (a cache of 26 traces stays below a megabyte or two)."""
        return {"track": self.track, "track_length": self.track_length, "metrics": self.metrics,
                "steps": {k: [round(v, digits) for v in vs] for k, vs in self.steps.items()}}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> DriveTrace:
        steps = {k: [float(v) for v in obj["steps"][k]] for k in TRACE_KEYS}
        return cls(str(obj["track"]), steps, dict(obj.get("metrics") or {}),
                   float(obj.get("track_length") or 0.0))


def drive_factory(*, max_laps: int | None, max_steps: int | None, start_noise: bool,
                  render: bool, domain_randomization: bool | None = None) -> Callable[..., gym.Env]:
    """An ``env_factory`` for build_vec_env: ``make_env`` on the built-in simulator with these
    episode settings (the model's own camera, action box and guards are kept)."""
    from donkeyrl.envs import make_env

    def make(track: Any, **kwargs: Any) -> gym.Env:
        for key in ("host", "port", "sim_path"):
            kwargs.pop(key, None)
        kwargs.update(sim="embedded", max_laps=max_laps, start_noise=start_noise)
        if max_steps is not None:
            kwargs["max_steps"] = max_steps
        if domain_randomization is not None:
            kwargs["domain_randomization"] = domain_randomization
        if render:
            kwargs["render_mode"] = "rgb_array"
        return make_env(track, **kwargs)

    return make


def camera_view(venv: Any) -> np.ndarray:
    """The full-size (120x160 RGB) camera view of the first env of a DummyVecEnv-based stack."""
    base = venv
    while hasattr(base, "venv"):
        base = base.venv
    return base.envs[0].render()


def drive_tracks(model: Any, cfg: Any, tracks: Sequence[str], *, max_laps: int | None = 1,
                 max_steps: Callable[[str], int | None] | None = None, seed: int = 0,
                 start_noise: bool = False, domain_randomization: bool = False,
                 on_frame: Callable[[str, np.ndarray | None, dict[str, Any], bool], None] | None = None,
                 render_tracks: Sequence[str] = (), deterministic: bool = True) -> list[DriveTrace]:
    """One episode of ``model`` on each of ``tracks``; returns their traces in the same order.

    In the tracks' own look unless ``domain_randomization`` (as every evaluation: rl/evaluate.py).

    ``max_steps(track)`` caps an episode (None: the env's default for the track length).
    ``on_frame(track, camera, info, done)`` receives the full-size camera view after the reset
    (with an empty info) and after every step on the tracks named in ``render_tracks``; on the
    final step camera is None (the vector env has already reset the car).
    """
    venvs = []
    threads = torch.get_num_threads()
    # one intra-op thread: batches of at most a few dozen small frames gain nothing from more, and
    # on the shared 2-core machine two threads made the 26-track drive 5x slower (62 s vs 12 s,
    # measured under load 4.5)
    torch.set_num_threads(1)
    try:
        for track in tracks:
            factory = drive_factory(max_laps=max_laps, max_steps=max_steps(track) if max_steps else None,
                                    start_noise=start_noise, render=track in render_tracks,
                                    domain_randomization=domain_randomization)
            venvs.append(build_vec_env(cfg, n_envs=1, tracks=[track], seed=seed, env_factory=factory,
                                       vec_env="dummy"))
        traces = [DriveTrace(track) for track in tracks]
        obs = []
        for i, v in enumerate(venvs):
            v.seed(seed)
            obs.append(v.reset())
            if tracks[i] in render_tracks and on_frame is not None:
                on_frame(tracks[i], camera_view(v), {}, False)
        active = list(range(len(venvs)))
        while active:
            actions, _ = model.predict(np.concatenate([obs[i] for i in active]), deterministic=deterministic)
            still = []
            for k, i in enumerate(active):
                o, _, done, infos = venvs[i].step(actions[k:k + 1])
                obs[i] = o
                info = infos[0]
                traces[i].add(info)
                if tracks[i] in render_tracks and on_frame is not None:
                    on_frame(tracks[i], None if done[0] else camera_view(venvs[i]), info, bool(done[0]))
                if done[0]:
                    episodes = metrics_wrappers(venvs[i])[0].episodes
                    traces[i].metrics = episodes[-1].to_dict() if episodes else {}
                else:
                    still.append(i)
            active = still
        return traces
    finally:
        torch.set_num_threads(threads)
        for v in venvs:
            v.close()
