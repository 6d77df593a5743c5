"""Session fixtures of the report tests: tiny real models and a study built around one."""

from __future__ import annotations

from pathlib import Path

import pytest

from report_fixtures import build_study, train_tiny


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
