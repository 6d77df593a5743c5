"""``donkeyrl export onnx``: a trained model to an ONNX file that onnxruntime runs like SB3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from donkeyrl.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real PPO model (continuous actions, 3 stacked frames) trained for a few hundred steps."""
    d = tmp_path_factory.mktemp("model")
    assert main(["train", "--agent", "ppo", "--actions", "continuous", "--throttle-min", "0.2", "--timesteps", "256",
                 "--n-envs", "1",
                 "--n-steps", "64", "--batch-size", "32", "--frame-stack", "3", "--eval-episodes", "0",
                 "--validation", "false", "--save-dir", str(d)]) == 0
    return d


def test_export_writes_a_checked_file_beside_the_model(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["export", "onnx", str(model_dir), "--check-frames", "30"]) == 0
    out = capsys.readouterr().out
    path = model_dir / "policy.onnx"
    assert f"wrote {path}" in out and "onnxruntime matches SB3 on 30 frames" in out
    assert "(3, 120, 160, 3)" in out
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    frames = np.random.default_rng(0).integers(0, 256, (3, 120, 160, 3), dtype=np.uint8)
    action, steering, throttle, obs = sess.run(None, {"frames": frames})
    assert action.shape == (1, 2) and steering.shape == (1,) and throttle.shape == (1,)
    assert obs.shape == (1, 32, 64, 3) and obs.dtype == np.uint8
    assert -1.0 <= steering[0] <= 1.0 and 0.2 <= throttle[0] <= 1.0  # the model's throttle clamp


def test_other_camera_size_and_out(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "car.onnx"
    assert main(["export", "onnx", str(model_dir / "model.zip"), "--out", str(out), "--camera-height", "240",
                 "--camera-width", "320", "--check-frames", "20"]) == 0
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [3, 240, 320, 3]


@pytest.mark.parametrize("args, pattern", [
    (["{tmp}"], "model.zip does not exist"),
    (["{tmp}/nothing/model.zip"], "does not exist"),
    (["{model}", "--out", "{tmp}"], "is a directory"),
    (["{model}", "--out", "/nonexistent_dir_xyz/p.onnx"], "does not exist"),
    (["{model}", "--camera-height", "4"], "too small"),
])
def test_bad_input_is_one_line(args: list[str], pattern: str, model_dir: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.format(tmp=tmp_path, model=model_dir) for a in args]
    assert main(["export", "onnx", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("donkeyrl export: error:") and pattern in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "model.zip").write_text("not a zip")
    assert main(["export", "onnx", str(tmp_path)]) == 2
    assert "not a saved SB3 model" in capsys.readouterr().err
