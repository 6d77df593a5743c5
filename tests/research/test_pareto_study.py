"""``--objective pareto``: ParEGO proposals, the front in every record, the champion on the front."""

from __future__ import annotations

import json

import pytest

from donkeyrl.bo.pareto import pareto_front
from donkeyrl.cli import main
from donkeyrl.research import ChampionRule, fold_champion
from donkeyrl.research.records import PARETO_OBJECTIVES

from research_helpers import LOOP_ONLY, fake_command, records, run_study


def test_pareto_study_keeps_the_front_and_crowns_its_fastest_racer(tmp_path, space_file):
    study = tmp_path / "s"
    summary, rep = run_study(study, space_file, trials=8, objective="pareto", n_initial=3,
                             confirm_seeds=2)  # K is not used under pareto
    recs = records(study)
    assert len(recs) == 8 and all(r.run_status == "ok" for r in recs)
    assert all(r.confirms is None for r in recs)
    assert all(r.objective_name == "pareto" and set(r.objectives) == set(PARETO_OBJECTIVES)
               for r in recs)
    # every record carries the front after it; the last one is the true front of all points
    F = [[r.objectives[k] for k in PARETO_OBJECTIVES] for r in recs]
    for i, r in enumerate(recs):
        assert r.pareto_front == [recs[j].trial for j in pareto_front(F[:i + 1])]
    front = {r.trial: r for r in recs if r.trial in recs[-1].pareto_front}
    best = max(front.values(), key=lambda r: r.objective)
    assert summary.champion.trial == best.trial
    assert [r.trial for r in summary.pareto_front] == recs[-1].pareto_front
    assert fold_champion(recs, ChampionRule(pareto=True)).trial == best.trial
    manifest = json.loads((study / "models/champion/manifest.json").read_text())
    assert manifest["trial"] == best.trial and set(manifest["objectives"]) == set(PARETO_OBJECTIVES)
    # ParEGO: a new random weighting per proposal once the random phase is over
    log = (study / "study.log").read_text()
    assert log.count("ParEGO weights") >= 5
    assert sum(1 for _, _, c in rep.proposals if c) == 5
    keys = {json.dumps(r.params, sort_keys=True) for r in recs}
    assert len(keys) == 8


def test_pareto_result_without_an_objective_is_a_bad_result(tmp_path, space_file):
    from donkeyrl.research.result import parse_outcome

    from research_helpers import zip_bytes
    model = tmp_path / "model.zip"
    model.write_bytes(zip_bytes("m"))
    rf = tmp_path / "r.json"
    rf.write_text(json.dumps({"race_score": 90.0, "validation_mean_abs_cte": 0.4,
                              "model_path": str(model)}))
    out = parse_outcome(rf, 0, objective="pareto", cwd=tmp_path)
    assert out.run_status == "bad_result"
    assert "no numeric 'validation_lap_time_ratio_penalised'" in out.message
    rf.write_text(json.dumps({"race_score": 90.0, "validation_mean_abs_cte": 0.4,
                              "validation_lap_time_ratio_penalised": 1.1, "model_path": str(model)}))
    out = parse_outcome(rf, 0, objective="pareto", cwd=tmp_path)
    assert out.run_status == "ok" and out.objective == 90.0 and out.noise is None
    assert out.objectives == {"validation_lap_time_ratio_penalised": 1.1,
                              "validation_mean_abs_cte": 0.4}


def test_cli_names_the_front_at_the_end(tmp_path, space_file, capsys):
    study = tmp_path / "s"
    argv = ["research", "--study-dir", str(study), "--search-space", str(space_file), "--trials",
            "4", "--cooldown", "0", "--objective", "pareto", "--n-initial", "2",
            "--trial-command", fake_command(), "--no-final-test", "--no-report"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Pareto front (" in out and "lap time / expert" in out
    front = records(study)[-1].pareto_front
    for trial in front:
        assert any(line.split()[:1] == [str(trial)] for line in out.splitlines())


@pytest.mark.parametrize("extra,match", [
    (["--confirm-seeds", "2"], "--confirm-seeds 2 does not apply to --objective pareto"),
    (["--until-converged"], "until_converged does not apply to the pareto objective"),
])
def test_pareto_bad_combinations_are_one_line_errors(tmp_path, space_file, capsys, extra, match):
    study = tmp_path / "s"
    argv = ["research", "--study-dir", str(study), "--search-space", str(space_file),
            "--objective", "pareto", "--trial-command", fake_command(), *LOOP_ONLY[2:], *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and err.count("\n") == 1
    assert not study.exists()
