"""docs/car.md's DonkeyCar part, run exactly as written, drives like the SB3 model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from donkeyrl.report.onnx_export import camera_frames, export_onnx, sb3_actions
from donkeyrl.rl.evaluate import load_trained

DOC = Path(__file__).resolve().parents[2] / "docs" / "car.md"


def _part_source() -> str:
    text = DOC.read_text()
    return re.search(r"<!-- car-part -->\n```python\n(.*?)```", text, re.S).group(1)


def test_the_documented_part_gives_the_models_actions(ppo_continuous: Path, tmp_path: Path) -> None:
    path = export_onnx(ppo_continuous, tmp_path / "pilot.onnx", check_frames=0).path
    namespace: dict = {}
    exec(compile(_part_source(), str(DOC), "exec"), namespace)  # the doc's own code
    pilot = namespace["OnnxPilot"](str(path))
    assert pilot.run(None) == (0.0, 0.0)
    frames = camera_frames(40, track="canyon", seed=5)
    got = np.array([pilot.run(f) for f in frames])
    model, cfg = load_trained(ppo_continuous)
    want, _ = sb3_actions(model, cfg, frames)
    np.testing.assert_allclose(got[:, 0], want[:, 0], atol=1e-5)
    np.testing.assert_allclose(got[:, 1], np.clip(want[:, 1], cfg.throttle_min, cfg.throttle_max), atol=1e-5)
