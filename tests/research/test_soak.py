"""A short run of the fault-injection soak (benchmarks/soak.py; the full run is recorded in
benchmarks/README.md): SIGKILLs, journal damage and a full disk, all survived."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.slow
def test_short_soak_survives_every_fault():
    proc = subprocess.run([sys.executable, str(SOAK), "--restarts", "5", "--trials", "4",
                           "--disk-rounds", "2", "--disk-trials", "6", "--seed", "7", "--json"],
                          capture_output=True, text=True, timeout=600)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, out["problems"]
    assert out["kills"] == 5 and out["faults_injected"] >= 5
    assert out["faults_survived"] == out["faults_injected"]
    for key in ("records_lost", "records_duplicated", "partial_records", "orphans",
                "temp_files_left", "champion_mismatches", "trials_over_limit", "journal_shrunk",
                "tracebacks"):
        assert out[key] == 0, key
