"""Proposals of a two-objective study (``--objective pareto``): ParEGO over the GP+UCB optimizer.

The study minimises the validation set's lap time relative to the expert
(``validation_lap_time_ratio_penalised``) and its mean |cte| (``validation_mean_abs_cte``):
"fast and centred", which one score can only trade off at a fixed rate. For every proposal
(ParEGO, Knowles 2006; the math is in :mod:`donkeyrl.bo.pareto`):

1. draw a new weight vector ``w`` uniformly from the simplex;
2. scalarise every usable observation with the augmented Chebyshev function of the normalised
   objectives (lower is better) and tell its negation to a *fresh* ``Optimizer`` (which
   maximises), failed trials as failures;
3. ask that optimizer for the proposal(s), with the running trials as pending.

A fresh GP per proposal costs one cold hyperparameter fit (milliseconds to a fraction of a
second at a few hundred trials, small beside a trial). Random weights spread the proposals along
the whole front instead of collapsing onto one trade-off. The front itself and the champion
(the front member with the highest race score) are folded from the journal (champion.py).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from donkeyrl.bo import Candidate, Optimizer, SearchSpace, SearchSpaceError
from donkeyrl.bo.pareto import chebyshev, random_weights

from .records import PARETO_OBJECTIVES, TrialRecord, implausible

__all__ = ["ParetoProposer"]

log = logging.getLogger(__name__)


@dataclass
class _Observation:
    params: dict[str, Any]
    values: tuple[float, ...] | None
    """The two objective values; None for a failed trial."""


class ParetoProposer:
    """ParEGO proposals (see the module docstring); ``ask_batch`` like ``Optimizer``'s."""

    def __init__(self, space: SearchSpace, kappa: float | None, n_initial: int, seed: int) -> None:
        self.space = space
        self.kappa = kappa
        self.n_initial = n_initial
        self.rng = np.random.default_rng(seed)
        self.observations: list[_Observation] = []
        self.last_candidates: list[Candidate] = []
        """Top candidates of the last proposal, in negated scalarised units."""
        self.last_weights: np.ndarray | None = None
        """The weight vector of the last proposal (one weight per objective)."""

    def tell_records(self, records: Iterable[TrialRecord], source: str) -> tuple[int, int]:
        """Learn from ``records`` like ``study.tell_records``; returns (told, skipped)."""
        told = skipped = 0
        for rec in records:
            if rec.run_status == "interrupted" or rec.reward_hacking:
                continue
            values: tuple[float, ...] | None = None
            if rec.run_status == "ok":
                raw = [rec.value_of(k) for k in PARETO_OBJECTIVES]
                if any(v is None or not math.isfinite(v) or implausible(k, v)
                       for k, v in zip(PARETO_OBJECTIVES, raw)):
                    log.warning("%s trial %d lacks a usable %s: skipped", source, rec.trial,
                                " / ".join(PARETO_OBJECTIVES))
                    skipped += 1
                    continue
                values = tuple(float(v) for v in raw)  # type: ignore[arg-type]
            try:
                self.space.encode(rec.params)
            except (SearchSpaceError, ValueError, TypeError, OverflowError) as exc:
                log.warning("%s trial %d does not fit the search space: %s", source, rec.trial, exc)
                skipped += 1
                continue
            self.observations.append(_Observation(dict(rec.params), values))
            told += 1
        return told, skipped

    def _optimizer(self, weights: np.ndarray) -> Optimizer:
        opt = Optimizer(self.space, kappa=self.kappa, n_initial=self.n_initial,
                        seed=int(self.rng.integers(2**31)))
        ok = [o for o in self.observations if o.values is not None]
        if ok:
            scores = chebyshev(np.array([o.values for o in ok]), weights)
            for o, s in zip(ok, scores):
                opt.tell(o.params, -float(s))
        for o in self.observations:
            if o.values is None:
                opt.tell(o.params, None, status="failed")
        return opt

    def ask_batch(self, n: int, pending: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
        """``n`` proposals, each under a new random weight vector (earlier ones of the batch are
        pending for the later ones, so they differ)."""
        out: list[dict[str, Any]] = []
        candidates: list[Candidate] = []
        for i in range(n):
            self.last_weights = random_weights(self.rng, len(PARETO_OBJECTIVES))
            opt = self._optimizer(self.last_weights)
            out += opt.ask_batch(1, [*pending, *out])
            if i == 0:
                candidates = list(opt.last_candidates)
        self.last_candidates = candidates
        return out
