"""``donkeyrl report``: one self-contained HTML page of a study (see donkeyrl.report)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from donkeyrl.cli.common import CLIError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report", help="write an HTML report of a study (history, importance, the champion driving)",
        description="Write one self-contained HTML file about a study (figures embedded, opens offline): "
        "the optimisation history with random vs GP proposals and failures, the champion's progression, "
        "parameter importance (fANOVA), a slice per searched parameter, the GP's posterior along the two "
        "most important parameters, every trial's learning curve, the champion driven on every validation "
        "and test track (driving line by speed, lap times against the scripted expert, |cte|), an animation "
        "of it driving, and the head-to-head table. Reads the study only; the champion's drives are "
        "cached in STUDY_DIR/report-cache/ (keyed by the champion model's sha256).")
    p.add_argument("study_dir", type=Path, metavar="STUDY_DIR", help="the study directory (holds results.jsonl)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="HTML file to write (default: STUDY_DIR/report.html; replaced if it exists)")
    p.add_argument("--no-drive", action="store_true",
                   help="skip driving the champion on the track sets (a report in seconds, without the "
                   "track section and the animation)")
    p.add_argument("--no-cache", action="store_true",
                   help="drive the champion again even when its drives are cached (and refresh the cache)")
    p.set_defaults(func=run)


def check_out(out: Path | None, flag: str = "--out") -> None:
    """Refuses an output path that cannot be a new file, before any work (one clear line)."""
    if out is None:
        return
    if out.is_dir():
        raise CLIError(f"{flag} {out} is a directory; give a file path")
    if not out.parent.exists():
        raise CLIError(f"{flag} {out}: directory {out.parent} does not exist")
    if not out.parent.is_dir():
        raise CLIError(f"{flag} {out}: {out.parent} is not a directory")
    try:  # a file can be created there (read-only mounts, permissions, /proc): known before the work
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".donkeyrl-write-test-"):
            pass
    except OSError as exc:
        raise CLIError(f"{flag} {out}: cannot write in {out.parent}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    from donkeyrl.report import REPORT_NAME, StudyReadError, write_report

    check_out(args.out)
    t0 = time.perf_counter()
    try:
        path = write_report(args.study_dir, args.out, drive=not args.no_drive, use_cache=not args.no_cache)
    except StudyReadError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        target = args.out or args.study_dir / REPORT_NAME
        raise CLIError(f"cannot write the report {target}: {exc.strerror or exc}") from None
    print(f"wrote {path} ({path.stat().st_size // 1024} kB) in {time.perf_counter() - t0:.1f} s")
    return 0
