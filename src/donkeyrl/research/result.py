"""Turn a finished trial process (exit code + result file) into trial-record fields.

The objective is read from the result file written by ``donkeyrl train --result-file``, never
scraped from stdout. Every way a trial can fail maps to a ``run_status`` and a message, in this
order of precedence: ``timeout`` / ``interrupted`` (the controller killed it), no result file
(``crashed`` if the exit code is non-zero, else ``no_result``), an unreadable or non-object file
(``bad_result``), a failure reported by the trainer (its own ``run_status``, e.g. ``diverged``,
``sim_disconnected``, ``error``), a non-zero exit after an ok result (``crashed``, metrics kept),
a missing objective or model (``bad_result``), a NaN/inf objective (``nan``).

Noise given to the GP (standard error of the objective over the evaluation episodes, n of them):
``<objective>_std / sqrt(n)`` if the result file has that field; for ``mean_reward``
``std_reward / sqrt(n)``; otherwise ``std_reward`` rescaled to the objective's magnitude
(same coefficient of variation, ``|objective| * std_reward / |mean_reward| / sqrt(n)``).
With fewer than two episodes the noise is unknown (None), never zero.

``unused_params`` guards against the previous system's worst bug (a searched learning rate that
never reached the trainer): every searched parameter must come back, with the same value, in
the ``params`` the trainer reports having used; a mismatch is noted in the record's message.
"""

from __future__ import annotations

import json
import math
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ParsedOutcome", "parse_outcome", "objective_noise", "log_tail", "unused_params"]

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


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


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


def objective_noise(result: dict[str, Any], objective: str, value: float) -> float | None:
    """Standard error of ``value`` (see the module docstring), or None if unknown."""
    rewards = result.get("episode_rewards")
    n = len(rewards) if isinstance(rewards, list) and rewards else None
    if n is None:
        params = result.get("params") if isinstance(result.get("params"), dict) else {}
        n = params.get("eval_episodes") if isinstance(params.get("eval_episodes"), int) else 1
    if int(n) < 2:  # the spread of a single episode is unknown, not zero
        return None
    std = _num(result.get(f"{objective}_std"))
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
        text = result_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"cannot read result file {result_file}: {exc.strerror}"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"result file {result_file} is not valid JSON: {exc}"
    if not isinstance(data, dict):
        return None, f"result file {result_file} holds a {type(data).__name__}, not an object"
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
    out.objective = _num(data.get(objective))


def parse_outcome(result_file: Path, exit_code: int | None, *, objective: str,
                  cwd: Path, log_file: Path | None = None, killed: str | None = None,
                  kill_message: str = "") -> ParsedOutcome:
    """Classify a finished trial (see the module docstring for the precedence of statuses).

    ``killed`` is ``"timeout"`` or ``"interrupted"`` when the controller killed the trial.
    """
    if killed:
        return ParsedOutcome(killed, kill_message)
    tail = log_tail(log_file) if log_file else ""
    data, err = _load(result_file)
    if data is None:
        if err == "missing":
            status = "crashed" if exit_code else "no_result"
            msg = f"{_exit_text(exit_code)} without writing {result_file}"
            return ParsedOutcome(status, f"{msg}; log: {tail}" if tail else msg)
        return ParsedOutcome("bad_result", f"{err} ({_exit_text(exit_code)})")
    out = ParsedOutcome("ok")
    _fill(out, data, objective, cwd)
    reported = data.get("run_status", "ok")
    if reported != "ok":
        out.run_status = str(reported) if isinstance(reported, str) and reported else "error"
        out.message = str(data.get("message") or f"trainer reported {reported!r}")
    elif exit_code:
        out.run_status = "crashed"
        out.message = f"{_exit_text(exit_code)} after writing an ok result; log: {tail}"
    elif out.objective is None:
        out.run_status = "bad_result"
        out.message = f"result file {result_file} has no numeric {objective!r}"
    elif not math.isfinite(out.objective):
        out.run_status = "nan"
        out.message = f"{objective} is {out.objective}"
    elif out.model_path is None or not out.model_path.is_file():
        out.run_status = "bad_result"
        out.message = f"model file {out.model_path} named by the result file does not exist"
    else:
        out.message = str(data.get("message") or "")
    if out.objective is not None and math.isfinite(out.objective):
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
        same = (math.isclose(float(got), float(value), rel_tol=1e-9)
                if _num(got) is not None and _num(value) is not None else got == value)
        if not same:
            out.append(f"{name}: searched {value!r}, trainer used {got!r}")
    return out
