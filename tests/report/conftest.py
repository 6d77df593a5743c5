"""Session fixtures of the report tests: tiny real models, a study built around one, its report."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from report_fixtures import build_study, train_tiny, tree_digest


@pytest.fixture(scope="session")
def ppo_continuous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("ppo_continuous"), actions="continuous")


@pytest.fixture(scope="session")
def ppo_discrete(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("ppo_discrete"), actions="discrete", seed=1)


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory, ppo_discrete: Path) -> Path:
    """A study directory (read-only for the tests that use it: copy it to change it)."""
    root = tmp_path_factory.mktemp("studies") / "study-a"
    build_study(root, ppo_discrete)
    return root


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory, study: Path) -> dict[str, Any]:
    """The full report (champion driven on all 26 tracks) of a copy of ``study``."""
    from donkeyrl.report import write_report

    root = tmp_path_factory.mktemp("rep") / "study"
    shutil.copytree(study, root)
    before = tree_digest(root)
    t0 = time.perf_counter()
    path = write_report(root)
    seconds = time.perf_counter() - t0
    return {"root": root, "path": path, "page": path.read_text(), "before": before, "seconds": seconds}
