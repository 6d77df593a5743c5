"""The GP's view of a study: refitted by the optimizer's rules, a slice through the champion."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from donkeyrl.report.posterior import fit_posterior, posterior_figure
from donkeyrl.report.study import load_study


def test_posterior_learns_the_objective_and_its_uncertainty(study: Path) -> None:
    data = load_study(study)
    post = fit_posterior(data)
    assert post is not None
    usable = [r for r in data.records if r.usable]
    failed = [r for r in data.records if r.run_status in ("timeout", "crashed")]
    assert len(post.X_ok) == len(usable) and len(post.X_failed) == len(failed)  # interrupted, hacked: out
    # the slice point is the champion
    np.testing.assert_allclose(post.anchor, data.space.snap(data.space.encode(data.champion.params))[0])
    # along the learning rate (the only parameter that matters) the mean rises like the objective
    j = [p.name for p in data.space.free].index("learning_rate")
    X = np.repeat(post.anchor[None], 2, axis=0)
    X[:, j] = [0.2, 0.8]
    mean, std = post.predict(X)
    assert mean[1] > mean[0] + 10
    # at the champion the model is close to what was observed, and sure of it compared to a far corner
    m_c, s_c = post.predict(post.anchor[None])
    assert abs(m_c[0] - data.champion.objective) < 10
    far = np.ones((1, data.space.dim))
    far[0, j] = 0.0
    assert s_c[0] < post.predict(far)[1][0]


def test_posterior_figure_one_and_two_parameters(study: Path) -> None:
    post = fit_posterior(load_study(study))
    fig2 = posterior_figure(post, ["learning_rate", "n_steer"])
    assert len(fig2.axes) == 4  # mean, std and their colour bars
    assert [a.get_xlabel() for a in fig2.axes[:2]] == ["learning_rate", "learning_rate"]
    fig1 = posterior_figure(post, ["batch_size"])
    assert [t.get_text() for t in fig1.axes[0].get_xticklabels()] == ["32", "64", "128"]


def test_too_few_trials_give_no_posterior(tmp_path: Path) -> None:
    import json

    (tmp_path / "study.json").write_text(json.dumps({"objective": "driving_score", "space": {
        "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True}}}))
    (tmp_path / "results.jsonl").write_text(json.dumps({
        "trial": 1, "params": {"learning_rate": 1e-3}, "run_status": "ok", "objective": 5.0,
        "objective_name": "driving_score"}) + "\n")
    assert fit_posterior(load_study(tmp_path)) is None
    assert math.isfinite(5.0)
