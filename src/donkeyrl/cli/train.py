"""``donkeyrl train``: train one agent, save it, evaluate it, write the result file.

Every trial parameter is a flag generated from its declaration in the trial configuration
(:mod:`donkeyrl.rl.config`, :mod:`donkeyrl.rl.algorithms`): ``foo_bar`` <-> ``--foo-bar`` (the rule
the research controller relies on to pass searched parameters; ``tracks`` is ``--track``), with the
field's docstring as help, its default and its inclusive bounds, checked before any work starts.

``--print-schema`` prints the parameters as JSON, for tools (the research controller rejects a
search space naming a parameter the agent lacks or a range outside its bounds)::

    {"schema_version": 1, "agents": ["ppo", "dqn", "sac", "tqc"],
     "action_kinds": {"ppo": ["continuous", "discrete"], ...},
     "params": {"learning_rate": {"flag": "--learning-rate", "type": "float", "default": null,
                                  "agent_defaults": {"ppo": 0.0003, "dqn": 0.001, ...},
                                  "low": 1e-08, "high": 1.0, "log": true, "choices": null,
                                  "nullable": false, "keywords": null, "agents": null,
                                  "section": "algo", "target": "model", "requires": null,
                                  "help": "Optimizer (Adam) learning rate. ..."}, ...}}

``type`` is one of int, float, bool, str, list; ``low``/``high`` are inclusive bounds (null: none);
``agents`` lists the algorithms a parameter applies to (null: all); ``default`` is null where it
depends on the agent (then ``agent_defaults`` has one per agent) or where null means off;
``nullable`` parameters also accept ``none``; ``keywords`` are strings accepted besides numbers
(``auto`` also as ``auto_<number>``).

``--check`` parses and validates everything, builds the env and the model once (no training,
nothing written), prints one line ``ok: ...`` and exits 0; bad input prints one error line and
exits 2 (the research controller appends it to its first trial's command line as a preflight).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from donkeyrl.cli.common import CLIError, bounded, positive_float

#: Help-group titles of the configuration sections.
GROUP_TITLES = {"agent": "agent", "run": "training run", "env": "environment",
                "observation": "observation pipeline", "rewards": "reward", "network": "policy network",
                "algo": "algorithm hyperparameters (default: the agent's measured default)"}


def _bool(text: str) -> bool:
    """argparse type for searched booleans: --foo-bar true|false|1|0|yes|no."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true/false)")


def _value_type(info: Any) -> Any:
    """The argparse type of one declared parameter: bounded numbers, keywords, ``none``."""
    from donkeyrl.rl.schema import is_keyword_value

    if info.type == "bool":
        base: Any = _bool
    elif info.type in ("int", "float"):
        base = bounded(int if info.type == "int" else float, info.low, info.high)
    else:
        base = str

    def convert(text: str) -> Any:
        if info.nullable and text.strip().lower() == "none":
            return None
        if info.keywords and is_keyword_value(text, info.keywords):
            return text
        return base(text)

    convert.__name__ = getattr(base, "__name__", info.type)
    return convert


def _help(info: Any) -> str:
    """The field docstring followed by default, bounds, log hint and the agents it applies to."""
    from donkeyrl.rl.schema import format_number

    notes = []
    if info.agent_defaults:
        notes.append("default: " + ", ".join(f"{a} {v:g}" if isinstance(v, float) else f"{a} {v}"
                                             for a, v in info.agent_defaults.items()))
    elif info.type == "list":
        notes.append(f"default: {' '.join(info.default)}")
    else:
        notes.append(f"default: {'none' if info.default is None else str(info.default).lower()}")
    if info.low is not None or info.high is not None:
        notes.append(f"range [{'-inf' if info.low is None else format_number(info.low)}, "
                     f"{'inf' if info.high is None else format_number(info.high)}]")
    if info.log:
        notes.append("log scale")
    if info.agents is not None:
        notes.append(f"agents: {', '.join(info.agents)}")
    return f"{info.help} ({'; '.join(notes)})".replace("%", "%%")


def _add_param(group: argparse._ArgumentGroup, info: Any) -> None:
    kwargs: dict[str, Any] = {"dest": info.name, "default": argparse.SUPPRESS, "help": _help(info),
                              "type": _value_type(info)}
    flags = [info.flag]
    if info.type == "list":
        kwargs["nargs"] = "+"
        kwargs["metavar"] = info.metavar or "VALUE"
        alias = "--" + info.name.replace("_", "-")
        if alias != info.flag:
            flags.append(alias)  # the research rule: name foo_bar <-> --foo-bar
    elif info.type == "bool":
        kwargs.update(nargs="?", const=True, metavar="BOOL")
    elif info.choices is not None:
        kwargs["choices"] = info.choices
        kwargs["metavar"] = "{" + ",".join(map(str, info.choices)) + "}"
    elif info.metavar:
        kwargs["metavar"] = info.metavar
    group.add_argument(*flags, **kwargs)


def register(subparsers: Any) -> None:
    from donkeyrl.rl.config import param_infos

    p = subparsers.add_parser(
        "train", help="train one RL agent, save it, evaluate it and write a result file",
        description="Train a Stable-Baselines3 agent to drive from pixels, save DIR/model.zip, "
        "trial_config.json and curve.jsonl, evaluate it with the same wrappers and write the result JSON.")
    _one_line_errors(p)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for info in param_infos().values():
        if info.section not in groups:
            groups[info.section] = p.add_argument_group(GROUP_TITLES[info.section])
        _add_param(groups[info.section], info)
    e = groups["env"]
    e.add_argument("--env", metavar="ID", help="gym-donkeycar env id to train on, e.g. "
                   "donkey-generated-roads-v0 (instead of --track)")
    r = groups["rewards"]
    r.add_argument("--reward-shaping", action="store_true", help="same as --reward speed")
    o = groups["observation"]
    o.add_argument("--raw-obs", action="store_true",
                   help="raw 120x160x3 frames, no crop/stack, NatureCNN (overrides the observation options)")
    out = p.add_argument_group("output")
    out.add_argument("--save-dir", help="directory for model.zip + trial_config.json + curve.jsonl "
                     "(default: models/run-<timestamp>)")
    out.add_argument("--result-file", help="write the result JSON here (a file path; refused up front "
                     "if it is a directory)")
    out.add_argument("--progress-interval", type=positive_float, default=10.0,
                     help="seconds between progress lines and learning-curve points (default: 10)")
    out.add_argument("--tensorboard", metavar="DIR",
                     help="log SB3's rollout/ and train/ metrics, driving/ metrics at each progress line "
                     "and eval/ metrics of the final evaluation to DIR/<save dir name> (default: off)")
    act = p.add_argument_group("actions instead of training")
    act.add_argument("--check", action="store_true",
                     help="validate everything, build the env and the model once, print 'ok: ...' and "
                     "exit 0 (2 on bad input); trains and writes nothing")
    act.add_argument("--print-schema", action="store_true",
                     help="print every trial parameter (flag, type, default, bounds, agents, help) as "
                     "JSON and exit")
    p.set_defaults(func=run)


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Makes every argument error of ``parser`` one line (no usage block), exit code 2.

    Also refuses unknown arguments itself: otherwise the top-level parser reports them, with its
    usage block. (Instance attributes: argparse offers no per-subparser hook for either.)
    """
    def error(message: str) -> NoReturn:
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)

    parse_known_args = parser.parse_known_args

    def strict_parse_known_args(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = parse_known_args(args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    parser.error = error  # type: ignore[method-assign]
    parser.parse_known_args = strict_parse_known_args  # type: ignore[method-assign,assignment]


def config_from_args(args: argparse.Namespace) -> Any:
    """TrialConfig from parsed flags; CLIError on an invalid combination."""
    from donkeyrl.rl.config import TrialConfig, param_infos

    infos = param_infos()
    flat = {k: v for k, v in vars(args).items() if k in infos}
    if getattr(args, "env", None):
        if "tracks" in flat:
            raise CLIError("give either --env or --track, not both")
        flat["tracks"] = (args.env,)
    if getattr(args, "reward_shaping", False):
        if flat.get("reward", "speed") != "speed":
            raise CLIError(f"--reward-shaping means --reward speed, but --reward {flat['reward']} was given")
        flat["reward"] = "speed"
    if getattr(args, "raw_obs", False):
        flat.update(obs_width=160, obs_height=120, grey=False, crop_top=0.0, frame_stack=1,
                    policy_net="nature")
    try:
        return TrialConfig(**flat)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _check_outputs(args: argparse.Namespace, cfg: Any, save_dir: str, *, create: bool) -> None:
    """Every output path usable, before any work; creates the save dir (and result folder) if asked."""
    from donkeyrl.rl.agents import resolve_device
    from donkeyrl.rl.train import check_result_file, check_save_dir, check_writable_dir

    try:
        if create:
            check_save_dir(save_dir)
        else:
            check_writable_dir(save_dir, "save dir")
        if args.result_file:
            check_result_file(args.result_file)
            if create:
                Path(args.result_file).parent.mkdir(parents=True, exist_ok=True)
        if args.tensorboard:
            check_writable_dir(args.tensorboard, "tensorboard dir")
        resolve_device(cfg.run.device)
    except (ValueError, OSError) as exc:
        raise CLIError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    if args.print_schema:
        from donkeyrl.rl.config import schema

        print(json.dumps(schema(), indent=2))
        return 0
    cfg = config_from_args(args)
    save_dir = args.save_dir or f"models/run-{time.strftime('%Y%m%d-%H%M%S')}"
    _check_outputs(args, cfg, save_dir, create=not args.check)
    if cfg.init_model and not args.check:
        from donkeyrl.rl.finetune import InitModelError, load_init

        try:
            load_init(cfg.init_model, cfg)
        except InitModelError as exc:
            raise CLIError(str(exc)) from None
    if args.check:
        from donkeyrl.rl.train import check_trial, failure_message

        try:
            line = check_trial(cfg)
        except Exception as exc:
            raise CLIError(f"check failed: {failure_message(exc)}") from None
        print(f"ok: {line}")
        return 0
    from donkeyrl.rl.train import run_trial

    print(f"training {cfg.agent} on {', '.join(cfg.tracks)} for {cfg.timesteps} steps "
          f"-> {save_dir}", flush=True)
    result = run_trial(cfg, save_dir, report=lambda line: print(line, flush=True),
                       progress_interval_sec=args.progress_interval, tensorboard_dir=args.tensorboard)
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
            f"driving score {fmt('driving_score', '.1f')}  race score {fmt('race_score', '.1f')}  "
            f"laps {fmt('laps', '.1f')}  "
            f"best lap {fmt('best_lap_time', '.2f')} s  {fmt('train_steps_per_sec', '.0f')} steps/s  "
            f"model {result.get('model_path')}")
