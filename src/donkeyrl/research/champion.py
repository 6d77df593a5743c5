"""The champion: a fold over the trial records, mirrored in ``models/champion/``.

A record is *eligible* when it is usable (status ``ok``, finite and plausible objective, not
flagged for reward hacking) and names its model by a path relative to the study directory
without ``..`` (records never point outside the study). Reward-hacking trials are never
eligible: a high but hacked reward is exactly the model nobody wants to demonstrate.

The rule (:class:`ChampionRule`: ``confirm_seeds`` = K, ``n_initial``, ``pareto``), walking the
journal in order (``interrupted`` records are skipped: they measured nothing):

**K = 0 (no confirmation).** A record becomes champion when it is eligible and its objective is
strictly greater than the current champion's. Ties keep the earlier champion. TC-004: objectives
[50, 80, 60, 90, 70] make trials 1, 2 and 4 champions.

**K > 0 (champions confirmed on fresh seeds).** One lucky seed must not win a study (tuned RL
configurations that do not reproduce across seeds are the field's most common complaint), so a
configuration is crowned by its mean objective over K + 1 runs:

1. A *candidate* is an eligible trial that is not a confirmation run and whose objective is
   strictly greater than the champion's confirmed mean (or there is no champion).
2. Random phase: among the first ``n_initial`` finished trials of the study that are not
   confirmation runs (the optimizer proposes those at random) no candidate is confirmed; when the
   phase ends, its best eligible trial is the candidate. This saves K runs per random trial.
3. One candidate is confirmed at a time, in journal order; later candidates wait in a queue and
   are checked again against the champion when their turn comes.
4. Confirming a candidate = K *confirmation runs*: ordinary trials with the candidate's params,
   their own trial numbers and seeds (``--seed`` + trial number, fresh by construction) and
   ``confirms`` = the candidate's trial. The controller schedules them before new proposals;
   they count towards ``--trials``; a confirmation in progress when ``--trials`` is reached is
   still completed (so a study runs at most K trials past ``--trials``). Every run is told to
   the optimizer: replicates at one point let the GP learn the noise.
5. A confirmation run that is not eligible (it failed, timed out, or was flagged) makes the
   configuration not crownable: it is dropped at once. Interrupted runs are run again.
6. When the candidate has K eligible confirmation runs, its *mean* objective over the K + 1 runs
   is compared with the champion's mean: strictly greater crowns the configuration. The model
   installed is the configuration's run with the best objective (selection on the validation
   set, which is what it is for; the test set is never used to select anything).

**Pareto** (``--objective pareto``, two minimised objectives, no confirmation: a replicate of
one point of a front does not say which trade-off to keep): the front is the set of eligible
records that no other eligible record dominates; the champion is the front member with the
highest race score (the record's ``objective``; ties: the earlier trial). A new record can
push the champion off the front; the next best front member is then crowned, even if earlier.

Each record stores what its own arrival caused: ``champion`` and ``crowned`` (the installed
trial), and under Pareto ``pareto_front``. Because the champion is a pure fold over the journal,
a resumed controller, the repair of ``models/champion`` and independent checkers
(benchmarks/soak.py) derive the same champion, and the pending confirmation (the candidate and
how many runs it still needs) is rebuilt from the journal on restart.

``models/champion/`` is only a cache: the model is copied to a temporary file, fsynced and
renamed over ``model.zip``, then ``manifest.json`` (which also names the configuration's runs
and their mean) is written the same way. A crash between the two leaves a manifest naming the
old trial, which ``ensure`` detects (manifest trial or model checksum differ from the fold) and
repairs on the next start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .files import copy_atomic, write_json_atomic
from .records import PARETO, PARETO_OBJECTIVES, TrialRecord, now_iso
from .result import check_model_path

__all__ = ["ChampionRule", "Crowning", "Step", "ChampionFold", "beats", "eligible", "fold",
           "fold_champion", "recorded_champion", "ChampionStore"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChampionRule:
    """How a champion is chosen (see the module docstring)."""

    confirm_seeds: int = 0
    """K: confirmation runs on fresh seeds before a configuration is crowned (0: none)."""
    n_initial: int = 0
    """Finished non-confirmation trials of the random phase (used only when K > 0)."""
    pareto: bool = False
    """Two-objective study: the champion is the front member with the highest race score."""

    @classmethod
    def from_study(cls, info: Mapping[str, Any]) -> ChampionRule:
        """The rule a study was created with, from its ``study.json`` (readers such as the
        report; a study created before confirmation existed gets the single-run rule)."""
        def integer(key: str) -> int:
            value = info.get(key, 0)
            return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

        pareto = info.get("objective") == PARETO
        return cls(confirm_seeds=0 if pareto else integer("confirm_seeds"),
                   n_initial=integer("n_initial"), pareto=pareto)

    def __post_init__(self) -> None:
        if self.confirm_seeds < 0:
            raise ValueError(f"confirm_seeds={self.confirm_seeds} must be >= 0 (0 disables "
                             "confirmation)")
        if self.pareto and self.confirm_seeds:
            raise ValueError("confirmation runs are not used with the pareto objective "
                             "(set confirm_seeds=0)")


@dataclass(frozen=True)
class Crowning:
    """A crowned configuration: the model installed and the runs it was judged by."""

    record: TrialRecord
    """The run whose model is installed (the best run of the configuration)."""
    origin: int
    """The trial that first ran the configuration (the candidate)."""
    runs: tuple[TrialRecord, ...]
    """The candidate and its confirmation runs (one record without confirmation)."""

    @property
    def mean(self) -> float:
        """Mean objective over ``runs`` (what later candidates must beat)."""
        return math.fsum(float(r.objective) for r in self.runs) / len(self.runs)  # type: ignore[arg-type]

    @property
    def trial(self) -> int:
        return self.record.trial

    def manifest_fields(self) -> dict[str, Any]:
        """The configuration's part of ``manifest.json``."""
        return {"configuration_trial": self.origin, "mean_objective": self.mean,
                "runs": [{"trial": r.trial, "seed": r.seed, "objective": r.objective,
                          "model_path": r.model_path, "confirms": r.confirms} for r in self.runs]}


@dataclass
class Step:
    """What one record caused when it was folded in."""

    crowned: Crowning | None = None
    """The new champion, when this record crowned one."""
    candidate: int | None = None
    """The trial whose confirmation starts now (its runs are to be scheduled)."""
    dropped: tuple[int, str] | None = None
    """A configuration whose confirmation ended without a crowning, and why."""
    pareto_front: list[int] | None = None
    """Under Pareto: the front's trial numbers after this record."""


def eligible(record: TrialRecord) -> bool:
    """Usable, with a model inside the study (see the module docstring)."""
    if not record.usable or not record.model_path:
        return False
    path = PurePosixPath(record.model_path)
    return not path.is_absolute() and ".." not in path.parts


def beats(record: TrialRecord, champion: TrialRecord | None) -> bool:
    """The single-run rule (K = 0): True if ``record`` replaces ``champion``."""
    if not eligible(record):
        return False
    return champion is None or record.objective > champion.objective  # type: ignore[operator]


def _best(runs: Iterable[TrialRecord]) -> TrialRecord:
    """The run with the highest objective; ties: the earliest."""
    best: TrialRecord | None = None
    for r in runs:
        if best is None or r.objective > best.objective:  # type: ignore[operator]
            best = r
    assert best is not None
    return best


@dataclass
class _Group:
    """A candidate under confirmation."""

    origin: TrialRecord
    runs: list[TrialRecord] = field(default_factory=list)


class ChampionFold:
    """The fold of the module docstring, one record at a time (``step``)."""

    def __init__(self, rule: ChampionRule | None = None) -> None:
        self.rule = rule or ChampionRule()
        self.champion: Crowning | None = None
        self.active: _Group | None = None
        """The candidate being confirmed (K > 0)."""
        self.waiting: deque[TrialRecord] = deque()
        """Candidates queued behind the active one."""
        self.front: list[TrialRecord] = []
        """Pareto: the current front (journal order)."""
        self._ordinary = 0
        self._phase_best: TrialRecord | None = None

    # --- queries ----------------------------------------------------------------------------
    @property
    def champion_record(self) -> TrialRecord | None:
        return self.champion.record if self.champion else None

    @property
    def pending(self) -> TrialRecord | None:
        """The candidate whose confirmation runs are still needed, or None."""
        return self.active.origin if self.active else None

    def runs_needed(self) -> int:
        """Eligible confirmation runs the active candidate still needs."""
        if self.active is None:
            return 0
        return self.rule.confirm_seeds - len(self.active.runs)

    def _beats_champion(self, record: TrialRecord) -> bool:
        return self.champion is None or record.objective > self.champion.mean  # type: ignore[operator]

    # --- the fold ---------------------------------------------------------------------------
    def step(self, record: TrialRecord) -> Step:
        """Fold in one record; returns what it caused (the record itself is not changed)."""
        out = Step()
        if self.rule.pareto:
            self._step_pareto(record, out)
        elif record.run_status != "interrupted":
            if record.confirms is not None:
                self._step_confirmation(record, out)
            else:
                self._step_ordinary(record, out)
        return out

    def _crown(self, crowning: Crowning, out: Step) -> None:
        self.champion = crowning
        out.crowned = crowning

    def _step_ordinary(self, record: TrialRecord, out: Step) -> None:
        k = self.rule.confirm_seeds
        self._ordinary += 1
        ok = eligible(record)
        if k == 0:
            if ok and self._beats_champion(record):
                self._crown(Crowning(record, record.trial, (record,)), out)
            return
        if self._ordinary <= self.rule.n_initial:
            if ok and (self._phase_best is None
                       or record.objective > self._phase_best.objective):  # type: ignore[operator]
                self._phase_best = record
            if self._ordinary == self.rule.n_initial and self._phase_best is not None:
                self._candidate(self._phase_best, out)
            return
        if ok and self._beats_champion(record):
            self._candidate(record, out)

    def _candidate(self, record: TrialRecord, out: Step) -> None:
        if self.active is None:
            self.active = _Group(record)
            out.candidate = record.trial
        else:
            self.waiting.append(record)

    def _step_confirmation(self, record: TrialRecord, out: Step) -> None:
        group = self.active
        if group is None or record.confirms != group.origin.trial:
            return  # a run of a configuration already dropped (or a foreign rule): no effect
        if not eligible(record):
            self._resolve(out, f"confirmation run {record.trial} is not usable "
                               f"({record.run_status})")
            return
        group.runs.append(record)
        if len(group.runs) >= self.rule.confirm_seeds:
            self._resolve(out, "")

    def _resolve(self, out: Step, failure: str) -> None:
        """End the active candidate's confirmation: crown it or drop it, then start the next."""
        group = self.active
        assert group is not None
        self.active = None
        if not failure:
            runs = (group.origin, *group.runs)
            crowning = Crowning(_best(runs), group.origin.trial, runs)
            if self._beats_champion_mean(crowning.mean):
                self._crown(crowning, out)
            else:
                failure = (f"mean {crowning.mean:.4g} over {len(runs)} runs does not beat the "
                           f"champion's {self.champion.mean:.4g}")  # type: ignore[union-attr]
        if failure:
            out.dropped = (group.origin.trial, failure)
        while self.waiting:
            nxt = self.waiting.popleft()
            if self._beats_champion(nxt):
                self.active = _Group(nxt)
                out.candidate = nxt.trial
                break

    def _beats_champion_mean(self, mean: float) -> bool:
        return self.champion is None or mean > self.champion.mean

    def _step_pareto(self, record: TrialRecord, out: Step) -> None:
        # Adding a point to a front: it joins unless a front member dominates it (a dominated
        # point's dominator is dominated by a front member, or is one), and it removes the
        # members it dominates. O(front) per record, so replaying a long journal stays fast.
        from donkeyrl.bo.pareto import dominates

        if record.run_status != "interrupted" and eligible(record):
            point = _point(record)
            if not any(dominates(_point(r), point) for r in self.front):
                self.front = [r for r in self.front if not dominates(point, _point(r))] + [record]
        out.pareto_front = [r.trial for r in self.front]
        if self.front:
            best = _best(self.front)
            if self.champion is None or best.trial != self.champion.record.trial:
                self._crown(Crowning(best, best.trial, (best,)), out)


def _point(record: TrialRecord) -> np.ndarray:
    """The record's Pareto objectives, in ``PARETO_OBJECTIVES`` order."""
    return np.array([record.objectives[k] for k in PARETO_OBJECTIVES], dtype=float)


def fold(records: Iterable[TrialRecord], rule: ChampionRule | None = None) -> ChampionFold:
    """The fold's state after all ``records`` (journal order)."""
    state = ChampionFold(rule)
    for rec in records:
        state.step(rec)
    return state


def fold_champion(records: Iterable[TrialRecord], rule: ChampionRule | None = None) -> TrialRecord | None:
    """The champion's record (the installed run) after all ``records`` under ``rule``
    (default: the single-run rule, K = 0)."""
    return fold(records, rule).champion_record


def recorded_champion(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The champion as the records say it (the last ``crowned`` trial), for readers that do not
    know the study's rule; None when no record crowned one."""
    by_trial = {r.trial: r for r in records}
    for rec in reversed(records):
        trial = rec.crowned_trial
        if trial is not None and trial in by_trial:
            return by_trial[trial]
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file (the champion's identity in the manifest and the final test)."""
    return _sha256(path)


#: Files beside a trial's model.zip copied along with it (the trainer's env/wrapper config).
SIDECAR_FILES = ("trial_config.json",)


def _crowning(champion: Crowning | TrialRecord) -> Crowning:
    if isinstance(champion, Crowning):
        return champion
    return Crowning(champion, champion.trial, (champion,))


class ChampionStore:
    """``<study>/models/champion/{model.zip,manifest.json}``."""

    def __init__(self, study_dir: Path) -> None:
        self.study_dir = Path(study_dir)
        self.dir = self.study_dir / "models" / "champion"
        self.model = self.dir / "model.zip"
        self.manifest_path = self.dir / "manifest.json"

    def manifest(self) -> dict[str, Any] | None:
        """The current manifest, or None if missing or unreadable."""
        try:
            data = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _source(self, record: TrialRecord) -> Path:
        p = Path(record.model_path or "")
        return p if p.is_absolute() else self.study_dir / p

    def install(self, champion: Crowning | TrialRecord) -> dict[str, Any]:
        """Copy the champion's model in atomically, then write the manifest atomically."""
        crowning = _crowning(champion)
        record = crowning.record
        src = self._source(record)
        refused = check_model_path(src, self.study_dir / "models")
        if refused:
            raise OSError(f"champion trial {record.trial}: {refused}")
        self.dir.mkdir(parents=True, exist_ok=True)
        # The files beside model.zip that rebuild its env and wrappers (``donkeyrl evaluate``
        # needs them to demonstrate the champion without retraining) come along first.
        for name in SIDECAR_FILES:
            if (src.parent / name).is_file():
                copy_atomic(src.parent / name, self.dir / name)
        copy_atomic(src, self.model)
        manifest = {
            "trial": record.trial, "timestamp": record.timestamp, "installed_at": now_iso(),
            "params": record.params, "mean_reward": record.mean_reward,
            "std_reward": record.std_reward, "objective_name": record.objective_name,
            "objective": record.objective, "driving_score": record.driving_score,
            "model_path": str(self.model.relative_to(self.study_dir)),
            "source_model_path": record.model_path, "sha256": _sha256(self.model),
            "metrics": record.metrics, "seed": record.seed,
            **crowning.manifest_fields(),
        }
        if record.objectives:
            manifest["objectives"] = record.objectives
        write_json_atomic(self.manifest_path, manifest)
        log.info("champion is now trial %d (%s=%.4g, mean %.4g over %d run(s))", record.trial,
                 record.objective_name, record.objective, crowning.mean, len(crowning.runs))
        return manifest

    def ensure(self, champion: Crowning | TrialRecord | None) -> str:
        """Make the directory match the fold's champion; returns what was done."""
        manifest = self.manifest()
        if champion is None:
            return "no champion yet" if manifest is None else (
                f"manifest names trial {manifest.get('trial')} but no record qualifies: left as is")
        crowning = _crowning(champion)
        record = crowning.record
        runs = [r.trial for r in crowning.runs]
        if (manifest is not None and manifest.get("trial") == record.trial
                and [r.get("trial") for r in manifest.get("runs") or [{"trial": record.trial}]
                     if isinstance(r, dict)] == runs
                and self.model.is_file() and manifest.get("sha256") == _sha256(self.model)):
            return f"champion trial {record.trial} is consistent"
        if not self._source(record).is_file():
            log.error("champion trial %d: model %s is missing, cannot restore models/champion",
                      record.trial, record.model_path)
            return f"champion trial {record.trial}: model missing"
        try:
            self.install(crowning)
        except OSError as exc:  # a full disk or a refused model: the records stay the truth
            log.error("cannot restore models/champion to trial %d: %s", record.trial, exc)
            return f"champion trial {record.trial}: cannot restore models/champion ({exc})"
        return f"champion restored to trial {record.trial}"
