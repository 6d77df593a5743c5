"""A fast stand-in for ``donkeyrl train`` used by the research controller tests.

It accepts the train flags the controller passes, derives a deterministic objective from the
params, writes a small "model" and the result file. Behaviour per trial number (taken from
``--save-dir .../trial-N``) is chosen with ``--plan N=MODE,M=MODE`` or for every trial with
``--mode MODE``:

ok (default) | hang (sleep forever) | stubborn (hang, ignoring SIGTERM) | crash (exit 3, no
result) | garbage (non-JSON result) | nan (NaN objective) | noresult (exit 0, no result) |
diverged (trainer-reported failure) | hack (reward_hacking_flag) | spawn (leave a sleeping
grandchild in the process group, pid written to <save-dir>/grandchild.pid, then finish ok) |
spawnhang (spawn, then hang) | workers (two sleeping children, like --vec-env subproc, pids in
<save-dir>/workers.pid, then hang) | escape (a grandchild in a session of its own, pid in
<save-dir>/escapee.pid, then hang) | nonutf8 (result file not UTF-8) | deep (result nested
100000 levels) | elsewhere (model_path names a file outside the trial dir) | notzip (the model
is not a zip) | huge (objective 1e308) | enospc (prints "No space left on device", exit 1) |
wrongtypes (result with metrics/params of the wrong JSON types) | hugeint (a 400-digit integer)

The result carries ``race_score`` (the default objective), ``mean_reward`` and ``driving_score``,
all equal to the trial's value, and the two Pareto objectives
(``validation_lap_time_ratio_penalised``, ``validation_mean_abs_cte``), which trade off along the
learning rate (see ``pareto_values``).

``--rewards 50,80,...`` sets trial N's reward to the N-th value; ``--sleep S`` makes a trial
take S seconds (with ``DONKEYRL_CHECKPOINT_FRACTIONS`` set, as by a study with ``--prune``, it
writes progress.jsonl checkpoints on the way, like the real trainer: see ``checkpoints``);
``--fail-file PATH`` makes trials crash while PATH exists; ``--model-kb K`` pads
the model to K KiB (fills disks in the soak benchmark); ``--hold S`` makes spawnhang / workers /
escape finish ok after S seconds, their children left running; ``--lenient`` accepts any other
``--flag VALUE`` (benchmarks on the full default spaces).

The trainer contract of ``donkeyrl train`` (research/preflight.py): ``--print-schema`` prints
the parameter schema and ``--check`` validates the arguments and exits 0 ("ok: ...") without
training; bad values exit 2 with one line. ``--contract none`` (first argument) hides both
flags, like a trainer that does not implement them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time


def objective(args: argparse.Namespace) -> float:
    """Deterministic function of the params, maximal near lr=1e-3, n_steer=5 (about -2..1.1;
    the result reports 50 + 10 x this, inside the driving score's 0..100)."""
    lr = args.learning_rate or 1e-3
    score = 1.0 - (math.log10(lr) + 3.0) ** 2 / 4.0
    if args.n_steer is not None:
        score -= ((args.n_steer - 5) / 6.0) ** 2
    if args.timesteps is not None:
        score += 0.1 * args.timesteps / 20000
    return score


def pareto_values(args: argparse.Namespace) -> tuple[float, float]:
    """(lap time ratio, mean |cte|): a lower learning rate drives slower and more centred; any
    n_steer other than 5 costs both (the front is n_steer = 5 across learning rates)."""
    lr = args.learning_rate or 1e-3
    t = min(max((math.log10(lr) + 5.0) / 4.0, 0.0), 1.0)
    off = ((args.n_steer - 5) / 6.0) ** 2 if args.n_steer is not None else 0.0
    return 1.0 + 0.5 * t + off, 0.2 + 0.5 * (1.0 - t) + off


SCHEMA = {
    "agents": ["ppo", "dqn", "sac"],
    "params": {
        "learning_rate": {"flag": "--learning-rate", "type": "float", "default": 3e-4,
                          "low": 1e-8, "high": 1.0, "choices": None, "agents": None, "help": "lr"},
        "gamma": {"flag": "--gamma", "type": "float", "default": 0.99, "low": 0.0, "high": 1.0,
                  "choices": None, "agents": None, "help": "discount"},
        "timesteps": {"flag": "--timesteps", "type": "int", "default": 50000, "low": 1,
                      "high": 10**9, "choices": None, "agents": None, "help": "steps"},
        "n_steer": {"flag": "--n-steer", "type": "int", "default": 7, "low": 2, "high": 64,
                    "choices": None, "agents": ["ppo", "dqn"], "help": "steering bins"},
        "n_throttle": {"flag": "--n-throttle", "type": "int", "default": 3, "low": 1, "high": 16,
                       "choices": None, "agents": ["ppo", "dqn"], "help": "throttle bins"},
        "n_steps": {"flag": "--n-steps", "type": "int", "default": 128, "low": 8, "high": 8192,
                    "choices": None, "agents": ["ppo"], "help": "rollout"},
        "batch_size": {"flag": "--batch-size", "type": "int", "default": 64, "low": 8,
                       "high": 4096, "choices": None, "agents": None, "help": "batch"},
        "ent_coef": {"flag": "--ent-coef", "type": "float", "default": 0.0, "low": 0.0,
                     "high": 1.0, "choices": None, "agents": ["ppo", "sac"], "help": "entropy"},
        "actions": {"flag": "--actions", "type": "str", "default": "auto", "low": None,
                    "high": None, "choices": ["auto", "discrete", "continuous"], "agents": None,
                    "help": "action space"},
    },
    "result_fields": ["mean_reward", "std_reward", "driving_score", "completion", "laps",
                      "mean_abs_cte", "race_score", "validation_lap_time_ratio_penalised",
                      "validation_mean_abs_cte"],
}


def bounded(kind: type, name: str):
    """argparse type enforcing the schema's range (like the real trainer's validation)."""
    spec = SCHEMA["params"][name]

    def convert(text: str):
        value = kind(text)
        if not spec["low"] <= value <= spec["high"]:
            raise argparse.ArgumentTypeError(f"{name}={value} must be in [{spec['low']}, "
                                             f"{spec['high']}]")
        return value
    return convert


def typed(text: str):
    """A command-line value as the number or boolean it spells, else the text."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def write_model(path: str, trial: int, kb: int) -> None:
    """A real (tiny) zip archive, like a saved SB3 model, padded to ``kb`` KiB."""
    import zipfile
    with zipfile.ZipFile(path + ".part", "w") as zf:
        zf.writestr("data", f"fake model of trial {trial}")
        if kb:
            zf.writestr("pad", os.urandom(kb * 1024))
    os.replace(path + ".part", path)


def trial_value(args: argparse.Namespace, trial: int) -> float:
    """The trial's objective: its --rewards entry, else 50 + 10 x ``objective``."""
    if args.rewards:
        return float(args.rewards.split(",")[trial - 1])
    return 50.0 + 10.0 * objective(args)


def checkpoints(args: argparse.Namespace, trial: int, mode: str) -> None:
    """Spend ``--sleep`` seconds; with DONKEYRL_CHECKPOINT_FRACTIONS (the trainer's progress-file
    contract, rl/checkpoints.py) write a checkpoint at each fraction on the way: race_score =
    value x fraction (so trials rank at every rung as they do at the end), model.zip saved."""
    total = args.sleep or 0.0
    text = os.environ.get("DONKEYRL_CHECKPOINT_FRACTIONS", "none")
    fractions = [] if text in ("", "none") else sorted(float(f) for f in text.split(","))
    done = 0.0
    if fractions and mode not in ("crash", "noresult", "enospc"):
        os.makedirs(args.save_dir, exist_ok=True)
        value, steps = trial_value(args, trial), args.timesteps or 1000
        for f in fractions:
            time.sleep(max(total * f - done, 0.0))
            done = total * f
            write_model(os.path.join(args.save_dir, "model.zip"), trial, 0)
            with open(os.path.join(args.save_dir, "progress.jsonl"), "a") as fh:
                fh.write(json.dumps({"steps": int(steps * f), "fraction": f,
                                     "race_score": value * f, "validation_lap_rate": f,
                                     "time_sec": done}) + "\n")
    time.sleep(max(total - done, 0.0))


def main() -> int:
    contract = sys.argv[1:3] != ["--contract", "none"]
    p = argparse.ArgumentParser()
    p.add_argument("--contract", default="full")
    for flag in ("--agent", "--save-dir", "--result-file", "--reward", "--plan", "--mode",
                 "--rewards", "--fail-file", "--actions", "--tensorboard", "--init-model"):
        p.add_argument(flag)
    p.add_argument("--track", nargs="+")
    p.add_argument("--tracks", nargs="+")
    for flag in ("--eval-episodes", "--seed", "--model-kb"):
        p.add_argument(flag, type=int)
    for name in ("timesteps", "n_steer", "n_throttle", "n_steps", "batch_size"):
        p.add_argument("--" + name.replace("_", "-"), type=bounded(int, name))
    for name in ("learning_rate", "gamma", "ent_coef"):
        p.add_argument("--" + name.replace("_", "-"), type=bounded(float, name))
    p.add_argument("--sleep", type=float)
    p.add_argument("--hold", type=float)
    p.add_argument("--domain-randomization", nargs="?", const=True, type=typed)
    if contract:
        p.add_argument("--print-schema", action="store_true", help="print the schema and exit")
        p.add_argument("--check", action="store_true", help="validate the arguments and exit")
    p.add_argument("--lenient", action="store_true",
                   help="accept unknown --flag VALUE pairs and report them as used params")
    args, unknown = p.parse_known_args()
    if unknown and not args.lenient:
        p.error(f"unrecognized arguments: {' '.join(unknown)}")
    extra = {k.lstrip("-").replace("-", "_"): typed(v) for k, v in zip(unknown[::2], unknown[1::2])}
    if contract and args.print_schema:
        print(json.dumps(SCHEMA))
        return 0
    if contract and args.check:
        if args.agent not in SCHEMA["agents"]:
            print(f"error: unknown agent {args.agent!r}", file=sys.stderr)
            return 2
        print(f"ok: {args.agent} on {args.track}")
        return 0
    match = re.search(r"trial-(\d+)$", args.save_dir.rstrip("/"))
    trial = int(match.group(1)) if match else 0
    plan = dict(item.split("=") for item in args.plan.split(",")) if args.plan else {}
    mode = plan.get(str(trial), args.mode or "ok")
    if args.fail_file and os.path.exists(args.fail_file):
        mode = "crash"
    started = time.time()
    print(f"fake trial {trial} mode={mode} pid={os.getpid()} pgid={os.getpgid(0)}", flush=True)
    scratch = tempfile.mkdtemp(prefix="SB3-")  # like SB3's logger folder in the system temp
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode in ("hang", "stubborn"):
        while True:
            time.sleep(1)
    if mode in ("spawn", "spawnhang"):  # a grandchild in the trial's process group, outliving the leader
        os.makedirs(args.save_dir, exist_ok=True)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(os.path.join(args.save_dir, "grandchild.pid"), "w") as fh:
            fh.write(str(child.pid))
    if mode == "workers":  # like --vec-env subproc: children of the trainer, then training
        os.makedirs(args.save_dir, exist_ok=True)
        kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
                for _ in range(2)]
        with open(os.path.join(args.save_dir, "workers.pid"), "w") as fh:
            fh.write(" ".join(str(k.pid) for k in kids))
    if mode == "escape":  # a grandchild in a session of its own (e.g. a launched simulator)
        os.makedirs(args.save_dir, exist_ok=True)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 start_new_session=True)
        with open(os.path.join(args.save_dir, "escapee.pid"), "w") as fh:
            fh.write(str(child.pid))
    if mode in ("spawnhang", "workers", "escape"):
        if args.hold:  # then finish ok, leaving the children behind for the leader to kill
            time.sleep(args.hold)
        else:
            while True:
                time.sleep(1)
    checkpoints(args, trial, mode)
    if mode == "crash":
        print("Traceback: simulated crash", file=sys.stderr, flush=True)
        return 3
    if mode == "noresult":
        return 0
    if mode == "enospc":
        print("OSError: [Errno 28] No space left on device", file=sys.stderr, flush=True)
        return 1
    os.makedirs(args.save_dir, exist_ok=True)
    raw = {"garbage": b'{"mean_reward": 12, "driv', "nonutf8": b'{"mean_reward": "\xff\xfe"}',
           "deep": b"[" * 100000 + b"]" * 100000}.get(mode)
    if raw is not None:
        with open(args.result_file, "wb") as fh:
            fh.write(raw)
        return 0
    model = os.path.join(args.save_dir, "model.zip")
    write_model(model, trial, args.model_kb or 0)
    if mode == "notzip":
        with open(model, "wb") as fh:
            fh.write(b"not a zip")
    if mode == "elsewhere":
        model = os.path.abspath(os.path.join(args.save_dir, "..", "..", "outside.zip"))
        write_model(model, trial, 0)
    value = trial_value(args, trial)
    if mode == "nan":
        value = float("nan")
    if mode == "huge":
        value = 1e308
    n = args.eval_episodes or 5
    result = {
        "params": {**{k: v for k, v in vars(args).items() if v is not None}, **extra},
        "mean_reward": value, "std_reward": 0.5, "episode_rewards": [value] * n,
        "driving_score": value, "race_score": value, "completion": 1.0, "laps": 1,
        "mean_abs_cte": 0.3,
        "validation_lap_time_ratio_penalised": pareto_values(args)[0],
        "validation_mean_abs_cte": pareto_values(args)[1],
        "reward_hacking_flag": mode == "hack", "model_path": model,
        "elapsed_sec": time.time() - started, "seed": args.seed,
        "run_status": "diverged" if mode == "diverged" else "ok",
        "message": "loss became NaN" if mode == "diverged" else "",
        "started_at": started, "ended_at": time.time(), "pgid": os.getpgid(0),
        "scratch_dir": scratch,
    }
    if mode == "wrongtypes":
        result.update(episode_rewards=5, params=[1, 2], laps={"a": [1, {"b": None}]})
    if mode == "hugeint":
        result["completion"] = 10**400
    with open(args.result_file + ".tmp", "w") as fh:
        json.dump(result, fh, allow_nan=True)
    os.replace(args.result_file + ".tmp", args.result_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
