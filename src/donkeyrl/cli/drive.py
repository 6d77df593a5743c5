"""``donkeyrl drive``: drive a track with the scripted expert or a random driver.

Useful to see a track (``--gif``), to get the expert's reference lap times, and as a smoke test of
a fresh install.
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
#: more on long drives, so a GIF stays around a megabyte.
GIF_MAX_FRAMES = 300


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drive", help="drive a track with the expert or a random driver",
                       description="Drive a track of the built-in simulator with the scripted expert "
                       "(pure pursuit on the track geometry, speed from curvature and grip: the "
                       "human-tuned baseline) or a random driver, print laps, lap times, mean |cte| "
                       "and mean speed, and optionally write an animated GIF of the camera view.")
    p.add_argument("--track", default="generated_track",
                   help="catalogue track, DonkeyCar scene name or env id, or procedural-<seed> "
                   "(see `donkeyrl tracks`; default: %(default)s)")
    p.add_argument("--driver", choices=("expert", "random"), default="expert",
                   help="who drives (default: %(default)s)")
    p.add_argument("--episodes", type=positive_int, default=1, help="episodes to drive (default: %(default)s)")
    p.add_argument("--laps", type=positive_int, default=2,
                   help="end an episode after this many laps on a closed track (default: %(default)s)")
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="step limit per episode (default: chosen from the track length)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the first episode (default: 0)")
    p.add_argument("--domain-randomization", action="store_true",
                   help="random camera appearance (colours, light, texture, camera jitter) per episode")
    p.add_argument("--gif", type=Path, default=None, metavar="PATH",
                   help="write the first episode's camera view, with a speed/cte/lap overlay, to this GIF")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (track, laps, lap_times, mean_abs_cte, mean_speed, steps)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from donkeyrl.envs import make_env
    from donkeyrl.sim.expert import ExpertDriver
    from donkeyrl.sim.tracks import UnknownTrackError

    if args.gif is not None and not args.gif.parent.exists():
        raise CLIError(f"--gif {args.gif}: directory {args.gif.parent} does not exist")
    try:
        env = make_env(args.track, throttle_min=-1.0, max_laps=args.laps, max_steps=args.max_steps,
                       domain_randomization=args.domain_randomization)
    except (UnknownTrackError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    base = env.unwrapped
    rng = np.random.default_rng(args.seed)
    episodes: list[dict[str, Any]] = []
    frames: list[np.ndarray] = []
    try:
        for ep in range(args.episodes):
            obs, info = env.reset(seed=args.seed + ep)
            expert = ExpertDriver(base.sim.track) if args.driver == "expert" else None
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
                if ep == 0 and args.gif is not None:
                    frames.append(_overlay(obs, info))
                if terminated or truncated:
                    reason = info.get("terminated_reason") or info.get("truncated_reason", "")
                    break
            episodes.append({"track": info["track"], "laps": info["lap_count"], "lap_times": info["lap_times"],
                             "mean_abs_cte": float(np.mean(ctes)), "mean_speed": float(np.mean(speeds)),
                             "steps": steps, "end": reason, "progress": info["progress"],
                             "track_length": info["track_length"]})
    finally:
        env.close()
    if args.gif is not None:
        _write_gif(args.gif, frames)
    _report(args, episodes)
    return 0


def _overlay(obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """The frame with speed (telemetry units), cte and lap written in its top-left corner."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(obs if obs.shape[-1] == 3 else obs[..., 0]).convert("RGB")
    draw = ImageDraw.Draw(img)
    text = f"v {info['speed']:.1f} cte {info['cte']:+.2f} lap {info['lap_count']}"
    draw.rectangle((0, 0, 6 * len(text) + 4, 12), fill=(0, 0, 0))
    draw.text((2, 1), text, fill=(255, 255, 255))
    return np.asarray(img)


def _write_gif(path: Path, frames: list[np.ndarray]) -> None:
    import imageio.v2 as imageio

    every = max(2, -(-len(frames) // GIF_MAX_FRAMES))
    kept = frames[::every]
    try:
        imageio.mimsave(path, kept, duration=0.05 * every, loop=0)
    except OSError as exc:
        raise CLIError(f"could not write {path}: {exc}") from None
    log.info("wrote %d frames to %s", len(kept), path)


def _report(args: argparse.Namespace, episodes: list[dict[str, Any]]) -> None:
    if args.json:
        first = episodes[0]
        out = {"track": first["track"], "laps": sum(e["laps"] for e in episodes),
               "lap_times": [t for e in episodes for t in e["lap_times"]],
               "mean_abs_cte": float(np.mean([e["mean_abs_cte"] for e in episodes])),
               "mean_speed": float(np.mean([e["mean_speed"] for e in episodes])),
               "steps": sum(e["steps"] for e in episodes), "episodes": episodes}
        print(json.dumps(out))
        return
    for i, e in enumerate(episodes, 1):
        times = ", ".join(f"{t:.2f}s" for t in e["lap_times"]) or "-"
        print(f"episode {i}: {e['track']} ({args.driver}) laps {e['laps']} [{times}] "
              f"mean |cte| {e['mean_abs_cte']:.2f} mean speed {e['mean_speed']:.2f} "
              f"steps {e['steps']} progress {e['progress']:.0f}/{e['track_length']:.0f} end: {e['end']}")
    if args.gif is not None:
        print(f"wrote {args.gif}")
