"""Checks made before the first trial, so that a setup error costs seconds, not a night.

A study whose every trial is doomed (a misspelt track, a trial command that does not exist, a
search-space parameter the trainer does not have) used to burn its trials and exit 0. The
controller runs ``preflight`` before it creates or locks anything; the first problem found is a
``PreflightError`` with one line naming the bad value and what is valid (``donkeyrl research``
exits 2). Checks, in order:

1. ``--track``: every name is a training track, env id, ``procedural-<seed>`` of the training
   stream or a regime (validation and test tracks are refused: training on them would leak the
   sets the study selects and reports on); a searched ``tracks`` likewise (space.py).
   ``--objective`` race_score, pareto or a ``validation_*`` field needs the validation race:
   ``--train-arg=--validation false`` is refused with it.
2. ``--seed``: trial N trains with ``seed + N``, which must stay below 2**32 for every trial.
3. ``--warm-start`` files exist and are regular files.
4. The trial command's program exists (on ``PATH`` or as a path) and is executable.
5. Publishing: ``git`` is installed and ``--git-branch`` is a valid branch name
   (``git check-ref-format --branch``), checked before ``git init`` could make a half repository.
6. The trainer contract, probed with ``<trial command> --help`` (no study files are touched):

   - if the help lists ``--print-schema``, the trainer's schema (JSON ``{"agents": [...],
     "params": {name: {"flag", "type", "default", "low", "high", "choices", "agents",
     "help"}}}``, optionally ``"result_fields": [...]``) is read and every search-space
     parameter must be a trainer parameter that applies to the agent(s), with every value of
     its range (bounds, choices, fixed value) inside what the trainer accepts; ``--objective``
     must be one of ``result_fields`` when the schema lists them (under ``pareto``: the race
     score and both Pareto objectives);
   - if the help lists ``--check``, one trial's full command line (the midpoint of the search
     space, every ``--train-arg``, a temporary ``--save-dir``) is run with ``--check``: the
     trainer parses it, builds the environment once and exits 0, or prints one line and exits
     non-zero, which becomes the error.

   A command whose ``--help`` fails is only checked for existence (step 4). ``donkeyrl train``
   provides both flags; a custom trainer may implement the same contract.

Probes run under the trial leader (leader.py) with a timeout, so a probe never outlives the
controller, and in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np

from donkeyrl.bo import SearchSpace

from .limits import SEED_LIMIT
from .procs import kill_group
from .records import PARETO, PARETO_OBJECTIVES, PARETO_RANK
from .runner import leader_argv
from .trialcmd import build_argv, render_template

__all__ = ["PreflightError", "preflight", "check_space_against_schema", "SEED_LIMIT",
           "needs_validation", "objective_fields"]

log = logging.getLogger(__name__)

HELP_TIMEOUT = 60.0
"""Seconds for ``--help`` and ``--print-schema`` (argument parsing only)."""


class PreflightError(ValueError):
    """A setup error found before the first trial (one line: the bad value and what is valid)."""


@dataclass(frozen=True)
class _Probe:
    code: int | None
    """Exit code; None when the probe timed out."""
    out: str
    err: str

    def last_line(self) -> str:
        for text in (self.err, self.out):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                return lines[-1][:400]
        return f"exit code {self.code}, no output"


def _probe(argv: list[str], timeout: float, cwd: Path, env: dict[str, str]) -> _Probe:
    """Run ``argv`` under the trial leader, capture its output, kill its group at the end."""
    proc = subprocess.Popen(leader_argv(argv, 1.0), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
                            start_new_session=True, close_fds=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        kill_group(proc.pid, 2.0)
        out, err = proc.communicate()
        code = None
    finally:
        if proc.poll() is None:  # an exception (Ctrl-C) while waiting
            kill_group(proc.pid, 2.0)
            proc.wait()
    return _Probe(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def _check_tracks(tracks: Sequence[str]) -> None:
    from donkeyrl.sim.tracksets import check_training_tracks
    try:
        check_training_tracks(list(tracks))
    except ValueError as exc:
        raise PreflightError(f"--track: {exc}") from None


def _validation_off(extra_args: Sequence[str]) -> bool:
    """True when the extra train arguments switch the validation race off."""
    words = list(extra_args)
    for i, w in enumerate(words):
        value = None
        if w.startswith("--validation="):
            value = w.split("=", 1)[1]
        elif w == "--validation" and i + 1 < len(words):
            value = words[i + 1]
        if value is not None and value.strip().lower() in ("0", "false", "no", "off"):
            return True
    return False


def needs_validation(objective: str) -> bool:
    """Objectives measured by the trainer's validation race (``--validation``)."""
    return objective in ("race_score", PARETO) or objective.startswith("validation_")


def objective_fields(objective: str) -> tuple[str, ...]:
    """The result-file fields an objective reads."""
    return (PARETO_RANK, *PARETO_OBJECTIVES) if objective == PARETO else (objective,)


def _check_program(word: str, cwd: Path) -> None:
    if os.sep in word:
        path = Path(word) if Path(word).is_absolute() else cwd / word
        if not path.is_file():
            raise PreflightError(f"--trial-command: program {word!r} does not exist")
        if not os.access(path, os.X_OK):
            raise PreflightError(f"--trial-command: program {word!r} is not executable")
    elif shutil.which(word) is None:
        raise PreflightError(f"--trial-command: program {word!r} is not on PATH (give its full "
                             "path, or install it)")


def _check_git(remote: str | None, branch: str) -> None:
    if not remote:
        return
    if shutil.which("git") is None:
        raise PreflightError("--git-remote needs git, which is not installed (or not on PATH)")
    proc = subprocess.run(["git", "check-ref-format", "--branch", branch],
                          capture_output=True, text=True, timeout=HELP_TIMEOUT)
    if proc.returncode != 0 or not branch or branch.startswith("-"):
        raise PreflightError(f"--git-branch {branch!r} is not a valid git branch name "
                             "(e.g. main, results/night-1)")


def _check_warm_start(files: Sequence[Path]) -> None:
    for f in files:
        try:
            mode = os.stat(f).st_mode
        except OSError as exc:
            raise PreflightError(f"--warm-start file {f}: {exc.strerror}") from None
        if not stat.S_ISREG(mode):
            raise PreflightError(f"--warm-start {f} is not a regular file")


def _values(param: Any) -> list[Any]:
    """The values of a search-space parameter that the trainer must accept."""
    if param.kind == "fixed":
        return [param.value]
    if param.kind == "categorical":
        return list(param.choices)
    low, high = param.low, param.high
    if param.kind == "int":
        return [int(low), int(high)]
    return [float(low), float(high)]


def _value_problem(value: Any, spec: dict[str, Any]) -> str:
    """Why the trainer would refuse ``value`` for a parameter with ``spec``, or ""."""
    kind = spec.get("type")
    choices = spec.get("choices")
    if isinstance(choices, list) and choices:
        ok = any(value == c or str(value) == str(c) for c in choices)
        return "" if ok else f"{value!r} is not one of the trainer's choices {choices}"
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{value!r} is not a number"
        if kind == "int" and float(value) != math.floor(float(value)):
            return f"{value!r} is not an integer"
        low, high = spec.get("low"), spec.get("high")
        accepts = f"the trainer accepts [{'-inf' if low is None else low}, " \
                  f"{'inf' if high is None else high}]"
        if isinstance(low, (int, float)) and value < low:
            return f"{value!r} is below the trainer's minimum {low} ({accepts})"
        if isinstance(high, (int, float)) and value > high:
            return f"{value!r} is above the trainer's maximum {high} ({accepts})"
    if kind == "bool" and not isinstance(value, bool) and \
            str(value).lower() not in ("true", "false", "1", "0", "yes", "no"):
        return f"{value!r} is not a boolean"
    return ""


def check_space_against_schema(space: SearchSpace, schema: Any, agent: str,
                               objective: str | None = None) -> None:
    """Raise PreflightError when ``space`` asks the trainer for something it cannot do (see the
    module docstring); ``schema`` is the parsed ``--print-schema`` JSON."""
    params = schema.get("params") if isinstance(schema, dict) else None
    if not isinstance(params, dict):
        raise PreflightError("the trainer's --print-schema output has no 'params' object")
    known_agents = schema.get("agents")
    searched_agents = [agent]
    for p in space.params:
        if p.name == "agent":
            searched_agents = [str(v) for v in _values(p)]
    if isinstance(known_agents, list) and known_agents:
        for a in searched_agents:
            if a not in known_agents:
                raise PreflightError(f"agent {a!r} is not one the trainer knows ({known_agents})")
    for p in space.params:
        if p.name == "agent":
            continue
        spec = params.get(p.name)
        if not isinstance(spec, dict):
            raise PreflightError(
                f"search space parameter {p.name!r} is not a parameter of the trainer (its "
                f"parameters: {', '.join(sorted(params))})")
        applies = spec.get("agents")
        if isinstance(applies, list) and applies:
            for a in searched_agents:
                if a not in applies:
                    raise PreflightError(f"search space parameter {p.name!r} does not apply to "
                                         f"agent {a!r} (it applies to {applies})")
        for value in _values(p):
            problem = _value_problem(value, spec)
            if problem:
                raise PreflightError(f"search space parameter {p.name!r}: {problem}")
    fields = schema.get("result_fields")
    if objective and isinstance(fields, list) and fields:
        for name in objective_fields(objective):
            if name not in fields:
                what = f"--objective {objective!r}" if name == objective else \
                    f"--objective {objective!r} needs {name!r}, which"
                raise PreflightError(f"{what} is not in the trainer's result; valid: "
                                     f"{', '.join(map(str, fields))}, {PARETO}")


def _midpoint(space: SearchSpace) -> dict[str, Any]:
    return space.decode(np.full(space.dim, 0.5))


def _trainer_contract(cfg: Any, space: SearchSpace, cwd: Path, notes: list[str]) -> None:
    """Step 6 of the module docstring."""
    with tempfile.TemporaryDirectory(prefix="donkeyrl-preflight-") as tmp:
        tmp_dir = Path(tmp)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_dir)}
        trial_dir = tmp_dir / "trial-0"
        words = render_template(cfg.trial_command, trial=0, study_dir=Path(cfg.study_dir).resolve(),
                                trial_dir=trial_dir)
        helped = _probe([*words, "--help"], HELP_TIMEOUT, cwd, env)
        if helped.code != 0:
            notes.append(f"preflight: '{' '.join(words)} --help' failed ({helped.last_line()}); "
                         "only the program was checked")
            return
        text = helped.out + helped.err
        if re.search(r"(?<![\w-])--print-schema(?![\w-])", text):
            got = _probe([*words, "--print-schema"], HELP_TIMEOUT, cwd, env)
            try:
                schema = json.loads(got.out) if got.code == 0 else None
            except ValueError:
                schema = None
            if schema is None:
                raise PreflightError(f"the trial command's --print-schema failed: {got.last_line()}")
            check_space_against_schema(space, schema, cfg.agent, cfg.objective)
            notes.append(f"preflight: search space checked against the trainer's schema "
                         f"({len(schema.get('params', {}))} parameters)")
        if re.search(r"(?<![\w-])--check(?![\w-])", text):
            params = _midpoint(space)
            argv = build_argv(cfg.trial_command, params=params, agent=cfg.agent, tracks=cfg.tracks,
                              eval_episodes=cfg.eval_episodes, seed=cfg.seed, save_dir=trial_dir,
                              result_file=trial_dir / "result.json", reward=cfg.reward, trial=0,
                              study_dir=Path(cfg.study_dir).resolve(), extra_args=cfg.extra_args,
                              tensorboard=tmp_dir / "tensorboard" if cfg.tensorboard else None)
            got = _probe([*argv, "--check"], cfg.preflight_timeout, cwd, env)
            if got.code is None:
                raise PreflightError(f"the dry run of the trial command (--check) did not finish "
                                     f"in {cfg.preflight_timeout:g} s")
            if got.code != 0:
                how = (f"killed by {signal.Signals(-got.code).name}" if got.code < 0
                       else f"exit {got.code}")
                raise PreflightError(f"the dry run of one trial's command line failed ({how}): "
                                     f"{got.last_line()}")
            ok = next((ln.strip() for ln in got.out.splitlines() if ln.startswith("ok")), "ok")
            notes.append(f"preflight: dry run of one trial's command line passed ({ok[:200]})")


def preflight(cfg: Any, space: SearchSpace, cwd: Path) -> list[str]:
    """Run every check of the module docstring; returns notes, raises PreflightError."""
    notes: list[str] = []
    _check_tracks(cfg.tracks)
    if needs_validation(cfg.objective) and _validation_off(cfg.extra_args):
        raise PreflightError(f"--objective {cfg.objective} is measured by the validation race, "
                             "which --validation false switches off (drop it, or choose "
                             "--objective driving_score or mean_reward)")
    if cfg.seed + cfg.trials >= SEED_LIMIT:
        raise PreflightError(f"--seed {cfg.seed}: trial N trains with seed+N, which must stay "
                             f"below 2**32 for all {cfg.trials} trials (use a seed < "
                             f"{SEED_LIMIT - cfg.trials})")
    _check_warm_start(cfg.warm_start)
    try:
        words = render_template(cfg.trial_command, trial=0, study_dir=cfg.study_dir, trial_dir="")
    except ValueError as exc:
        raise PreflightError(str(exc)) from None
    _check_program(words[0], cwd)
    _check_git(cfg.publish.remote, cfg.publish.branch)
    _trainer_contract(cfg, space, cwd, notes)
    return notes
