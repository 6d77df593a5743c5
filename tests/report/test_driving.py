"""Driving a trained model on several tracks at once, with a trace of every step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from donkeyrl.report.driving import TRACE_KEYS, DriveTrace, drive_tracks
from donkeyrl.rl.evaluate import load_trained


def test_traces_follow_the_episode_and_the_caps(ppo_continuous: Path) -> None:
    model, cfg = load_trained(ppo_continuous)
    tracks = ["warren", "procedural-10001", "canyon"]
    frames: list[tuple[str, bool, bool]] = []
    traces = drive_tracks(model, cfg, tracks, max_laps=1, max_steps=lambda t: 40 if t == "canyon" else None,
                          on_frame=lambda t, cam, info, done: frames.append((t, cam is None, done)),
                          render_tracks=["warren"])
    assert [t.track for t in traces] == tracks
    for tr in traces:
        n = len(tr.steps["x"])
        assert n >= 1 and all(len(tr.steps[k]) == n for k in TRACE_KEYS)
        assert tr.metrics["steps"] == n  # the model's own DrivingMetrics saw the same episode
        assert tr.metrics["track"] == tr.track and tr.track_length > 0
        # positions are on the track's scale (simulator units), the car moved
        assert np.hypot(np.diff(tr.steps["x"]), np.diff(tr.steps["z"])).sum() > 0
    canyon = traces[2]
    assert len(canyon.steps["x"]) <= 40
    assert canyon.metrics["end_reason"] == "step_limit" or len(canyon.steps["x"]) < 40  # capped, or crashed first
    # frames only for the filmed track: one after the reset, one per step, None camera at the end
    assert {t for t, _, _ in frames} == {"warren"}
    assert len(frames) == len(traces[0].steps["x"]) + 1
    assert frames[-1] == ("warren", True, True) and not any(none for _, none, _ in frames[:-1])


def test_trace_json_round_trip() -> None:
    tr = DriveTrace("warren")
    tr.add({"pos": (1.0, 0.0, 2.0), "speed": 3.0, "cte": -0.25, "progress": 4.0, "steering": 0.5,
            "throttle": 0.3, "lap_count": 0, "time": 0.05, "track_length": 395.0})
    back = DriveTrace.from_json(tr.to_json())
    assert back.steps == tr.steps and back.track_length == 395.0
    assert back.steps["x"] == [8.0] and back.steps["z"] == [16.0]  # telemetry units -> simulator units
