"""Early stopping rules (research/pruning.py) against hand-computed cases."""

from __future__ import annotations

import pytest

from donkeyrl.research.pruning import (PruneConfig, asha_cut, decide, median_cut, rung_scores,
                                       unjudged_rung)
from donkeyrl.rl.checkpoints import ProgressPoint


def pt(fraction: float, score: float | None, steps: int = 100) -> ProgressPoint:
    return ProgressPoint(steps=steps, fraction=fraction, race_score=score,
                         validation_lap_rate=None, time_sec=1.0)


# scores at rung 0.25 of trials 1..6: 10, 40, 25, 30, 5, 50
HISTORY = {1: [pt(0.25, 10.0), pt(0.5, 12.0)], 2: [pt(0.25, 40.0), pt(0.5, 60.0)],
           3: [pt(0.25, 25.0)], 4: [pt(0.25, 30.0), pt(0.5, 35.0)], 5: [pt(0.25, 5.0)],
           6: [pt(0.25, 50.0)], 7: [pt(0.25, None)], 8: []}


def test_rung_scores_skip_missing_values_and_the_trial_itself():
    assert sorted(rung_scores(HISTORY, 0.25, "race_score")) == [5, 10, 25, 30, 40, 50]
    assert sorted(rung_scores(HISTORY, 0.25, "race_score", exclude=2)) == [5, 10, 25, 30, 50]
    assert sorted(rung_scores(HISTORY, 0.5, "race_score")) == [12, 35, 60]
    assert rung_scores(HISTORY, 0.75, "race_score") == []
    assert rung_scores({1: [pt(0.25000000001, 3.0)]}, 0.25, "race_score") == [3.0]


def test_asha_cut_keeps_the_top_n_over_eta():
    # 7 scores, eta 3: top 7 // 3 = 2 survive; cut = 2nd best
    assert asha_cut([5, 10, 25, 30, 40, 50, 20], 3) == 40
    # 2 scores, eta 3: max(1, 0) = 1 survives: the best
    assert asha_cut([5, 10], 3) == 10
    # eta 2 on 6 scores: top 3
    assert asha_cut([1, 2, 3, 4, 5, 6], 2) == 4
    with pytest.raises(ValueError):
        asha_cut([], 3)


def test_median_cut():
    assert median_cut([5, 10, 25, 30, 40, 50]) == 27.5
    assert median_cut([1, 9, 3]) == 3


def test_asha_decision_by_hand():
    cfg = PruneConfig(rule="asha", reduction_factor=3, min_peers=3, min_delta=0)
    # trial 9 reports 35 at 1/4: scores 5,10,25,30,35,40,50 -> top 7 // 3 = 2 -> cut 40 -> stop
    d = decide(cfg, 9, pt(0.25, 35.0, steps=250), HISTORY)
    assert d is not None and d.cut == 40 and d.score == 35 and d.peers == 6 and d.steps == 250
    assert "35 at 25% of its budget (250 steps) is below the cut 40" in d.message
    # reporting 40 ties the cut: continues
    assert decide(cfg, 9, pt(0.25, 40.0), HISTORY) is None
    # at rung 1/2 only 3 peers (12, 35, 60); 20 -> scores 12,20,35,60 -> top 1 -> cut 60 -> stop
    d = decide(cfg, 9, pt(0.5, 20.0), HISTORY)
    assert d is not None and d.cut == 60


def test_median_decision_by_hand():
    cfg = PruneConfig(rule="median", min_peers=3, min_delta=0)
    # peers at 1/4 (trial 3 excluded): 5, 10, 30, 40, 50 -> median 30 -> 25 stops
    d = decide(cfg, 3, pt(0.25, 25.0), HISTORY)
    assert d is not None and d.cut == 30 and d.peers == 5
    assert decide(cfg, 3, pt(0.25, 30.0), HISTORY) is None


def test_too_few_peers_none_rule_and_missing_score_never_stop():
    few = {1: [pt(0.25, 50.0)], 2: [pt(0.25, 60.0)]}
    assert decide(PruneConfig(rule="asha", min_peers=3), 3, pt(0.25, 0.0), few) is None
    assert decide(PruneConfig(rule="asha", min_peers=2), 3, pt(0.25, 0.0), few) is not None
    assert decide(PruneConfig(rule="none"), 9, pt(0.25, -1e9), HISTORY) is None
    assert decide(PruneConfig(rule="median"), 9, pt(0.25, None), HISTORY) is None


def test_other_objective_uses_its_own_value():
    hist = {i: [ProgressPoint(100, 0.5, 99.0, rate, 1.0)] for i, rate in enumerate([0.1, 0.5, 0.9], 1)}
    cfg = PruneConfig(rule="median", objective="validation_lap_rate", fractions=(0.5,))
    assert cfg.margin == 0.1  # one track in ten
    d = decide(cfg, 9, ProgressPoint(100, 0.5, 99.0, 0.2, 1.0), hist)
    assert d is not None and d.cut == 0.5
    assert decide(cfg, 9, ProgressPoint(100, 0.5, 99.0, 0.45, 1.0), hist) is None


def test_the_margin_keeps_noise_level_rungs_from_deciding():
    """Untrained cars all score ~1-3 at the first rung: with the default margin (5 race-score
    points) nobody stops there; once a peer separates, those left on the noise floor stop."""
    flat = {t: [pt(0.25, s)] for t, s in enumerate([1.2, 3.4, 2.6, 3.3, 1.9, 2.8], 1)}
    cfg = PruneConfig(rule="asha")
    assert cfg.margin == 5.0
    assert decide(cfg, 9, pt(0.25, 1.0), flat) is None  # pure ASHA (margin 0) would stop it
    assert decide(PruneConfig(rule="asha", min_delta=0), 9, pt(0.25, 1.0), flat) is not None
    risen = {**flat, 7: [pt(0.25, 62.3)], 8: [pt(0.25, 44.0)]}
    # 9 scores: top 3 -> cut 3.4; 1.0 is not below 3.4 - 5: continues
    assert decide(cfg, 9, pt(0.25, 1.0), risen) is None
    risen[10] = [pt(0.25, 50.0)]
    d = decide(cfg, 9, pt(0.25, 1.0), risen)  # 10 scores: top 3 -> cut 44 -> stops
    assert d is not None and d.cut == 44.0 and "by more than 5" in d.message


def test_a_trial_is_judged_once_per_rung_on_its_newest_report():
    fr = (0.25, 0.5, 0.75)
    pts = [pt(0.25, 1.0), pt(0.5, 2.0)]
    assert unjudged_rung(pts, fr, []) == pts[1]
    assert unjudged_rung(pts, fr, [0.5]) is None
    assert unjudged_rung(pts, fr, [0.25]) == pts[1]
    assert unjudged_rung([], fr, []) is None
    assert unjudged_rung([pt(0.3, 1.0)], fr, []) is None  # not a rung of this study


@pytest.mark.parametrize("kw, match", [
    (dict(rule="hyperband"), "not one of none, asha, median"),
    (dict(rule="asha", reduction_factor=1), "reduction factor 1"),
    (dict(rule="asha", min_peers=0), "min_peers 0"),
    (dict(rule="asha", fractions=()), "at least one checkpoint"),
    (dict(rule="asha", fractions=(0.5, 1.0)), "must be in \\(0, 1\\)"),
    (dict(rule="asha", min_delta=-1.0), "min_delta -1.0 must be >= 0"),
])
def test_bad_config_is_one_clear_error(kw, match):
    with pytest.raises(ValueError, match=match):
        PruneConfig(**kw)
