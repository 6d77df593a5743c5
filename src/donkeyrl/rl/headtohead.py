"""Head-to-head: a model against the scripted expert (and a baseline model) on a track set.

Why: a study's champion is selected on the validation set, so its honest result is measured on
the test set, which nothing ever selected on, next to two references: the scripted expert (a
clean pure-pursuit driver using 75% of the grip) and a documented hand-tuned baseline
configuration trained with the same step budget and seed (:func:`baseline_overrides`). The same
race (:mod:`donkeyrl.rl.race`) is run for every driver on every track.

The result is written as ``head_to_head.json``::

    {"set": "test", "tracks": [...], "methods": {"champion": "...", "expert": "...", ...},
     "rows": [{"method", "track", "lap_rate", "best_lap_time", "mean_lap_time",
               "mean_abs_cte", "off_track_count", "race_score"}, ...],
     "summary": {method: {"lap_rate", "race_score", "mean_lap_time_ratio", "mean_abs_cte",
                          "off_track_count"}}}

and as a fixed-width text table (:func:`format_table`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from donkeyrl.rl.race import TrackRace, expert_race, summarise_races

#: The hand-tuned baseline: the settings a careful user would pick by hand for pixel driving on
#: many tracks (the project's measured PPO defaults, the mixed catalogue + procedural regime and
#: domain randomisation, as the README recommended before studies optimised generalisation).
BASELINE: dict[str, Any] = {
    "agent": "ppo",
    "tracks": ("mixed",),
    "domain_randomization": True,
}


def baseline_overrides(timesteps: int, seed: int) -> dict[str, Any]:
    """Flat trial settings of the baseline trained with ``timesteps`` steps and ``seed``."""
    return {**BASELINE, "timesteps": int(timesteps), "seed": int(seed)}


def rows_for(method: str, races: Sequence[TrackRace]) -> list[dict[str, Any]]:
    """One table row per track for one driver (several races of a track are aggregated)."""
    by_track: dict[str, list[TrackRace]] = {}
    for r in races:
        by_track.setdefault(r.track, []).append(r)
    rows = []
    for track, rs in by_track.items():
        flying = [r.flying_lap_time for r in rs if r.lapped and r.flying_lap_time is not None]
        rows.append({
            "method": method, "track": track, "runs": len(rs),
            "lap_rate": sum(r.lapped for r in rs) / len(rs),
            "best_lap_time": min(flying) if flying else None,
            "mean_lap_time": float(np.mean(flying)) if flying else None,
            "mean_abs_cte": float(np.mean([r.mean_abs_cte for r in rs])),
            "off_track_count": int(sum(r.off_track_count for r in rs)),
            "race_score": float(np.mean([r.race_score for r in rs])),
        })
    return rows


def compare(drivers: Mapping[str, Sequence[TrackRace]], tracks: Sequence[str], set_name: str,
            descriptions: Mapping[str, str] | None = None, *, with_expert: bool = True) -> dict[str, Any]:
    """The head-to-head document of ``drivers`` (method -> races), plus the expert's races."""
    drivers = dict(drivers)
    if with_expert:
        drivers["expert"] = [expert_race(t) for t in tracks]
    given = dict(descriptions or {})
    given.setdefault("expert", "scripted pure-pursuit expert (clean, 75% of grip)")
    desc = {m: given.get(m, m) for m in drivers}
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for method, races in drivers.items():
        rows += rows_for(method, races)
        s = summarise_races(races)
        summary[method] = {k: s.get(k) for k in ("race_score", "lap_rate", "mean_lap_time_ratio",
                                                  "mean_abs_cte", "off_track_count")}
    return {"set": set_name, "tracks": list(tracks), "methods": desc, "rows": rows, "summary": summary}


def _f(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def format_table(doc: Mapping[str, Any]) -> str:
    """The head-to-head as a fixed-width table: per track, per method: laps, best/mean lap, |cte|."""
    methods = list(doc["methods"]) if doc.get("methods") else sorted({r["method"] for r in doc["rows"]})
    cell = 34
    head = f"{'track':<20}" + "".join(f"| {m:<{cell - 2}}" for m in methods)
    sub = f"{'':<20}" + "".join(f"| {'lap   best   mean |cte| off':<{cell - 2}}" for _ in methods)
    lines = [f"head-to-head on the {doc['set']} set ({len(doc['tracks'])} tracks)"]
    lines += [f"  {m}: {d}" for m, d in doc.get("methods", {}).items()]
    lines += [head, sub, "-" * len(head)]
    index = {(r["method"], r["track"]): r for r in doc["rows"]}
    for track in doc["tracks"]:
        line = f"{track[:19]:<20}"
        for m in methods:
            r = index.get((m, track))
            if r is None:
                line += f"| {'-':<{cell - 2}}"
                continue
            text = (f"{_f(r['lap_rate'] * 100, '.0f'):>3}% {_f(r['best_lap_time'], '.2f'):>6} "
                    f"{_f(r['mean_lap_time'], '.2f'):>6} {_f(r['mean_abs_cte'], '.2f'):>5} "
                    f"{r['off_track_count']:>3}")
            line += f"| {text:<{cell - 2}}"
        lines.append(line)
    lines.append("-" * len(head))
    for label, key, spec in (("lap rate", "lap_rate", ".0%"), ("race score", "race_score", ".1f"),
                             ("lap time / expert", "mean_lap_time_ratio", ".3f"),
                             ("mean |cte|", "mean_abs_cte", ".2f"), ("off-track", "off_track_count", "d")):
        line = f"{label:<20}"
        for m in methods:
            line += f"| {_f(doc['summary'].get(m, {}).get(key), spec):<{cell - 2}}"
        lines.append(line)
    lines.append("lap = share of races with a clean flying lap; best/mean = flying lap times (s); "
                 "off = times the car left the road")
    return "\n".join(lines)


def write(doc: Mapping[str, Any], directory: str | Path, stem: str = "head_to_head") -> tuple[Path, Path]:
    """Writes ``<stem>.json`` and ``<stem>.txt`` into ``directory``; returns both paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    js, txt = out / f"{stem}.json", out / f"{stem}.txt"
    tmp = js.with_name(f".{js.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(js)
    txt.write_text(format_table(doc) + "\n")
    return js, txt
