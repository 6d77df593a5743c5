"""Upper bounds of a study's settings, in one light module (the CLI imports it at start-up).

Why bounds at all: an absurd value (``--workers 100000``, ``--max-timesteps 10**30``) must be
refused with one line before anything runs, not crash a numeric routine an hour later.
"""

from __future__ import annotations

__all__ = ["MAX_WORKERS", "MAX_TIMESTEPS", "MAX_TRIALS", "SEED_LIMIT", "MAX_CONFIRM_SEEDS"]

MAX_WORKERS = 64
"""Most parallel trials on one machine (each trial is at least one process with its env)."""

MAX_TIMESTEPS = 10**9
"""Largest searched ``timesteps`` (a billion steps is weeks of training on a CPU)."""

MAX_TRIALS = 10**6
"""Largest ``trials`` of a study."""

SEED_LIMIT = 2**32
"""Seeds of numpy / torch / gymnasium must be below this; trial N trains with ``seed + N``."""

MAX_CONFIRM_SEEDS = 100
"""Most confirmation runs per candidate champion (``--confirm-seeds``)."""
