"""The champion on every validation and test track: traces, lap times against the expert, figures.

One episode per track: a single lap from the standard start (no start noise, like the expert's
reference lap of :func:`donkeyrl.rl.evaluate.expert_lap_time`), capped at twice the expert's lap
time plus :data:`CAP_SLACK_SEC` so that a slow or stuck champion cannot make a report take long.
All tracks are driven together (see :mod:`donkeyrl.report.driving`); then the first validation
track the champion lapped (else the first one) is driven once more with the camera on, for the
report's animation (the policy is deterministic and the start fixed, so it is the same lap).

Cost and cache: driving ~26 tracks takes tens of seconds, so the traces and the animation are
cached in ``<study>/report-cache/`` under the first 16 hex digits of the champion model's
sha256 (plus :data:`DRIVE_VERSION` and the track list inside the file). A new champion gets a new
entry and the old entry's files are removed; a cache that cannot be written (read-only study)
only costs the time again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from donkeyrl.report.driving import DriveTrace, drive_tracks
from donkeyrl.report.study import StudyData
from donkeyrl.report.video import SPEED_RANGE, FrameComposer, thin_frames, webp_bytes
from donkeyrl.research.files import write_bytes_atomic

__all__ = ["ChampionDrives", "CACHE_DIR", "DRIVE_VERSION", "champion_drives", "champion_model_path",
           "map_figure", "cte_figure", "lap_time_figure", "track_rows"]

log = logging.getLogger(__name__)

#: Cache directory inside the study (only the report writes there).
CACHE_DIR = "report-cache"
#: Bump when the drive protocol changes, so old cache entries are not reused.
DRIVE_VERSION = 3
#: Seconds added to twice the expert's lap time for the episode's step cap.
CAP_SLACK_SEC = 5.0
#: Step cap on a track without an expert lap time (open road).
DEFAULT_CAP_STEPS = 1500
#: The animation: at most this many frames, played at this rate.
ANIMATION_MAX_FRAMES = 160
ANIMATION_FPS = 10


@dataclass
class ChampionDrives:
    """The champion's drives (one per track) and what they cost."""

    trial: int | None
    sha256: str
    sets: dict[str, list[str]]
    traces: dict[str, DriveTrace]
    expert: dict[str, float | None]
    animation: bytes | None = None
    animation_track: str | None = None
    seconds: float = 0.0
    """Wall time spent driving for this report (0 when every drive came from the cache)."""
    from_cache: bool = False
    notes: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def champion_model_path(data: StudyData) -> Path | None:
    """``models/champion`` when it holds a model and its trial config, else the champion trial's
    own directory (older studies copied no config), else None."""
    from donkeyrl.rl.config import CONFIG_NAME

    cdir = data.champion_dir()
    if (cdir / "model.zip").is_file() and (cdir / CONFIG_NAME).is_file():
        return cdir
    rec = data.champion
    if rec is not None and rec.model_path:
        p = Path(rec.model_path)
        p = p if p.is_absolute() else data.root / p
        if p.is_file() and (p.parent / CONFIG_NAME).is_file():
            return p.parent
    return None


def _default_sets() -> dict[str, list[str]]:
    from donkeyrl.sim.tracksets import test_tracks, validation_tracks

    return {"validation": list(validation_tracks()), "test": list(test_tracks())}


def champion_drives(data: StudyData, *, sets: dict[str, list[str]] | None = None,
                    use_cache: bool = True, animate: bool = True) -> ChampionDrives | None:
    """The champion driven on every track of ``sets`` (default: validation and test); None
    without a loadable champion. ``use_cache=False`` drives again (and refreshes the cache)."""
    from donkeyrl.rl.evaluate import ModelLoadError, expert_lap_time, load_trained
    from donkeyrl.sim.simulator import SimConfig

    model_dir = champion_model_path(data)
    if model_dir is None:
        return None
    sets = sets or _default_sets()
    tracks = list(dict.fromkeys(t for names in sets.values() for t in names))
    sha = _sha256(model_dir / "model.zip")
    key = {"version": DRIVE_VERSION, "sha256": sha, "tracks": tracks, "animate": animate}
    cache_dir = data.root / CACHE_DIR
    stem = f"champion-{sha[:16]}"
    trial = data.champion.trial if data.champion else None
    if use_cache:
        cached = _read_cache(cache_dir / f"{stem}.json", key)
        if cached is not None:
            film_file = cache_dir / f"{stem}.webp"
            return ChampionDrives(trial, sha, sets, cached["traces"], cached["expert"],
                                  film_file.read_bytes() if animate and film_file.is_file() else None,
                                  cached.get("animation_track"), 0.0, True)
    try:
        model, cfg = load_trained(model_dir)
    except ModelLoadError as exc:
        log.warning("champion cannot be driven: %s", exc)
        return ChampionDrives(trial, sha, sets, {}, {}, notes=[f"champion cannot be loaded: {exc}"])
    t0 = time.perf_counter()
    expert = {t: expert_lap_time(t) for t in tracks}
    steps_per_sec = 1.0 / SimConfig().control_dt

    def cap(track: str) -> int:
        lap = expert.get(track)
        return int(math.ceil((2.0 * lap + CAP_SLACK_SEC) * steps_per_sec)) if lap else DEFAULT_CAP_STEPS

    try:
        traces = drive_tracks(model, cfg, tracks, max_laps=1, max_steps=cap, seed=0, start_noise=False)
    except Exception as exc:  # the report is written at the end of every study: never fail it here
        log.warning("driving the champion failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        return ChampionDrives(trial, sha, sets, {}, {}, notes=[f"driving the champion failed: "
                                                              f"{type(exc).__name__}: {exc}"])
    # kept as the cache keeps them (rounded), so a fresh and a cached report draw the same figures
    by_track = {t.track: DriveTrace.from_json(t.to_json()) for t in traces}
    film, anim_track = None, None
    if animate and tracks:
        # film the first track of the first set that the champion lapped (a crash after two
        # seconds makes a poor film); the drive is deterministic, so it is the same lap again
        first = next(iter(sets.values()), tracks)
        anim_track = next((t for t in first if _lap_time(by_track[t]) is not None), first[0] if first else tracks[0])
        try:
            film = _film(model, cfg, anim_track, cap, steps_per_sec)
        except Exception as exc:  # as above: a report without its film is still a report
            log.warning("filming the champion on %s failed: %s", anim_track, exc)
            anim_track = None
    seconds = time.perf_counter() - t0
    out = ChampionDrives(trial, sha, sets, by_track, expert, film, anim_track, seconds, False)
    _write_cache(cache_dir, stem, key, out)
    return out


def _film(model: Any, cfg: Any, track: str, cap: Any, steps_per_sec: float) -> bytes:
    """An animated WebP of the champion's lap on ``track`` (camera view with overlay, map with trail)."""
    from donkeyrl.sim.tracks import get_track

    composer = FrameComposer(get_track(track))
    frames: list[np.ndarray] = []

    def on_frame(_track: str, camera: np.ndarray | None, info: dict[str, Any], _done: bool) -> None:
        frames.append(composer.frame(camera, info))

    drive_tracks(model, cfg, [track], max_laps=1, max_steps=cap, seed=0, start_noise=False,
                 on_frame=on_frame, render_tracks=[track])
    kept, every = thin_frames(frames, ANIMATION_MAX_FRAMES, min_every=2)
    return webp_bytes(kept, fps=steps_per_sec / every)


def _read_cache(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        if obj.get("key") != key:
            return None
        return {"traces": {t: DriveTrace.from_json(v) for t, v in obj["traces"].items()},
                "expert": {t: (None if v is None else float(v)) for t, v in obj["expert"].items()},
                "animation_track": obj.get("animation_track")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_cache(cache_dir: Path, stem: str, key: dict[str, Any], drives: ChampionDrives) -> None:
    payload = {"key": key, "trial": drives.trial, "seconds": drives.seconds,
               "animation_track": drives.animation_track, "expert": drives.expert,
               "traces": {t: tr.to_json() for t, tr in drives.traces.items()}}
    try:
        cache_dir.mkdir(exist_ok=True)
        keep = {f"{stem}.json", f"{stem}.webp"}
        for old in cache_dir.glob("champion-*"):  # an older champion's entry, or an older format
            if old.name not in keep:
                old.unlink()
        if drives.animation is not None:
            write_bytes_atomic(cache_dir / f"{stem}.webp", drives.animation)
        write_bytes_atomic(cache_dir / f"{stem}.json", json.dumps(payload).encode())
    except OSError as exc:
        log.warning("cannot write the report cache in %s: %s (the next report drives again)",
                    cache_dir, exc)


# ----------------------------------------------------------------------------- tables and figures
def _lap_time(trace: DriveTrace) -> float | None:
    laps = trace.metrics.get("lap_times") or []
    return float(laps[0]) if laps else None


def track_rows(drives: ChampionDrives) -> list[dict[str, Any]]:
    """One row per (set, track): the champion's lap against the expert's, and how it drove."""
    rows = []
    for set_name, names in drives.sets.items():
        for track in names:
            tr = drives.traces.get(track)
            if tr is None:
                continue
            m = tr.metrics
            lap, ref = _lap_time(tr), drives.expert.get(track)
            rows.append({
                "set": set_name, "track": track, "lap_time": lap, "expert_lap_time": ref,
                "lap_time_ratio": (lap / ref) if lap and ref else None,
                "completion": m.get("completion"), "mean_abs_cte": m.get("mean_abs_cte"),
                "max_abs_cte": m.get("max_abs_cte"), "mean_speed": m.get("mean_speed"),
                "off_track_count": m.get("off_track_count"), "end": m.get("end_reason", ""),
                "steps": len(tr.steps["x"]),
            })
    return rows


def _grid(n: int, cols: int = 5, size: float = 2.6, right: float = 0.98) -> tuple[Figure, list[Any]]:
    """Small multiples with fixed margins (matplotlib's constrained layout costs seconds at 16
    panels, more than drawing them)."""
    rows = max(1, math.ceil(n / cols))
    cols = min(cols, max(n, 1))
    height = size * rows + 1.1
    fig = Figure(figsize=(size * cols + 0.6, height))
    fig.subplots_adjust(left=0.6 / (size * cols + 0.6), right=right, bottom=0.45 / height,
                        top=1.0 - 0.8 / height, wspace=0.3, hspace=0.45)
    axes = list(np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def map_figure(drives: ChampionDrives, set_name: str) -> Figure:
    """The champion's driving line on each track map of a set, coloured by speed."""
    from donkeyrl.sim.tracks import get_track

    names = [t for t in drives.sets[set_name] if t in drives.traces]
    fig, axes = _grid(len(names), right=0.9)
    lc = None
    for ax, name in zip(axes, names):
        track, tr = get_track(name), drives.traces[name]
        left = track.points + track.normals * track.lat_left[:, None]
        right = track.points + track.normals * track.lat_right[:, None]
        if track.closed:
            left, right = np.vstack([left, left[:1]]), np.vstack([right, right[:1]])
        ax.fill(np.concatenate([left[:, 0], right[::-1, 0]]), np.concatenate([left[:, 1], right[::-1, 1]]),
                color="#bbbbbb", lw=0)
        ax.plot(track.points[:, 0], track.points[:, 1], color="white", lw=0.5, ls="--")
        x, z, v = (np.array(tr.steps[k]) for k in ("x", "z", "speed"))
        if len(x) > 1:
            seg = np.stack([np.column_stack([x[:-1], z[:-1]]), np.column_stack([x[1:], z[1:]])], axis=1)
            lc = LineCollection(list(seg), cmap="viridis", norm=_speed_norm(), linewidths=1.6)
            lc.set_array(v[1:])
            ax.add_collection(lc)
            ax.plot([x[-1]], [z[-1]], marker="x" if _lap_time(tr) is None else "o", color="#d55e00", ms=6)
        ax.plot([track.points[0, 0]], [track.points[0, 1]], marker=">", color="black", ms=6)
        lap = _lap_time(tr)
        status = f"lap {lap:.1f}s" if lap else tr.metrics.get("end_reason", "?")
        ax.set_title(f"{name}\n{status}", fontsize=8)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    if lc is not None:
        fig.colorbar(lc, cax=fig.add_axes((0.92, 0.25, 0.015, 0.5)), label="speed (telemetry units/s)")
    fig.suptitle(f"Champion's driving line, {set_name} tracks (> start, o lap done, x stopped)", fontsize=11)
    return fig


def _speed_norm() -> Any:
    from matplotlib.colors import Normalize

    return Normalize(*SPEED_RANGE)


def cte_figure(drives: ChampionDrives, set_name: str) -> Figure:
    """|cte| along the lap (fraction of the track length) on each track of a set."""
    names = [t for t in drives.sets[set_name] if t in drives.traces]
    fig, axes = _grid(len(names), size=2.4)
    for ax, name in zip(axes, names):
        tr = drives.traces[name]
        prog = np.array(tr.steps["progress"])
        frac = (prog - (prog[0] if len(prog) else 0.0)) / max(tr.track_length, 1e-9)
        ax.plot(frac, np.abs(np.array(tr.steps["cte"])), color="#0072b2", lw=1.0)
        ax.set_xlim(0, 1.05)
        ax.set_ylim(bottom=0)
        ax.locator_params(nbins=4)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.supxlabel("fraction of the lap", fontsize=9)
    fig.supylabel("|cte| (simulator units)", fontsize=9)
    fig.suptitle(f"|cte| over the lap, {set_name} tracks", fontsize=11)
    return fig


def lap_time_figure(drives: ChampionDrives) -> Figure:
    """Lap time of the champion against the scripted expert's, per track (both sets)."""
    rows = track_rows(drives)
    fig = Figure(figsize=(9, 0.28 * len(rows) + 1.4), layout="constrained")
    ax = fig.subplots()
    ys = np.arange(len(rows))[::-1]
    expert = [r["expert_lap_time"] or 0.0 for r in rows]
    champ = [r["lap_time"] or 0.0 for r in rows]
    ax.barh(ys + 0.2, expert, height=0.4, color="#999999", label="scripted expert")
    ax.barh(ys - 0.2, champ, height=0.4, color="#009e73", label="champion")
    for y, r in zip(ys, rows):
        if r["lap_time"] is None:
            ax.text(0.3, y - 0.2, f"no lap ({r['end'] or 'stopped'})", va="center", fontsize=7,
                    color="#d55e00")
    ax.set_yticks(ys, [f"{r['track']} ({r['set'][:4]})" for r in rows], fontsize=7)
    ax.set_xlabel("lap time from the standard start (s)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Lap times: champion vs scripted expert")
    ax.grid(alpha=0.3, axis="x")
    return fig
