"""``donkeyrl train``: train one agent, save it, evaluate it, write the result file.

Every TrialConfig field is a flag (``foo_bar`` <-> ``--foo-bar``), which is the rule the research
controller relies on to pass searched parameters.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from donkeyrl.cli.common import (CLIError, add_simulator_arguments, non_negative_float, non_negative_int,
                                 positive_float, positive_int)


def _ent_coef(text: str) -> float | str:
    if text == "auto" or text.startswith("auto_"):
        return text
    return non_negative_float(text)


def _bool(text: str) -> bool:
    """argparse type for searched booleans: --foo-bar true|false|1|0|yes|no."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true/false)")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train one RL agent, save it, evaluate it and write a result file",
        description="Train a Stable-Baselines3 agent to drive from pixels, save DIR/model.zip and "
        "trial_config.json, evaluate it with the same wrappers and write the result JSON.")
    g = p.add_argument_group("agent")
    g.add_argument("--agent", choices=("ppo", "dqn", "sac"), default="ppo",
                   help="RL algorithm (default: ppo)")
    g.add_argument("--actions", choices=("auto", "continuous", "discrete"), default="auto",
                   help="action space: auto = dqn discrete, ppo/sac continuous (default: auto)")
    g.add_argument("--timesteps", type=_int, default=50_000,
                   help="total environment steps to train (default: 50000)")
    g.add_argument("--seed", type=_int, default=0, help="random seed (default: 0)")
    g.add_argument("--n-steer", type=_int, default=7, help="steering bins of the discrete grid, >= 2")
    g.add_argument("--n-throttle", type=_int, default=3, help="throttle bins of the discrete grid, >= 1")
    h = p.add_argument_group("hyperparameters (default: the agent's measured default)")
    h.add_argument("--learning-rate", type=positive_float, help="optimizer learning rate")
    h.add_argument("--gamma", type=positive_float, help="discount factor in (0, 1]")
    h.add_argument("--n-steps", type=positive_int, help="PPO rollout steps per env")
    h.add_argument("--batch-size", type=positive_int, help="minibatch size")
    h.add_argument("--n-epochs", type=positive_int, help="PPO epochs per rollout")
    h.add_argument("--gae-lambda", type=non_negative_float, help="PPO GAE lambda")
    h.add_argument("--clip-range", type=positive_float, help="PPO clip range")
    h.add_argument("--ent-coef", type=_ent_coef, help="entropy coefficient (SAC: also 'auto')")
    h.add_argument("--n-envs", type=positive_int, help="parallel environments")
    h.add_argument("--vec-env", choices=("dummy", "subproc"), default="dummy",
                   help="vectorisation: one process (dummy, default) or one per env (subproc)")
    h.add_argument("--torch-threads", type=positive_int, default=1,
                   help="torch intra-op threads (default: 1, measured fastest on a shared 2-core CPU)")
    h.add_argument("--buffer-size", type=positive_int, help="DQN/SAC replay buffer size")
    h.add_argument("--learning-starts", type=non_negative_int, help="DQN/SAC steps before learning")
    h.add_argument("--train-freq", type=positive_int, help="DQN/SAC env steps between updates")
    h.add_argument("--gradient-steps", type=positive_int, help="DQN/SAC gradient steps per update")
    h.add_argument("--tau", type=positive_float, help="SAC target soft-update rate")
    h.add_argument("--exploration-fraction", type=positive_float, help="DQN epsilon decay fraction")
    h.add_argument("--exploration-final-eps", type=non_negative_float, help="DQN final epsilon")
    h.add_argument("--target-update-interval", type=positive_int, help="DQN target update interval")
    h.add_argument("--net-width", type=positive_int, default=64, help="units per hidden layer (default: 64)")
    h.add_argument("--net-depth", type=non_negative_int, default=2, help="hidden layers (default: 2)")
    h.add_argument("--features-dim", type=positive_int, default=128,
                   help="CNN features size (default: 128)")
    e = p.add_argument_group("environment")
    where = e.add_mutually_exclusive_group()
    where.add_argument("--env", metavar="ID", help="gym-donkeycar env id, e.g. donkey-generated-roads-v0")
    where.add_argument("--track", nargs="+", metavar="NAME",
                       help="training track(s); several = one sampled per episode "
                       "(default: generated_track)")
    add_simulator_arguments(e)
    e.add_argument("--max-cte", type=positive_float, default=8.0,
                   help="episode ends beyond this |cte| (sim units, default: 8)")
    e.add_argument("--steer-limit", type=positive_float, default=1.0, help="steering limit (default: 1)")
    e.add_argument("--throttle-min", type=_float, default=0.2,
                   help="minimum throttle, keeps the car moving (default: 0.2)")
    e.add_argument("--throttle-max", type=_float, default=1.0, help="maximum throttle (default: 1)")
    e.add_argument("--domain-randomization", type=_bool, nargs="?", const=True, default=False,
                   metavar="BOOL", help="randomise appearance on every reset (bare flag = true)")
    e.add_argument("--steer-rate-limit", type=positive_float,
                   help="max steering change per step, fraction of the range, e.g. 0.15 (default: off)")
    e.add_argument("--max-steps", type=positive_int, help="episode step limit (default: from track length)")
    e.add_argument("--max-laps", type=positive_int,
                   help="end an episode after this many laps (default: no lap limit)")
    r = p.add_argument_group("reward")
    r.add_argument("--reward", choices=("donkey", "speed", "progress"), default="progress",
                   help="donkey (simulator's own), speed (speed*(1-|cte|/max_cte)) or progress "
                   "(net progress x centring, crash penalty; default)")
    r.add_argument("--reward-shaping", action="store_true", help="same as --reward speed")
    r.add_argument("--crash-penalty", type=non_negative_float, default=1.0,
                   help="penalty on crash / short lap (default: 1)")
    r.add_argument("--min-lap-time", type=non_negative_float,
                   help="laps faster than this (s) end the episode (default: track length / 60 u/s)")
    o = p.add_argument_group("observation pipeline")
    o.add_argument("--obs-width", type=positive_int, default=64, help="image width (default: 64)")
    o.add_argument("--obs-height", type=positive_int, default=32, help="image height after crop (default: 32)")
    o.add_argument("--grey", type=_bool, nargs="?", const=True, default=True, metavar="BOOL",
                   help="grey-scale image; --grey false for RGB (default: true)")
    o.add_argument("--crop-top", type=non_negative_float, default=0.4,
                   help="fraction of the frame's top rows (sky) removed (default: 0.4)")
    o.add_argument("--frame-stack", type=positive_int, default=2, help="frames stacked (default: 2)")
    o.add_argument("--policy-net", choices=("compact", "nature"), default="compact",
                   help="CNN: compact (small frames, default) or nature (SB3 NatureCNN)")
    o.add_argument("--raw-obs", action="store_true",
                   help="raw 120x160x3 frames, no crop/stack, NatureCNN (overrides the above)")
    out = p.add_argument_group("output")
    out.add_argument("--save-dir", help="directory for model.zip + trial_config.json "
                     "(default: models/run-<timestamp>)")
    out.add_argument("--result-file", help="write the result JSON here")
    out.add_argument("--eval-episodes", type=non_negative_int, default=5,
                     help="evaluation episodes after training (default: 5)")
    out.add_argument("--progress-interval", type=positive_float, default=10.0,
                     help="seconds between progress lines (default: 10)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """TrialConfig from parsed flags; CLIError on an invalid combination."""
    from donkeyrl.rl.config import TrialConfig

    fields = set(TrialConfig.__dataclass_fields__)
    values = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    values["tracks"] = tuple(args.track) if args.track else (args.env,) if args.env else ("generated_track",)
    if args.reward_shaping:
        values["reward"] = "speed"
    if args.raw_obs:
        values.update(obs_width=160, obs_height=120, grey=False, crop_top=0.0, frame_stack=1,
                      policy_net="nature")
    try:
        return TrialConfig(**values)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from donkeyrl.rl.train import check_save_dir, run_trial

    cfg = config_from_args(args)
    save_dir = args.save_dir or f"models/run-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        check_save_dir(save_dir)
        if args.result_file:
            Path(args.result_file).parent.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from None
    print(f"training {cfg.agent} on {', '.join(cfg.tracks)} for {cfg.timesteps} steps "
          f"-> {save_dir}", flush=True)
    result = run_trial(cfg, save_dir, report=lambda line: print(line, flush=True),
                       progress_interval_sec=args.progress_interval)
    if args.result_file:
        Path(args.result_file).write_text(json.dumps(result, indent=2) + "\n")
    if result["run_status"] != "ok":
        print(f"donkeyrl train: {result['run_status']}: {result['message']}", file=sys.stderr)
        return 1
    print(summary_line(result))
    if result.get("reward_hacking_flag"):
        print(f"warning: reward hacking suspected: {result['reward_hacking_reasons']}")
    return 0


def summary_line(result: dict[str, Any]) -> str:
    """One line with the headline numbers of a finished trial (missing ones shown as '-')."""
    def fmt(key: str, spec: str) -> str:
        value = result.get(key)
        return "-" if value is None else format(value, spec)

    return (f"mean reward {fmt('mean_reward', '.3f')} +/- {fmt('std_reward', '.3f')}  "
            f"driving score {fmt('driving_score', '.1f')}  laps {fmt('laps', '.1f')}  "
            f"best lap {fmt('best_lap_time', '.2f')} s  {fmt('train_steps_per_sec', '.0f')} steps/s  "
            f"model {result.get('model_path')}")
