"""``donkeyrl drive``: drive a track with a trained model, the scripted expert or a random driver.

Useful to watch a trained policy (``--model DIR --gif|--mp4 PATH``), to see a track, to get the
expert's reference lap times, and as a smoke test of a fresh install. Videos show the camera view
with an overlay (speed, cte, lap, time, steering and throttle) beside a bird's-eye view of the
track with the car's trail (see :mod:`donkeyrl.report.video`).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from donkeyrl.cli.common import CLIError, non_negative_int, positive_int

log = logging.getLogger(__name__)

#: Most frames written to a GIF; at least every 2nd frame is dropped (10 fps is smooth enough) and
#: more on long drives, so a GIF stays a few megabytes. MP4s keep every frame (20 fps, real time).
GIF_MAX_FRAMES = 300


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drive", help="drive a track with a trained model, the expert or a random driver",
                       description="Drive a track of the built-in simulator with a trained model (--model: "
                       "its own observation and action settings, deterministic actions), the scripted expert "
                       "(pure pursuit on the track geometry, speed from curvature and grip: the human-tuned "
                       "baseline) or a random driver; print laps, lap times, mean |cte| and mean speed, and "
                       "optionally record the first episode as a GIF or an MP4: the camera view with speed, "
                       "cte, lap, steering and throttle, beside a bird's-eye view of the track with the car's "
                       "trail.")
    p.add_argument("--track", default="generated_track",
                   help="catalogue track, DonkeyCar scene name or env id, or procedural-<seed> "
                   "(see `donkeyrl tracks`; default: %(default)s)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--driver", choices=("expert", "random"), default=None,
                     help="who drives when no --model is given (default: expert)")
    who.add_argument("--model", type=Path, default=None, metavar="DIR",
                     help="drive this trained model (model.zip or its directory, with trial_config.json "
                     "beside it), e.g. STUDY/models/champion")
    p.add_argument("--episodes", type=positive_int, default=1, help="episodes to drive (default: %(default)s)")
    p.add_argument("--laps", type=positive_int, default=2,
                   help="end an episode after this many laps on a closed track (default: %(default)s)")
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="step limit per episode (default: chosen from the track length)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the first episode (default: 0)")
    p.add_argument("--domain-randomization", action="store_true",
                   help="random camera appearance (colours, light, texture, camera jitter) per episode")
    p.add_argument("--gif", type=Path, default=None, metavar="PATH",
                   help="record the first episode to this animated GIF (10 fps or less)")
    p.add_argument("--mp4", type=Path, default=None, metavar="PATH",
                   help="record the first episode to this MP4 video (H.264, 20 fps: real time)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (track, laps, lap_times, mean_abs_cte, mean_speed, steps)")
    p.set_defaults(func=run)


def _check_output(flag: str, path: Path | None) -> None:
    """A clear one-line error for an output path that cannot be written, before driving."""
    if path is None:
        return
    if path.is_dir():
        raise CLIError(f"{flag} {path} is a directory; give a file path (e.g. {path / ('drive.' + flag[2:])})")
    if not path.parent.exists():
        raise CLIError(f"{flag} {path}: directory {path.parent} does not exist")
    if not path.parent.is_dir():
        raise CLIError(f"{flag} {path}: {path.parent} is not a directory")


def run(args: argparse.Namespace) -> int:
    for flag, path in (("--gif", args.gif), ("--mp4", args.mp4)):
        _check_output(flag, path)
    record = args.gif is not None or args.mp4 is not None
    if args.model is not None:
        episodes, frames = _drive_model(args, record)
    else:
        episodes, frames = _drive_scripted(args, record)
    if args.gif is not None:
        _write(args.gif, frames, "gif")
    if args.mp4 is not None:
        _write(args.mp4, frames, "mp4")
    _report(args, episodes)
    return 0


def _composer(track: str) -> Any:
    from donkeyrl.report.video import FrameComposer
    from donkeyrl.sim.tracks import get_track

    return FrameComposer(get_track(track))


def _drive_scripted(args: argparse.Namespace, record: bool) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """The expert or a random driver, straight on ``make_env`` (full camera view)."""
    from donkeyrl.envs import make_env
    from donkeyrl.sim.expert import ExpertDriver
    from donkeyrl.sim.tracks import UnknownTrackError

    driver = args.driver or "expert"
    try:
        env = make_env(args.track, throttle_min=-1.0, max_laps=args.laps, max_steps=args.max_steps,
                       domain_randomization=args.domain_randomization)
    except (UnknownTrackError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    base: Any = env.unwrapped
    rng = np.random.default_rng(args.seed)
    episodes: list[dict[str, Any]] = []
    frames: list[np.ndarray] = []
    try:
        for ep in range(args.episodes):
            obs, info = env.reset(seed=args.seed + ep)
            composer = _composer(base.sim.track.name) if record and ep == 0 else None
            if composer is not None:
                frames.append(composer.frame(obs, {}))
            expert = ExpertDriver(base.sim.track) if driver == "expert" else None
            ctes, speeds, steps, reason = [], [], 0, ""
            while True:
                if expert is not None:
                    action = expert.action_for_env(base.sim.telemetry(0))
                else:
                    action = np.array([rng.uniform(-1, 1), rng.uniform(0, 1)], np.float32)
                obs, _, terminated, truncated, info = env.step(action)
                steps += 1
                ctes.append(abs(info["cte"]))
                speeds.append(info["speed"])
                if composer is not None:
                    frames.append(composer.frame(obs, info))
                if terminated or truncated:
                    reason = info.get("terminated_reason") or info.get("truncated_reason", "")
                    break
            episodes.append({"track": info["track"], "driver": driver, "laps": info["lap_count"],
                             "lap_times": info["lap_times"], "mean_abs_cte": float(np.mean(ctes)),
                             "mean_speed": float(np.mean(speeds)), "steps": steps, "end": reason,
                             "progress": info["progress"], "track_length": info["track_length"]})
    finally:
        env.close()
    return episodes, frames


def _drive_model(args: argparse.Namespace, record: bool) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """A trained model on its own wrapper stack (see donkeyrl.report.driving)."""
    from donkeyrl.report.driving import drive_tracks
    from donkeyrl.rl.evaluate import ModelLoadError, load_trained
    from donkeyrl.sim.tracks import UnknownTrackError, get_track

    try:
        track = get_track(args.track).name
    except (UnknownTrackError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    try:
        model, cfg = load_trained(args.model)
    except ModelLoadError as exc:
        raise CLIError(str(exc)) from None
    composer = _composer(track) if record else None
    frames: list[np.ndarray] = []

    def on_frame(_track: str, camera: np.ndarray | None, info: dict[str, Any], _done: bool) -> None:
        assert composer is not None
        frames.append(composer.frame(camera, info))

    episodes = []
    for ep in range(args.episodes):
        film = record and ep == 0
        trace = drive_tracks(model, cfg, [track], max_laps=args.laps, max_steps=lambda _t: args.max_steps,
                             seed=args.seed + ep, start_noise=True,
                             domain_randomization=args.domain_randomization,
                             on_frame=on_frame if film else None, render_tracks=[track] if film else [])[0]
        m = trace.metrics
        progress = trace.steps["progress"]
        episodes.append({"track": track, "driver": "model", "laps": int(m.get("laps", 0)),
                         "lap_times": list(m.get("lap_times", [])),
                         "mean_abs_cte": float(m.get("mean_abs_cte", 0.0)),
                         "mean_speed": float(m.get("mean_speed", 0.0)), "steps": int(m.get("steps", 0)),
                         "end": m.get("end_reason", ""), "progress": progress[-1] if progress else 0.0,
                         "track_length": trace.track_length})
    return episodes, frames


def _write(path: Path, frames: list[np.ndarray], kind: str) -> None:
    from donkeyrl.report.video import VIDEO_FPS, thin_frames, write_gif, write_mp4

    try:
        if kind == "gif":
            kept, every = thin_frames(frames, GIF_MAX_FRAMES, min_every=2)
            write_gif(path, kept, fps=VIDEO_FPS / every)
        else:
            write_mp4(path, frames, fps=VIDEO_FPS)
    except (OSError, RuntimeError) as exc:
        raise CLIError(f"could not write {path}: {exc}") from None


def _report(args: argparse.Namespace, episodes: list[dict[str, Any]]) -> None:
    if args.json:
        first = episodes[0]
        out = {"track": first["track"], "driver": first["driver"], "laps": sum(e["laps"] for e in episodes),
               "lap_times": [t for e in episodes for t in e["lap_times"]],
               "mean_abs_cte": float(np.mean([e["mean_abs_cte"] for e in episodes])),
               "mean_speed": float(np.mean([e["mean_speed"] for e in episodes])),
               "steps": sum(e["steps"] for e in episodes), "episodes": episodes}
        print(json.dumps(out))
        return
    for i, e in enumerate(episodes, 1):
        times = ", ".join(f"{t:.2f}s" for t in e["lap_times"]) or "-"
        print(f"episode {i}: {e['track']} ({e['driver']}) laps {e['laps']} [{times}] "
              f"mean |cte| {e['mean_abs_cte']:.2f} mean speed {e['mean_speed']:.2f} "
              f"steps {e['steps']} progress {e['progress']:.0f}/{e['track_length']:.0f} end: {e['end']}")
    for path in (args.gif, args.mp4):
        if path is not None:
            print(f"wrote {path}")
