"""Helpers for the research controller tests: fake trials, a collecting reporter, process checks."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from donkeyrl.research import Controller, Journal, StudyConfig

FAKE = Path(__file__).with_name("fake_trial.py")

LOOP_ONLY = ("--confirm-seeds", "0", "--no-final-test", "--no-report")
"""``donkeyrl research`` flags of CLI tests about the loop: single-run champions, no final test
against the fake trainer's models, no HTML report."""

SMALL_SPACE = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
               "n_steer": {"type": "int", "low": 3, "high": 9}}


def zip_bytes(text: str) -> bytes:
    """A small zip archive holding ``text`` (a stand-in for a saved model)."""
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("data", date_time=(2020, 1, 1, 0, 0, 0)), text)
    return buf.getvalue()


def fake_command(*extra: str) -> str:
    """--trial-command running the fake trial with ``extra`` fake-only flags."""
    return " ".join([f"{sys.executable}", str(FAKE), *extra])


class Collect:
    """Reporter that keeps everything the controller says."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.proposals: list[tuple[int, dict, list]] = []
        self.started_trials: list[int] = []
        self.results: list[Any] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    def proposal(self, trial, params, candidates) -> None:
        self.proposals.append((trial, params, list(candidates)))

    def started(self, trial, params, progress) -> None:
        self.started_trials.append(trial)

    def finished(self, record, progress) -> None:
        self.results.append((record, progress))


def make_config(study: Path, space: Path | None, **kw: Any) -> StudyConfig:
    # confirm_seeds=0: most tests are about the loop, not the champion rule (tests of the
    # confirmation rule set it); the default objective (race_score) comes from the fake too
    base: dict[str, Any] = dict(study_dir=study, trials=5, search_space=space, cooldown=0.0,
                                trial_timeout=20.0, kill_grace=0.5, poll_interval=0.01,
                                trial_command=fake_command(), min_timesteps=1000,
                                max_timesteps=1000, confirm_seeds=0)
    base.update(kw)
    return StudyConfig(**base)


def run_study(study: Path, space: Path | None, **kw: Any) -> tuple[Any, Collect]:
    rep = Collect()
    summary = Controller(make_config(study, space, **kw), rep).run()
    return summary, rep


def records(study: Path) -> list[Any]:
    return Journal(study / "results.jsonl").read().records


def group_gone(pgid: int) -> bool:
    """True if no live process is left in group ``pgid`` (zombies of strangers count as gone)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    from donkeyrl.research.procs import group_members
    return not group_members(pgid)


def live_children(pid: int | None = None) -> list[int]:
    """Live (non-zombie) direct children of ``pid`` (default: this process), from /proc."""
    pid = pid or os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return out
