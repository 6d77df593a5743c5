"""``donkeyrl report`` through the real entry point; one short real study end to end (slow)."""

from __future__ import annotations

import html
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from donkeyrl.cli import main


def test_report_command_without_driving(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(study), "--out", str(out), "--no-drive"]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"wrote {out} (") and line.rstrip().endswith(" s")
    page = html.unescape(out.read_text())
    assert "Optimisation history" in page and "Not driven" in page
    assert not (study / "report.html").exists()


@pytest.mark.parametrize("args, pattern", [
    (["/nonexistent_study_xyz"], "study directory /nonexistent_study_xyz does not exist"),
    (["{tmp}"], "is not a study directory: it has no results.jsonl"),
    (["{study}", "--out", "{tmp}"], "is a directory; give a file path"),
    (["{study}", "--out", "/nonexistent_dir_xyz/r.html"], "directory /nonexistent_dir_xyz does not exist"),
])
def test_bad_input_is_one_line(args: list[str], pattern: str, study: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *[a.format(tmp=tmp_path, study=study) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("donkeyrl report: error:") and pattern in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_one_line_before_any_work(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """/proc takes no new files, not even from root: refused before the study is read."""
    if not Path("/proc/self").exists():
        pytest.skip("needs Linux's /proc")
    t0 = time.perf_counter()
    assert main(["report", str(study), "--out", "/proc/r.html"]) == 2
    assert time.perf_counter() - t0 < 2.0  # no drive, no figure
    err = capsys.readouterr().err
    assert err.startswith("donkeyrl report: error: --out /proc/r.html: cannot write in /proc:")
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.slow
def test_real_study_then_report_then_browser(tmp_path: Path) -> None:
    """`donkeyrl research` (3 tiny real trials), then `donkeyrl report` on it, opened in Chromium."""
    from test_browser import open_in_chromium

    study = tmp_path / "night"
    cmd = [sys.executable, "-m", "donkeyrl", "research", "--study-dir", str(study), "--trials", "3",
           "--n-initial", "2", "--min-timesteps", "200", "--max-timesteps", "300", "--eval-episodes", "1",
           "--cooldown", "0", "--trial-timeout", "300", "--train-arg=--n-envs", "--train-arg=1",
           "--train-arg=--max-steps", "--train-arg=200", "--confirm-seeds", "0", "--no-final-test"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = subprocess.run([sys.executable, "-m", "donkeyrl", "report", str(study)], capture_output=True,
                            text=True, timeout=600)
    assert report.returncode == 0, report.stderr[-2000:]
    page = html.unescape((study / "report.html").read_text())
    records = [json.loads(line) for line in (study / "results.jsonl").read_text().splitlines()]
    assert len(records) == 3
    for r in records:
        assert f">{r['trial']}<" in (study / "report.html").read_text()
    assert "Validation set: lapped" in page and "Test set: lapped" in page
    # curves written by the trainer are drawn (no trial lacks one)
    assert "have no curve recorded" not in page and "No curve recorded" not in page
    images, errors, _ = open_in_chromium(study / "report.html", tmp_path)
    assert errors == [] and images and all(i["width"] > 0 for i in images)
