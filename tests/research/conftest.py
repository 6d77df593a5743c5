"""Fixtures of the research controller tests (helpers live in research_helpers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from research_helpers import SMALL_SPACE


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    """A 2-parameter search space (learning_rate, n_steer): fast GP proposals."""
    p = tmp_path / "space.json"
    p.write_text(json.dumps(SMALL_SPACE))
    return p
