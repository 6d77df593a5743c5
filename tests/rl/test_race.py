"""The race score: ordering guarantees, the clean-flying-lap rule, the expert reference, the table."""

from __future__ import annotations

import pytest

from donkeyrl.rl import headtohead, race
from donkeyrl.rl.metrics import EpisodeMetrics


def test_any_lapped_track_beats_any_track_not_lapped():
    slowest_lap = race.race_score(lapped=True, pace=0.05, mean_abs_cte=50.0, completion=1.0)
    best_crash = race.race_score(lapped=False, pace=None, mean_abs_cte=0.0, completion=0.999)
    assert slowest_lap > race.LAPPED_BASE > best_crash


def test_pace_keeps_paying_above_the_expert():
    scores = [race.race_score(lapped=True, pace=p, mean_abs_cte=0.5, completion=1.0)
              for p in (0.8, 1.0, 1.1, 1.3)]
    assert scores == sorted(scores) and len(set(scores)) == 4
    # 10% faster is worth more than perfect centring is
    assert scores[2] - scores[1] > race.CENTRING_WEIGHT * 0.25 - 1e-9


def test_centring_is_the_smaller_term():
    on_path = race.race_score(lapped=True, pace=1.0, mean_abs_cte=0.0, completion=1.0)
    off_lane = race.race_score(lapped=True, pace=1.0, mean_abs_cte=race.LANE_HALF_WIDTH, completion=1.0)
    assert on_path - off_lane == pytest.approx(race.CENTRING_WEIGHT)
    assert race.race_score(lapped=True, pace=1.25, mean_abs_cte=3.0, completion=1.0) > on_path


def _episode(**kw):
    base = dict(track="t", lap_times=[10.0, 9.0], laps=2, completion=1.0, mean_abs_cte=0.4)
    return EpisodeMetrics(**{**base, **kw})


def test_only_a_clean_flying_lap_counts():
    clean = race.score_episode(_episode(), expert_lap_time=9.0)
    assert clean.lapped and clean.flying_lap_time == 9.0 and clean.pace == pytest.approx(1.0)
    assert race.score_episode(_episode(off_track_count=1), 9.0).race_score <= race.NOT_LAPPED_WEIGHT
    assert race.score_episode(_episode(hit_count=1), 9.0).race_score <= race.NOT_LAPPED_WEIGHT
    standing_only = race.score_episode(_episode(lap_times=[10.0], laps=1, completion=0.6), 9.0)
    assert not standing_only.lapped and standing_only.race_score == pytest.approx(0.6 * race.NOT_LAPPED_WEIGHT)
    faster = race.score_episode(_episode(lap_times=[10.0, 8.1]), 9.0)
    assert faster.race_score > clean.race_score


def test_expert_races_a_validation_track_at_pace_one():
    r = race.expert_race("chicane_alley")
    assert r.lapped and r.end_reason == "max_laps" and r.off_track_count == 0
    assert r.pace == pytest.approx(1.0)
    assert len(r.lap_times) == race.RACE_LAPS and r.flying_lap_time < r.lap_times[0]
    assert race.LAPPED_BASE + race.PACE_WEIGHT < r.race_score <= 110.0


def test_head_to_head_document_and_table():
    fast = race.score_episode(_episode(track="chicane_alley", lap_times=[16.0, 14.0]),
                              race.expert_flying_lap("chicane_alley"))
    crash = race.score_episode(_episode(track="chicane_alley", lap_times=[], laps=0, completion=0.3,
                                        hit_count=1), None)
    doc = headtohead.compare({"champion": [fast], "baseline": [crash]}, ["chicane_alley"], "validation")
    assert set(doc["summary"]) == {"champion", "baseline", "expert"}
    rows = {r["method"]: r for r in doc["rows"]}
    assert rows["champion"]["lap_rate"] == 1.0 and rows["baseline"]["lap_rate"] == 0.0
    assert rows["champion"]["best_lap_time"] == 14.0 and rows["baseline"]["best_lap_time"] is None
    assert doc["summary"]["champion"]["mean_lap_time_ratio"] < 1.0
    text = headtohead.format_table(doc)
    assert "chicane_alley" in text and "champion" in text and "expert" in text


def test_evaluation_and_races_use_the_tracks_own_look_whatever_the_training_used():
    """A model trained with domain randomisation is raced in the tracks' own look: the env the
    evaluation builds is asked for no randomisation, while training envs of the same config are."""
    from donkeyrl.envs import make_env
    from donkeyrl.rl.agents import build_agent
    from donkeyrl.rl.config import TrialConfig
    from donkeyrl.rl.envbuild import build_vec_env
    from donkeyrl.rl.evaluate import evaluate

    asked: list[bool] = []

    def spy(track, **kwargs):
        asked.append(kwargs["domain_randomization"])
        return make_env(track, **kwargs)

    cfg = TrialConfig(domain_randomization=True, n_envs=1, max_steps=30, tracks=("generated_track",),
                      actions="continuous")
    train_env = build_vec_env(cfg, env_factory=spy)
    model = build_agent(cfg, train_env)
    train_env.close()
    assert asked == [True]
    asked.clear()
    evaluate(model, cfg, episodes=1, env_factory=spy)
    race.race_tracks(model, cfg, ["oval"], env_factory=spy)
    assert asked == [False, False]
