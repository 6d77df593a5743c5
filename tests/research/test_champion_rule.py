"""The champion rule as a pure fold over records: single runs (TC-004), confirmation on fresh
seeds, and the Pareto front (research/champion.py)."""

from __future__ import annotations

import pytest

from donkeyrl.research import ChampionRule, TrialRecord, fold_champion, recorded_champion
from donkeyrl.research.champion import ChampionFold, fold
from donkeyrl.research.records import PARETO, PARETO_OBJECTIVES


def rec(trial, value, status="ok", confirms=None, hack=False, params=None):
    return TrialRecord(trial, params or {"lr": trial}, status, objective=value,
                       model_path=f"models/trial-{trial}/model.zip", reward_hacking=hack,
                       confirms=confirms, seed=trial)


def crowned_by(records, rule):
    """(trial that crowned, trial installed) for every crowning, in journal order."""
    state, out = ChampionFold(rule), []
    for r in records:
        step = state.step(r)
        if step.crowned is not None:
            out.append((r.trial, step.crowned.trial))
    return out


def test_tc004_with_confirmation_off():
    recs = [rec(i + 1, v) for i, v in enumerate([50, 80, 60, 90, 70])]
    assert crowned_by(recs, ChampionRule(confirm_seeds=0)) == [(1, 1), (2, 2), (4, 4)]
    assert fold_champion(recs).trial == 4  # the default rule is the single-run rule
    # n_initial does not matter without confirmation
    assert crowned_by(recs, ChampionRule(confirm_seeds=0, n_initial=3)) == [(1, 1), (2, 2), (4, 4)]


def test_random_phase_then_confirmation_crowns_the_best_run_by_the_mean():
    rule = ChampionRule(confirm_seeds=2, n_initial=3)
    recs = [rec(1, 50), rec(2, 80), rec(3, 60)]  # the random phase: nothing confirmed during it
    state = fold(recs, rule)
    assert state.champion is None and state.pending.trial == 2 and state.runs_needed() == 2
    recs += [rec(4, 90, confirms=2)]
    assert fold(recs, rule).runs_needed() == 1
    recs += [rec(5, 70, confirms=2)]
    state = fold(recs, rule)
    # mean of 80, 90, 70 = 80; the installed model is the best run (trial 4), not the candidate
    assert state.champion.trial == 4 and state.champion.origin == 2
    assert state.champion.mean == pytest.approx(80.0)
    assert [r.trial for r in state.champion.runs] == [2, 4, 5]
    assert state.pending is None
    assert crowned_by(recs, rule) == [(5, 4)]


def test_candidates_must_beat_the_confirmed_mean_and_are_confirmed_one_at_a_time():
    rule = ChampionRule(confirm_seeds=1, n_initial=1)
    recs = [rec(1, 60), rec(2, 50, confirms=1)]          # trial 1 confirmed: mean 55
    recs += [rec(3, 58)]                                  # beats 55: candidate
    recs += [rec(4, 70)]                                  # beats 55 too: waits behind trial 3
    recs += [rec(5, 40, confirms=3)]                      # mean 49 < 55: dropped; trial 4 next
    state = fold(recs, rule)
    assert state.champion.origin == 1 and state.pending.trial == 4
    recs += [rec(6, 30)]                                  # does not beat 55
    recs += [rec(7, 66, confirms=4)]                      # mean 68: crowned, model of trial 4
    state = fold(recs, rule)
    assert (state.champion.origin, state.champion.trial) == (4, 4)
    assert state.champion.mean == pytest.approx(68.0)
    assert crowned_by(recs, rule) == [(2, 1), (7, 4)]


def test_a_waiting_candidate_is_checked_again_when_its_turn_comes():
    rule = ChampionRule(confirm_seeds=1, n_initial=1)
    recs = [rec(1, 60), rec(2, 70), rec(3, 65), rec(4, 80, confirms=1)]  # 2 and 3 wait; mean 70
    state = fold(recs, rule)
    # trial 2 (70) does not beat the new mean 70 (ties keep the champion); trial 3 (65) neither
    assert state.champion.mean == pytest.approx(70.0) and state.pending is None


def test_a_failed_or_flagged_confirmation_run_drops_the_configuration():
    rule = ChampionRule(confirm_seeds=2, n_initial=1)
    for bad in (rec(2, None, status="timeout", confirms=1), rec(2, 99.0, hack=True, confirms=1)):
        state = ChampionFold(rule)
        state.step(rec(1, 60))
        step = state.step(bad)
        assert step.dropped[0] == 1 and "not usable" in step.dropped[1]
        assert state.champion is None and state.pending is None
        # a late run of the dropped configuration changes nothing
        assert state.step(rec(3, 99.0, confirms=1)).crowned is None and state.champion is None


def test_interrupted_runs_count_for_nothing_and_stale_runs_are_ignored():
    rule = ChampionRule(confirm_seeds=1, n_initial=1)
    recs = [rec(1, 60), rec(2, None, status="interrupted", confirms=1)]
    state = fold(recs, rule)
    assert state.pending.trial == 1 and state.runs_needed() == 1  # to be run again
    recs += [rec(3, 10, confirms=99), rec(4, 62, confirms=1)]
    assert fold(recs, rule).champion.mean == pytest.approx(61.0)


def test_random_phase_of_failures_confirms_the_first_later_success():
    rule = ChampionRule(confirm_seeds=1, n_initial=2)
    recs = [rec(1, None, status="crashed"), rec(2, None, status="crashed"), rec(3, 40)]
    assert fold(recs, rule).pending.trial == 3


def test_the_rule_refuses_a_negative_k():
    with pytest.raises(ValueError, match="confirm_seeds=-1 must be >= 0"):
        ChampionRule(confirm_seeds=-1)


def prec(trial, lap, cte, race, status="ok"):
    r = rec(trial, race, status=status)
    r.objective_name = PARETO
    r.objectives = dict(zip(PARETO_OBJECTIVES, (lap, cte)))
    return r


def test_pareto_front_and_its_champion():
    rule = ChampionRule(pareto=True)
    recs = [prec(1, 1.5, 0.5, 90.0), prec(2, 1.2, 0.9, 95.0), prec(3, 1.6, 0.6, 99.0),
            prec(4, 1.1, 0.4, 93.0), prec(5, 1.0, 1.0, 80.0, status="crashed")]
    state, fronts, crowns = ChampionFold(rule), [], []
    for r in recs:
        step = state.step(r)
        fronts.append(step.pareto_front)
        crowns.append(step.crowned.trial if step.crowned else None)
    # 3 is dominated by 1 (slower and less centred) even with the best race score; 4 dominates
    # 1 and 2 and, alone on the front, becomes champion although its race score is lower
    assert fronts == [[1], [1, 2], [1, 2], [4], [4]]
    assert crowns == [1, 2, None, 4, None]
    assert fold_champion(recs, rule).trial == 4


def test_a_champion_pushed_off_the_front_gives_way_to_an_earlier_member():
    rule = ChampionRule(pareto=True)
    recs = [prec(1, 1.0, 0.9, 90.0), prec(2, 1.5, 0.3, 95.0), prec(3, 1.4, 0.2, 85.0)]
    # trial 3 dominates trial 2: the best front member left is trial 1, crowned again
    assert crowned_by(recs, rule) == [(1, 1), (2, 2), (3, 1)]


def test_pareto_refuses_confirmation():
    with pytest.raises(ValueError, match="not used with the pareto objective"):
        ChampionRule(confirm_seeds=2, pareto=True)


def test_recorded_champion_trusts_the_flags():
    a, b, c = rec(1, 50), rec(2, 60, confirms=1), rec(3, 70)
    b.champion, b.crowned = True, 1
    assert recorded_champion([a, b, c]).trial == 1
    old = rec(4, 10)
    old.champion = True  # a record from before 'crowned' existed: its own trial
    assert recorded_champion([a, b, c, old]).trial == 4
    assert recorded_champion([a, c]) is None


def test_rule_from_study_json():
    assert ChampionRule.from_study({"confirm_seeds": 2, "n_initial": 5, "objective": "race_score"}) \
        == ChampionRule(confirm_seeds=2, n_initial=5)
    assert ChampionRule.from_study({"objective": "pareto", "confirm_seeds": 2}) == \
        ChampionRule(pareto=True)
    assert ChampionRule.from_study({"objective": "driving_score"}) == ChampionRule()  # older study
