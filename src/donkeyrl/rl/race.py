"""The race score: how fast and how cleanly a driver laps a track, relative to the scripted expert.

Why a new score: ``driving_score`` caps pace at 4 units/s and completion at one lap, so on an easy
track every decent policy lands near the same value and an optimizer has nothing left to learn; a
policy that laps 10% faster scores the same. The race score keeps rising with pace.

One race on one track is one episode of :data:`RACE_LAPS` laps: the car starts at rest just behind
the start line, so lap 1 is a standing-start lap and lap 2 the *flying lap*. The episode ends after
the flying lap, or earlier on a crash (|cte| > max_cte or a barrier hit), the progress watchdog or
the step limit.

    lapped     = the flying lap was completed, and the car never left the road (``off_track``)
                 nor hit anything during the whole episode
    pace       = T_expert / T_flying          the expert's flying lap over ours (> 1 = faster)
    centring   = max(0, 1 - mean|cte| / LANE_HALF_WIDTH)
    race_score = LAPPED_BASE + PACE_WEIGHT * pace + CENTRING_WEIGHT * centring     if lapped
               = NOT_LAPPED_WEIGHT * min(completion, 1)                            otherwise

With the constants below: a lap at the expert's pace on the path scores 110; 10% faster (pace 1.11)
scores 5.6 more; there is no cap below the physical limit of the car. Any lapped track scores more
than 50 and any track not lapped at most 40, so lapping always beats a longer crash.

Why it cannot be farmed: laps come from the simulator's unwrapped, forward-only progress along the
path (circling, reversing or cutting back over the start line add nothing; a lap needs the whole
track length), implausibly short laps end the episode (``MinLapTimeGuard``), leaving the road or
touching a barrier anywhere in the episode forfeits the lap, and the score never reads the
training reward. The pace term compares like with like: the expert's own flying lap on the same
track, measured by the same metrics (:func:`expert_race`).

A set's score is the mean over its tracks (:func:`summarise_races`); a study maximises the
validation set's mean by default (``race_score`` in the result file).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from donkeyrl.rl.metrics import DrivingMetrics, EpisodeMetrics

log = logging.getLogger(__name__)

#: Laps per race: a standing-start lap, then the flying lap that is timed.
RACE_LAPS = 2
#: Half the width of the car's lane (units): the real roads' lane is about 4 units wide.
LANE_HALF_WIDTH = 2.0
LAPPED_BASE = 50.0
PACE_WEIGHT = 50.0
CENTRING_WEIGHT = 10.0
NOT_LAPPED_WEIGHT = 40.0
#: Lap-time ratio charged for a track not lapped, in the two-objective (Pareto) view of a set:
#: three times the expert's lap, slower than any lap a study would keep.
UNLAPPED_RATIO = 3.0


def race_score(*, lapped: bool, pace: float | None, mean_abs_cte: float, completion: float) -> float:
    """The documented per-track score (module docstring); ``pace`` = T_expert / T_flying."""
    if lapped:
        centring = max(0.0, 1.0 - mean_abs_cte / LANE_HALF_WIDTH)
        return LAPPED_BASE + PACE_WEIGHT * float(pace if pace is not None else 1.0) + CENTRING_WEIGHT * centring
    return NOT_LAPPED_WEIGHT * min(max(completion, 0.0), 1.0)


@dataclass(frozen=True)
class TrackRace:
    """One driver's race on one track (times in s, lengths in simulator units)."""

    track: str
    lapped: bool
    flying_lap_time: float | None
    lap_times: tuple[float, ...]
    completion: float
    mean_abs_cte: float
    max_abs_cte: float
    mean_speed: float
    off_track_count: int
    hit_count: int
    end_reason: str
    expert_lap_time: float | None
    pace: float | None
    race_score: float

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["lap_times"] = list(self.lap_times)
        return out


def score_episode(m: EpisodeMetrics, expert_lap_time: float | None) -> TrackRace:
    """Scores one recorded race episode against the expert's flying lap time."""
    flying = m.lap_times[RACE_LAPS - 1] if len(m.lap_times) >= RACE_LAPS else None
    lapped = flying is not None and m.off_track_count == 0 and m.hit_count == 0 and m.short_laps == 0
    pace = (expert_lap_time / flying) if lapped and flying and expert_lap_time else None
    score = race_score(lapped=lapped, pace=pace, mean_abs_cte=m.mean_abs_cte, completion=m.completion)
    return TrackRace(track=m.track, lapped=lapped, flying_lap_time=flying, lap_times=tuple(m.lap_times),
                     completion=m.completion, mean_abs_cte=m.mean_abs_cte, max_abs_cte=m.max_abs_cte,
                     mean_speed=m.mean_speed, off_track_count=m.off_track_count, hit_count=m.hit_count,
                     end_reason=m.end_reason, expert_lap_time=expert_lap_time, pace=pace,
                     race_score=score)


# --------------------------------------------------------------------------------- the expert
@functools.lru_cache(maxsize=256)
def expert_race(track: str) -> TrackRace:
    """The scripted expert's race on ``track``, measured exactly like a policy's (cached).

    The expert is the pure-pursuit driver of :mod:`donkeyrl.sim.expert` (clean, 75% of grip);
    its flying lap is the reference time of the pace term.
    """
    from donkeyrl.envs import make_env
    from donkeyrl.sim.camera import CameraConfig
    from donkeyrl.sim.expert import ExpertDriver

    env = make_env(track, camera=CameraConfig(width=8, height=8, grey=True), throttle_min=-1.0,
                   max_laps=RACE_LAPS, start_noise=False)
    metrics = DrivingMetrics(env, max_cte=8.0)
    try:
        metrics.reset(seed=0)
        base: Any = env.unwrapped
        driver = ExpertDriver(base.sim.track, base.sim.config.car)
        done = False
        while not done:
            action = driver.action_for_env(base.sim.telemetry(0))
            _, _, terminated, truncated, _ = metrics.step(action)
            done = terminated or truncated
    finally:
        env.close()
    m = metrics.episodes[-1]
    flying = m.lap_times[RACE_LAPS - 1] if len(m.lap_times) >= RACE_LAPS else None
    if flying is None:
        log.warning("the expert did not complete a flying lap on %s (%s)", track, m.end_reason)
    return score_episode(m, flying)


def expert_flying_lap(track: str) -> float | None:
    """The expert's flying lap time on ``track`` (s), None where it has none (open road)."""
    return expert_race(track).flying_lap_time


# --------------------------------------------------------------------------------- a policy
def race_tracks(model: Any, cfg: Any, tracks: Sequence[str], *, seed: int | None = None,
                deterministic: bool = True, env_factory: Callable[..., Any] | None = None,
                on_track: Callable[[TrackRace], None] | None = None) -> list[TrackRace]:
    """Races ``model`` (trained with ``cfg``) once on each of ``tracks`` and scores each race.

    Each race goes through :func:`donkeyrl.rl.evaluate.evaluate` (SB3's ``evaluate_policy`` on the
    trial's own wrapper stack) with ``max_laps`` = :data:`RACE_LAPS`.
    """
    from donkeyrl.rl.evaluate import evaluate

    races = []
    race_cfg = cfg.replace(max_laps=RACE_LAPS)
    for track in tracks:
        ev = evaluate(model, race_cfg, episodes=1, tracks=[track], seed=seed,
                      deterministic=deterministic, env_factory=env_factory)
        m = EpisodeMetrics(**{k: v for k, v in ev["episodes"][0].items()
                              if k in EpisodeMetrics.__dataclass_fields__})
        race = score_episode(m, expert_flying_lap(track))
        races.append(race)
        if on_track is not None:
            on_track(race)
    return races


def summarise_races(races: Sequence[TrackRace]) -> dict[str, Any]:
    """Set-level figures: mean race score, lap rate, pace and centring over the tracks.

    ``lap_time_ratio_penalised`` is the mean over all tracks of T_flying / T_expert with
    :data:`UNLAPPED_RATIO` for a track not lapped (the lap-time objective of a Pareto study).
    """
    if not races:
        return {"race_score": None, "lap_rate": None, "mean_pace": None, "mean_abs_cte": None,
                "tracks": []}
    lapped = [r for r in races if r.lapped]
    paces = [r.pace for r in lapped if r.pace is not None]
    return {
        "race_score": float(np.mean([r.race_score for r in races])),
        "race_score_min": float(min(r.race_score for r in races)),
        "lap_rate": len(lapped) / len(races),
        "mean_pace": float(np.mean(paces)) if paces else None,
        "mean_lap_time_ratio": float(np.mean([1.0 / p for p in paces])) if paces else None,
        "lap_time_ratio_penalised": float(np.mean([1.0 / r.pace if r.lapped and r.pace else UNLAPPED_RATIO
                                                   for r in races])),
        "mean_abs_cte": float(np.mean([r.mean_abs_cte for r in races])),
        "off_track_count": int(sum(r.off_track_count for r in races)),
        "tracks": [r.to_dict() for r in races],
    }

