"""Render one trial's command line from the ``--trial-command`` template and the params.

The template is split like a shell line (``shlex``), then these placeholders are replaced
inside each word: ``{python}`` (the controller's interpreter, ``sys.executable``, so the default
works in any virtualenv), ``{trial}``, ``{study_dir}``, ``{trial_dir}``. Then the controller
appends, in this order:

``--agent A --track T [T ...] --eval-episodes E --seed S --save-dir DIR --result-file FILE``
``[--reward R]``, ``[--tensorboard DIR]`` (with ``research --tensorboard DIR``), one
``--foo-bar VALUE`` per searched parameter ``foo_bar``, and finally the verbatim extra arguments.

Value rendering: a boolean -> the flag and ``true`` / ``false`` (``--grey false``: omitting the
flag for False would leave the trainer's default, which may be True), ``None`` -> nothing, a list
-> the flag followed by every item, anything else -> ``str(value)`` (floats via ``repr`` so that
no digits are lost). A searched ``agent`` parameter replaces ``--agent``; a searched ``tracks``
(or ``track``) parameter replaces ``--track`` (both would reach the trainer, and the last one
would silently win).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any
from collections.abc import Mapping, Sequence

__all__ = ["DEFAULT_TRIAL_COMMAND", "TRACK_PARAMS", "render_template", "param_flags", "build_argv"]

DEFAULT_TRIAL_COMMAND = "{python} -m donkeyrl train"

TRACK_PARAMS = frozenset({"tracks", "track"})
"""Searched parameter names that set the training tracks (``--track`` of the trainer)."""


def render_template(template: str, **values: Any) -> list[str]:
    """Split ``template`` and substitute the placeholders; raises ValueError if it is empty."""
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise ValueError(f"--trial-command {template!r} is not a valid command line: {exc}") \
            from None
    if not words:
        raise ValueError("--trial-command must not be empty")
    subst = {"python": sys.executable, **{k: str(v) for k, v in values.items()}}
    out = []
    for w in words:
        for key, val in subst.items():
            w = w.replace("{" + key + "}", val)
        out.append(w)
    return out


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def param_flags(params: Mapping[str, Any], skip: Sequence[str] = ("agent",)) -> list[str]:
    """``foo_bar=V`` -> ``["--foo-bar", "V"]`` for every parameter (see the module docstring)."""
    out: list[str] = []
    for name, value in params.items():
        if name in skip or value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out += [flag, "true" if value else "false"]
        elif isinstance(value, (list, tuple)):
            out += [flag, *(_fmt(v) for v in value)]
        else:
            out += [flag, _fmt(value)]
    return out


def build_argv(template: str, *, params: Mapping[str, Any], agent: str, tracks: Sequence[str],
               eval_episodes: int, seed: int, save_dir: Path, result_file: Path,
               reward: str | None, trial: int, study_dir: Path,
               extra_args: Sequence[str] = (), tensorboard: Path | None = None) -> list[str]:
    """The full command line of one trial (``tensorboard``: the study's TensorBoard directory)."""
    argv = render_template(template, trial=trial, study_dir=study_dir, trial_dir=save_dir)
    argv += ["--agent", str(params.get("agent", agent))]
    if tracks and not TRACK_PARAMS & set(params):
        argv += ["--track", *tracks]
    argv += ["--eval-episodes", str(eval_episodes), "--seed", str(seed),
             "--save-dir", str(save_dir), "--result-file", str(result_file)]
    if reward:
        argv += ["--reward", reward]
    if tensorboard is not None:
        argv += ["--tensorboard", str(tensorboard)]
    return argv + param_flags(params) + list(extra_args)
