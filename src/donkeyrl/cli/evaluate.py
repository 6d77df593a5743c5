"""``donkeyrl evaluate``: evaluate a saved model per track, with the generalisation gap.

The env and wrappers are rebuilt from the ``trial_config.json`` saved beside ``model.zip``, so the
evaluation sees exactly what training saw, on whichever tracks are asked for.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from donkeyrl.cli.common import (CLIError, add_simulator_arguments, non_negative_int, positive_int,
                                 simulator_overrides)

JSON_KEYS = ("track", "mean_reward", "std_reward", "episode_rewards", "laps", "best_lap_time",
             "mean_abs_cte", "completion", "driving_score")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate a saved model on training and held-out tracks",
        description="Load DIR/model.zip, rebuild its env and wrappers from trial_config.json, and "
        "evaluate it per track: reward, laps, lap time, |cte|, completion, driving score, the "
        "generalisation gap to the training tracks, and the expert driver's lap time.")
    p.add_argument("--model", required=True, metavar="PATH", help="model.zip (or its directory)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--env", metavar="ID", help="gym-donkeycar env id to evaluate on")
    where.add_argument("--track", nargs="+", metavar="NAME",
                       help="tracks to evaluate on (default: the training tracks + the held-out set)")
    where.add_argument("--set", choices=("validation", "test"), dest="track_set",
                       help="race the model on a whole track set (one race of a standing lap + a timed "
                       "flying lap per track) and print the head-to-head table against the scripted "
                       "expert (and --baseline); see docs/evaluation.md")
    p.add_argument("--episodes", type=positive_int, default=3, help="episodes per track (default: 3)")
    p.add_argument("--seed", type=non_negative_int, help="evaluation seed (default: the model's)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    add_simulator_arguments(p, defaults=False)
    p.add_argument("--max-laps", type=positive_int, default=2,
                   help="end each episode after this many laps, so long tracks evaluate quickly; "
                   "2 gives a flying lap after the standing start (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per track instead of a table (with --set: the "
                   "head-to-head document)")
    p.add_argument("--baseline", metavar="PATH",
                   help="with --set: also race this model (e.g. the baseline trained for a study) "
                   "and show it as the 'baseline' column")
    p.add_argument("--out", metavar="DIR",
                   help="with --set: also write head_to_head.json and head_to_head.txt into DIR")
    p.set_defaults(func=run)


def default_tracks(training: tuple[str, ...]) -> list[str]:
    """The training tracks followed by every held-out track not trained on."""
    try:
        from donkeyrl.sim.tracks import HELDOUT_TRACKS
    except ImportError:
        HELDOUT_TRACKS = ()
    return list(training) + [t for t in HELDOUT_TRACKS if t not in training]


def run(args: argparse.Namespace) -> int:
    from donkeyrl.rl.evaluate import ModelLoadError, evaluate, expert_lap_time, load_trained

    try:
        model, cfg = load_trained(args.model)
    except ModelLoadError as exc:
        raise CLIError(str(exc)) from None
    cfg = cfg.replace(**simulator_overrides(args))
    if args.track_set:
        return run_set(args, model, cfg)
    if args.baseline or args.out:
        raise CLIError("--baseline and --out need --set validation|test")
    tracks = args.track or ([args.env] if args.env else default_tracks(cfg.tracks))
    rows = []
    for track in tracks:
        try:
            ev = evaluate(model, cfg.replace(tracks=(track,), max_laps=args.max_laps),
                          episodes=args.episodes,
                          seed=args.seed, deterministic=not args.stochastic)
        except ValueError as exc:  # unknown track names surface here
            raise CLIError(f"cannot evaluate on {track!r}: {exc}") from None
        row = {k: ev.get(k) for k in JSON_KEYS if k != "track"}
        row = {"track": track, **row, "trained_on": track in cfg.tracks,
               "expert_lap_time": expert_lap_time(track),
               "reward_hacking_flag": ev.get("reward_hacking_flag", False)}
        rows.append(row)
    add_generalisation_gap(rows)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(table(rows, args.model, args.episodes))
    return 0


def run_set(args: argparse.Namespace, model: Any, cfg: Any) -> int:
    """``--set``: race the model (and ``--baseline``) on every track of the set, head-to-head."""
    from donkeyrl.rl import headtohead
    from donkeyrl.rl.evaluate import ModelLoadError, load_trained
    from donkeyrl.rl.race import race_tracks
    from donkeyrl.sim.tracksets import expand_set

    if args.out:
        try:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            probe = Path(args.out) / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise CLIError(f"cannot write to --out {args.out}: {exc.strerror or exc}") from None
    tracks = list(expand_set(args.track_set))
    drivers = {"model": race_tracks(model, cfg, tracks, seed=args.seed,
                                    deterministic=not args.stochastic)}
    desc = {"model": f"{args.model} ({cfg.agent}, trained on {', '.join(cfg.tracks)})"}
    if args.baseline:
        try:
            base_model, base_cfg = load_trained(args.baseline)
        except ModelLoadError as exc:
            raise CLIError(f"--baseline: {exc}") from None
        base_cfg = base_cfg.replace(**simulator_overrides(args))
        drivers["baseline"] = race_tracks(base_model, base_cfg, tracks, seed=args.seed,
                                          deterministic=not args.stochastic)
        desc["baseline"] = f"{args.baseline} ({base_cfg.agent}, trained on {', '.join(base_cfg.tracks)})"
    doc = headtohead.compare(drivers, tracks, args.track_set, desc)
    if args.out:
        headtohead.write(doc, args.out)
    print(json.dumps(doc) if args.json else headtohead.format_table(doc))
    return 0


def add_generalisation_gap(rows: list[dict[str, Any]]) -> None:
    """gap = mean over the training tracks - value on each unseen track (None if no baseline).

    ``generalisation_gap`` uses the mean reward (what the spec asks for); progress rewards grow with
    a track's length, so ``driving_score_gap`` (0..100 on every track) is the fairer comparison.
    """
    for key, gap_key in (("mean_reward", "generalisation_gap"), ("driving_score", "driving_score_gap")):
        trained = [r[key] for r in rows if r["trained_on"] and r[key] is not None]
        base = sum(trained) / len(trained) if trained else None
        for r in rows:
            r[gap_key] = None if base is None or r["trained_on"] or r[key] is None else base - r[key]


def table(rows: list[dict[str, Any]], model: str, episodes: int) -> str:
    """A fixed-width table, one row per track."""
    def f(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    head = (f"{'track':<22}{'set':<7}{'reward':>16}{'laps':>6}{'best lap':>10}{'expert':>8}"
            f"{'|cte|':>7}{'compl.':>8}{'score':>7}{'gap':>9}{'score gap':>10}")
    lines = [f"model {model}, {episodes} episode(s) per track", head, "-" * len(head)]
    for r in rows:
        reward = f"{r['mean_reward']:.2f}+/-{r['std_reward']:.2f}"
        lines.append(f"{r['track']:<22}{'train' if r['trained_on'] else 'unseen':<7}{reward:>16}"
                     f"{f(r['laps'], '.1f'):>6}{f(r['best_lap_time'], '.2f'):>10}"
                     f"{f(r['expert_lap_time'], '.2f'):>8}{f(r['mean_abs_cte'], '.2f'):>7}"
                     f"{f(r['completion'], '.2f'):>8}{f(r['driving_score'], '.1f'):>7}"
                     f"{f(r['generalisation_gap'], '.2f'):>9}{f(r['driving_score_gap'], '.1f'):>10}"
                     + ("  (reward hacking suspected)" if r["reward_hacking_flag"] else ""))
    lines.append("gap = mean reward on the training tracks - reward on that unseen track; score gap: "
                 "the same for driving_score (comparable across track lengths)")
    return "\n".join(lines)
