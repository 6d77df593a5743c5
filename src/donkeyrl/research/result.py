"""Turn a finished trial process (exit code + result file) into trial-record fields.

The objective is read from the result file written by ``donkeyrl train --result-file``, never
scraped from stdout. Every way a trial can fail maps to a ``run_status`` and a message, in this
order of precedence: ``timeout`` / ``interrupted`` (the controller killed it), no result file
(``crashed`` if the exit code is non-zero, else ``no_result``), an unreadable or non-object file
(``bad_result``), a failure reported by the trainer (its own ``run_status``, e.g. ``diverged``,
``sim_disconnected``, ``error``), a non-zero exit after an ok result (``crashed``, metrics kept),
a missing objective or model (``bad_result``), a NaN/inf objective (``nan``), an implausible
objective (``bad_result``, see ``records.implausible``).

A result file is untrusted input: it is read only if it is a regular file of at most
``MAX_RESULT_BYTES``, must be UTF-8 JSON nested at most ``files.MAX_JSON_DEPTH`` levels, and its
``model_path`` must name a zip archive inside the trial's own directory (``--save-dir``; symlinks
resolved), so that no result can make ``/etc/hostname`` or another trial's model the champion
that publishing would commit. Trainer messages are cut to one line of ``MAX_MESSAGE`` characters
(a diverged optimizer once put a 514-line tensor dump into a record).

Noise given to the GP (standard error of the objective over the evaluation episodes, n of them):
``<objective>_std / sqrt(n)`` if the result file has that field; for ``mean_reward``
``std_reward / sqrt(n)``; for ``driving_score`` (measured on the same episodes as the reward)
``std_reward`` rescaled to its magnitude (same coefficient of variation,
``|objective| * std_reward / |mean_reward| / sqrt(n)``). Any other objective, such as
``race_score`` (a mean over the validation set's tracks, one race each, not over the evaluation
episodes), gets None: its noise is learned by the GP from replicates (confirmation runs re-train
a configuration on fresh seeds), never invented from the reward's spread. With fewer than two
episodes the noise is unknown (None), never zero.

Under ``--objective pareto`` the record's ``objective`` is the result's ``race_score`` and both
``PARETO_OBJECTIVES`` must be numbers too (else ``bad_result``); they go to ``objectives``.

``unused_params`` guards against the previous system's worst bug (a searched learning rate that
never reached the trainer): every searched parameter must come back, with the same value, in
the ``params`` the trainer reports having used; a mismatch is noted in the record's message.
A one-element list reported for a searched scalar (the trainer's ``tracks`` list for a searched
``tracks="mixed"``) is the same value.
"""

from __future__ import annotations

import json
import math
import os
import signal
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import MAX_JSON_DEPTH, json_depth, read_regular
from .records import PARETO, PARETO_OBJECTIVES, PARETO_RANK, implausible

__all__ = ["ParsedOutcome", "parse_outcome", "objective_noise", "result_field", "log_tail",
           "unused_params", "EPISODE_OBJECTIVES",
           "MAX_RESULT_BYTES", "MAX_MESSAGE", "clip_message", "check_model_path"]

MAX_RESULT_BYTES = 32 << 20
"""Largest result file read (results are kilobytes; per-episode data included)."""

MAX_MESSAGE = 500
"""Characters of a trainer's message kept in the record."""

_TOP_LEVEL = {"params", "mean_reward", "std_reward", "episode_rewards", "driving_score",
              "model_path", "elapsed_sec", "seed", "run_status", "message"}


@dataclass
class ParsedOutcome:
    """Record fields derived from one finished trial."""

    run_status: str
    message: str = ""
    objective: float | None = None
    noise: float | None = None
    mean_reward: float | None = None
    std_reward: float | None = None
    episode_rewards: list[float] = field(default_factory=list)
    driving_score: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    used_params: dict[str, Any] = field(default_factory=dict)
    reward_hacking: bool = False
    model_path: Path | None = None
    objectives: dict[str, float] = field(default_factory=dict)
    """Under ``--objective pareto``: the two minimised values (see the module docstring)."""
    missing_objective: list[str] | None = None
    """When an otherwise ok result lacks the objective: the numeric fields it does have."""


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float
        return None


def clip_message(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, whitespace collapsed, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def log_tail(path: Path, n: int = 3, limit: int = 300) -> str:
    """The last ``n`` non-empty lines of a log file, for crash messages."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    # the controller's own header lines ("# <time> trial N: <command>") say nothing new
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not (ln.startswith("# ") and " trial " in ln[:40])]
    return " | ".join(lines[-n:])[-limit:]


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


EPISODE_OBJECTIVES = ("mean_reward", "driving_score")
"""Objectives averaged over the evaluation episodes, whose spread ``std_reward`` measures."""


def result_field(objective: str) -> str:
    """The result-file field holding ``objective``'s value (``race_score`` for pareto)."""
    return PARETO_RANK if objective == PARETO else objective


def objective_noise(result: dict[str, Any], objective: str, value: float) -> float | None:
    """Standard error of ``value`` (see the module docstring), or None if unknown."""
    rewards = result.get("episode_rewards")
    params = result.get("params")
    episodes = params.get("eval_episodes") if isinstance(params, dict) else None
    if isinstance(rewards, list) and rewards:
        n = len(rewards)
    elif isinstance(episodes, int) and not isinstance(episodes, bool):
        n = episodes
    else:
        n = 1
    if n < 2:  # the spread of a single episode is unknown, not zero
        return None
    std = _num(result.get(f"{objective}_std"))
    if std is None and objective not in EPISODE_OBJECTIVES:
        return None
    if std is None:
        std_r, mean_r = _num(result.get("std_reward")), _num(result.get("mean_reward"))
        if std_r is None or not math.isfinite(std_r):
            return None
        if objective == "mean_reward":
            std = std_r
        elif mean_r and math.isfinite(mean_r):
            std = abs(value) * std_r / abs(mean_r)
        else:
            return None
    return abs(std) / math.sqrt(n) if math.isfinite(std) else None


def _load(result_file: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        raw = read_regular(result_file, MAX_RESULT_BYTES)
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"cannot read result file {result_file}: {exc.strerror or exc}"
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"result file {result_file} is not UTF-8 text: {exc.reason} at byte {exc.start}"
    except RecursionError:
        return None, f"result file {result_file} is nested too deeply"
    except ValueError as exc:
        return None, f"result file {result_file} is not valid JSON: {exc}"
    if not isinstance(data, dict):
        return None, f"result file {result_file} holds a {type(data).__name__}, not an object"
    if json_depth(data) > MAX_JSON_DEPTH - 1:  # its fields nest one level deeper in a record
        return None, f"result file {result_file} nests deeper than {MAX_JSON_DEPTH - 1} levels"
    return data, ""


def _fill(out: ParsedOutcome, data: dict[str, Any], objective: str, cwd: Path) -> None:
    out.mean_reward = _num(data.get("mean_reward"))
    out.std_reward = _num(data.get("std_reward"))
    out.driving_score = _num(data.get("driving_score"))
    rewards = data.get("episode_rewards")
    if isinstance(rewards, list):
        out.episode_rewards = [float(r) for r in rewards if _num(r) is not None]
    out.metrics = {k: v for k, v in data.items() if k not in _TOP_LEVEL}
    if isinstance(data.get("params"), dict):
        out.used_params = dict(data["params"])
    out.reward_hacking = bool(data.get("reward_hacking_flag", False))
    if isinstance(data.get("model_path"), str) and data["model_path"]:
        p = Path(data["model_path"])
        out.model_path = p if p.is_absolute() else cwd / p
    out.objective = _num(data.get(result_field(objective)))
    if objective == PARETO:
        out.objectives = {k: v for k in PARETO_OBJECTIVES if (v := _num(data.get(k))) is not None}


def check_model_path(model: Path | None, trial_dir: Path | None) -> str:
    """Why ``model`` cannot be the trial's model, or "" when it can (see the module docstring)."""
    if model is None:
        return "the result file names no model_path"
    try:
        real = model.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loop
        return f"model_path {model} cannot be resolved: {exc}"
    if trial_dir is not None:
        home = trial_dir.resolve()
        if real != home and home not in real.parents:
            return f"model_path {model} is outside the trial directory {home}: refused"
    if not real.is_file():
        return f"model file {model} named by the result file does not exist"
    try:
        if not zipfile.is_zipfile(real):
            return f"model file {model} is not a zip archive (a saved model is one): refused"
    except OSError as exc:
        return f"model file {model} cannot be read: {exc.strerror or exc}"
    return ""


def parse_outcome(result_file: Path, exit_code: int | None, *, objective: str,
                  cwd: Path, log_file: Path | None = None, killed: str | None = None,
                  kill_message: str = "", trial_dir: Path | None = None) -> ParsedOutcome:
    """Classify a finished trial (see the module docstring for the precedence of statuses).

    ``killed`` is ``"timeout"`` or ``"interrupted"`` when the controller killed it.
    ``trial_dir`` is the trial's ``--save-dir``: the model must lie inside it.
    """
    if killed:
        return ParsedOutcome(killed, kill_message)
    tail = log_tail(log_file) if log_file else ""
    data, err = _load(result_file)
    if data is None:
        if err == "missing":
            status = "crashed" if exit_code else "no_result"
            msg = f"{_exit_text(exit_code)} without writing {result_file}"
            return ParsedOutcome(status, clip_message(f"{msg}; log: {tail}" if tail else msg))
        return ParsedOutcome("bad_result", clip_message(f"{err} ({_exit_text(exit_code)})"))
    out = ParsedOutcome("ok")
    _fill(out, data, objective, cwd)
    reported = data.get("run_status", "ok")
    values = {result_field(objective): out.objective, **(
        {k: out.objectives.get(k) for k in PARETO_OBJECTIVES} if objective == PARETO else {})}
    missing = [k for k, v in values.items() if v is None]
    bad_value = next((f"{k} is {v}" for k, v in values.items()
                      if v is not None and not math.isfinite(v)), "")
    bad_model = ""
    if reported == "ok" and not exit_code and not missing and not bad_value:
        bad_model = check_model_path(out.model_path, trial_dir)
    if reported != "ok":
        out.run_status = clip_message(reported, 40) if isinstance(reported, str) and reported \
            else "error"
        out.message = str(data.get("message") or f"trainer reported {reported!r}")
    elif exit_code:
        out.run_status = "crashed"
        out.message = f"{_exit_text(exit_code)} after writing an ok result; log: {tail}"
    elif missing:
        out.run_status = "bad_result"
        out.message = f"result file {result_file} has no numeric {missing[0]!r}"
        if missing[0] not in data:
            out.missing_objective = sorted(k for k, v in data.items() if _num(v) is not None)
    elif bad_value:
        out.run_status = "nan"
        out.message = bad_value
    elif implausible(objective, out.objective):  # type: ignore[arg-type]
        out.run_status = "bad_result"
        out.message = implausible(objective, out.objective) + ": refused"  # type: ignore[arg-type]
    elif any(implausible(k, v) for k, v in out.objectives.items()):
        out.run_status = "bad_result"
        out.message = next(implausible(k, v) for k, v in out.objectives.items()
                           if implausible(k, v)) + ": refused"
    elif bad_model:
        out.run_status = "bad_result"
        out.message = bad_model
    else:
        out.message = str(data.get("message") or "")
    out.message = clip_message(out.message)
    if out.objective is not None and math.isfinite(out.objective) and objective != PARETO:
        out.noise = objective_noise(data, objective, out.objective)
    return out


def unused_params(searched: dict[str, Any], used: dict[str, Any]) -> list[str]:
    """Searched parameters missing from, or different in, the trainer's reported params."""
    out = []
    for name, value in searched.items():
        if name not in used:
            out.append(f"{name} not reported by the trainer")
            continue
        got = used[name]
        if isinstance(got, list) and len(got) == 1 and not isinstance(value, list):
            got = got[0]  # a list-valued parameter (tracks) searched as one value
        a, b = _num(got), _num(value)
        same = math.isclose(a, b, rel_tol=1e-9) if a is not None and b is not None else got == value
        if not same:
            out.append(f"{name}: searched {value!r}, trainer used {got!r}")
    return out
