"""The champion: a fold over the trial records, mirrored in ``models/champion/``.

Rule: walking the journal in order, a record becomes champion when it is *usable* (status
``ok``, finite and plausible objective, not flagged for reward hacking), names its model by a
path relative to the study directory without ``..`` (records never point outside the study), and
its objective is strictly greater than the current champion's. Ties keep the earlier champion. TC-004: objectives
[50, 80, 60, 90, 70] make trials 1, 2 and 4 champions. Reward-hacking trials never become
champion: a high but hacked reward is exactly the model nobody wants to demonstrate.

Because the champion is derived from the records, ``models/champion/`` is only a cache: the
model is copied to a temporary file, fsynced and renamed over ``model.zip``, then
``manifest.json`` is written the same way. A crash between the two leaves a manifest naming the
old trial, which ``ensure`` detects (manifest trial or model checksum differ from the fold) and
repairs on the next start.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any
from collections.abc import Iterable

from .files import copy_atomic, write_json_atomic
from .records import TrialRecord, now_iso
from .result import check_model_path

__all__ = ["beats", "fold_champion", "ChampionStore"]

log = logging.getLogger(__name__)


def beats(record: TrialRecord, champion: TrialRecord | None) -> bool:
    """True if ``record`` replaces ``champion`` under the rule of the module docstring."""
    if not record.usable or not record.model_path:
        return False
    path = PurePosixPath(record.model_path)
    if path.is_absolute() or ".." in path.parts:
        return False
    return champion is None or record.objective > champion.objective  # type: ignore[operator]


def fold_champion(records: Iterable[TrialRecord]) -> TrialRecord | None:
    """The champion after all ``records`` (journal order)."""
    champ: TrialRecord | None = None
    for rec in records:
        if beats(rec, champ):
            champ = rec
    return champ


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: Files beside a trial's model.zip copied along with it (the trainer's env/wrapper config).
SIDECAR_FILES = ("trial_config.json",)


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

    def install(self, record: TrialRecord) -> dict[str, Any]:
        """Copy the record's model in atomically, then write the manifest atomically."""
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
        }
        write_json_atomic(self.manifest_path, manifest)
        log.info("champion is now trial %d (%s=%.4g)", record.trial, record.objective_name,
                 record.objective)
        return manifest

    def ensure(self, champion: TrialRecord | None) -> str:
        """Make the directory match the fold's champion; returns what was done."""
        manifest = self.manifest()
        if champion is None:
            return "no champion yet" if manifest is None else (
                f"manifest names trial {manifest.get('trial')} but no record qualifies: left as is")
        if (manifest is not None and manifest.get("trial") == champion.trial
                and self.model.is_file() and manifest.get("sha256") == _sha256(self.model)):
            return f"champion trial {champion.trial} is consistent"
        if not self._source(champion).is_file():
            log.error("champion trial %d: model %s is missing, cannot restore models/champion",
                      champion.trial, champion.model_path)
            return f"champion trial {champion.trial}: model missing"
        try:
            self.install(champion)
        except OSError as exc:  # a full disk or a refused model: the records stay the truth
            log.error("cannot restore models/champion to trial %d: %s", champion.trial, exc)
            return f"champion trial {champion.trial}: cannot restore models/champion ({exc})"
        return f"champion restored to trial {champion.trial}"
