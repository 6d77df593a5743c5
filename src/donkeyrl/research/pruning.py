"""Early stopping of hopeless trials: decide from checkpoint scores whether a running trial stops.

Why: most trials of a study are visibly worse than their peers long before their training budget
is spent; stopping them frees the machine for new proposals (multi-fidelity search, as Ray
Tune's ASHA scheduler and Optuna's pruners do). The trainer reports the validation objective at
a few fractions of its budget (rl/checkpoints.py, ``progress.jsonl``); these fractions are the
*rungs*. Everything here is a pure function over those reports: the controller passes the
reports of every trial of the study (finished, pruned and running) and acts on the decision.

Notation: a trial reaches rung ``f`` when it reports a checkpoint at fraction ``f`` of its own
budget, with score ``s`` (the study's objective: ``race_score`` by default). ``peers(f)`` are
the scores that *other* trials reported at rung ``f`` (running, finished or stopped ones).

Rules (``PruneConfig.rule``):

- ``none``: never stop a trial.
- ``asha`` (asynchronous successive halving, Li et al. 2020, stopping variant): with the
  reduction factor ``eta``, a trial continues past rung ``f`` only if its score is among the top
  ``max(1, n // eta)`` of the ``n`` scores at that rung (its own included):
  ``cut = sorted(peers(f) + [s], descending)[max(1, n // eta) - 1]``, stop if ``s < cut``.
  With ``eta = 3`` about a third of the trials survive each rung.
- ``median`` (the median stopping rule of Google Vizier): stop if ``s < median(peers(f))``.

Either rule stops a trial only when its score is *clearly* below the cut: ``s < cut - min_delta``
(``PruneConfig.min_delta``, in the objective's units; default :data:`DEFAULT_MIN_DELTA`). Why:
before a car has learned to drive, its checkpoint race score measures how far a random-ish
policy rolls before crashing (1.2 to 3.4 for every trial at the first rung of the benchmark in
benchmarks/README.md, whatever its final score: 2.5 or 98), so ranking trials by it stops
late learners at random; the margin keeps a rung from deciding anything until some trials
have separated from that noise floor, and then stops those still on it. Pure ASHA (no margin)
is ``min_delta=0``.

Either rule decides nothing at a rung until at least ``min_peers`` other trials reported there
(early in a study there is nothing to compare with), and a trial is judged once per rung: at the
moment it reports there (a later, better peer does not stop a trial that already passed). Ties
continue. A checkpoint without a value for the objective is never a reason to stop.

Trials of different budgets (a searched ``timesteps``) meet at the same fractions of their own
budgets, not at the same step counts: a rung is "a quarter of the way", whatever the budget.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from donkeyrl.rl.checkpoints import CHECKPOINT_FRACTIONS, VALUE_KEYS, ProgressPoint

__all__ = ["PRUNE_RULES", "CHECKPOINT_OBJECTIVES", "DEFAULT_MIN_DELTA", "PruneConfig", "PruneDecision", "rung_scores",
           "asha_cut", "median_cut",
           "unjudged_rung", "decide"]

PRUNE_RULES = {
    "none": "never stop a trial early",
    "asha": "asynchronous successive halving: continue only in the top 1/eta of a rung",
    "median": "median stopping rule: stop below the median of the other trials at a rung",
}
"""Rules by name (``donkeyrl research --prune``)."""

CHECKPOINT_OBJECTIVES = VALUE_KEYS
"""Objectives a study with early stopping may have: those the checkpoints report."""

DEFAULT_MIN_DELTA = {"race_score": 5.0, "validation_lap_rate": 0.1}
"""The default margin below the cut, per objective (see the module docstring): 5 points of the
mean race score (untrained cars differ by up to ~2 among themselves), one track in ten of the lap
rate."""

_FRACTION_TOLERANCE = 1e-6
"""Fractions are compared with this tolerance (they travel through JSON as floats)."""


@dataclass(frozen=True)
class PruneConfig:
    """How trials are stopped early (the ``--prune*`` flags of ``donkeyrl research``)."""

    rule: str = "none"
    """One of :data:`PRUNE_RULES`."""
    fractions: tuple[float, ...] = CHECKPOINT_FRACTIONS
    """The rungs: fractions of each trial's budget at which it reports a checkpoint score."""
    reduction_factor: int = 3
    """ASHA's eta: a trial continues when among the top 1/eta at a rung."""
    min_peers: int = 3
    """Scores of other trials needed at a rung before anything is stopped there."""
    objective: str = "race_score"
    """The checkpoint value compared (the study's objective)."""
    min_delta: float | None = None
    """A trial stops only when below the cut by more than this (objective units); None: the
    objective's :data:`DEFAULT_MIN_DELTA`."""

    def __post_init__(self) -> None:
        if self.rule not in PRUNE_RULES:
            raise ValueError(f"prune rule {self.rule!r} is not one of {', '.join(PRUNE_RULES)}")
        if self.reduction_factor < 2:
            raise ValueError(f"reduction factor {self.reduction_factor} must be >= 2")
        if self.min_peers < 1:
            raise ValueError(f"min_peers {self.min_peers} must be >= 1")
        if self.rule != "none" and not self.fractions:
            raise ValueError("early stopping needs at least one checkpoint fraction")
        if any(not 0.0 < f < 1.0 for f in self.fractions):
            raise ValueError(f"checkpoint fractions {list(self.fractions)} must be in (0, 1)")
        if self.min_delta is not None and not self.min_delta >= 0:
            raise ValueError(f"min_delta {self.min_delta} must be >= 0")

    @property
    def margin(self) -> float:
        """The margin in force (``min_delta``, or the objective's default)."""
        if self.min_delta is not None:
            return float(self.min_delta)
        return DEFAULT_MIN_DELTA.get(self.objective, 0.0)

    @property
    def enabled(self) -> bool:
        return self.rule != "none"


@dataclass(frozen=True)
class PruneDecision:
    """A trial to stop, and why."""

    trial: int
    fraction: float
    steps: int
    score: float
    cut: float
    peers: int
    """Other trials' scores the cut was computed from."""
    rule: str
    margin: float = 0.0
    """The ``min_delta`` in force: the trial was more than this below the cut."""

    @property
    def message(self) -> str:
        below = f"below the cut {self.cut:.4g}" + (f" by more than {self.margin:g}" if self.margin else "")
        return (f"stopped early ({self.rule}): {self.score:.4g} at {self.fraction:.0%} of its "
                f"budget ({self.steps} steps) is {below} of that rung ({self.peers} other trials)")


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _FRACTION_TOLERANCE


def _at(points: Sequence[ProgressPoint], fraction: float) -> ProgressPoint | None:
    """The (first) checkpoint at ``fraction``, or None."""
    return next((p for p in points if _same(p.fraction, fraction)), None)


def rung_scores(history: Mapping[int, Sequence[ProgressPoint]], fraction: float, objective: str,
                exclude: int | None = None) -> list[float]:
    """The scores reported at rung ``fraction`` by every trial of ``history`` but ``exclude``."""
    out = []
    for trial, points in history.items():
        if trial == exclude:
            continue
        p = _at(points, fraction)
        value = p.value_of(objective) if p is not None else None
        if value is not None:
            out.append(value)
    return out


def asha_cut(scores: Iterable[float], eta: int) -> float:
    """The lowest score that is still in the top ``max(1, n // eta)`` of ``scores``."""
    ranked = sorted(scores, reverse=True)
    if not ranked:
        raise ValueError("no scores at this rung")
    return ranked[max(1, len(ranked) // eta) - 1]


def median_cut(scores: Iterable[float]) -> float:
    """The median of ``scores``."""
    return float(statistics.median(list(scores)))


def unjudged_rung(points: Sequence[ProgressPoint], fractions: Sequence[float],
                  judged: Iterable[float]) -> ProgressPoint | None:
    """The trial's latest checkpoint at a rung it was not judged at yet (None: nothing new).

    Earlier unjudged rungs are skipped: a trial is judged on its newest report.
    """
    done = list(judged)
    for p in reversed(points):
        if any(_same(p.fraction, f) for f in fractions):
            return None if any(_same(p.fraction, d) for d in done) else p
    return None


def decide(cfg: PruneConfig, trial: int, point: ProgressPoint,
           history: Mapping[int, Sequence[ProgressPoint]]) -> PruneDecision | None:
    """Whether ``trial``, reporting ``point`` at a rung, stops (see the module docstring).

    ``history`` holds the checkpoints of every trial of the study (``trial``'s own entry, if
    any, is ignored).
    """
    if not cfg.enabled:
        return None
    score = point.value_of(cfg.objective)
    if score is None:
        return None
    peers = rung_scores(history, point.fraction, cfg.objective, exclude=trial)
    if len(peers) < cfg.min_peers:
        return None
    if cfg.rule == "asha":
        cut = asha_cut([*peers, score], cfg.reduction_factor)
    else:
        cut = median_cut(peers)
    if score >= cut - cfg.margin:
        return None
    return PruneDecision(trial=trial, fraction=point.fraction, steps=point.steps, score=score,
                         cut=cut, peers=len(peers), rule=cfg.rule, margin=cfg.margin)
