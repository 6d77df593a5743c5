"""ONNX export: onnxruntime and SB3 give the same actions on the same 100 camera frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from report_fixtures import train_tiny
from donkeyrl.envs.common import fit_image
from donkeyrl.report.onnx_export import (ParityError, action_mapping, camera_frames, check_parity, export_onnx,
                                         onnx_actions, pil_resize_weights, pillow_preprocess, sb3_actions)
from donkeyrl.rl.evaluate import load_trained


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """100 real camera frames (120x160x3) of the expert wandering round a track."""
    f = camera_frames(100, track="warren", seed=3)
    assert f.shape == (100, 120, 160, 3) and f.dtype == np.uint8
    assert len({f[i].tobytes() for i in range(100)}) > 90  # the view changes
    return f


def _parity(model_dir: Path, frames: np.ndarray, tmp_path: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    out = export_onnx(model_dir, tmp_path / "policy.onnx", check_frames=0)
    assert out.checked_frames == 0 and out.path.is_file()
    model, cfg = load_trained(model_dir)
    ref_actions, ref_obs = sb3_actions(model, cfg, frames)
    got = onnx_actions(out.path, frames, cfg.frame_stack)
    return got, ref_actions, ref_obs


def test_ppo_continuous_parity(ppo_continuous: Path, frames: np.ndarray, tmp_path: Path) -> None:
    got, ref_actions, ref_obs = _parity(ppo_continuous, frames, tmp_path)
    # the preprocessing inside the graph is bit-exact with Pillow's, and SB3's frame stacking
    assert got["observation"].shape == ref_obs.shape == (100, 32, 64, 2)
    np.testing.assert_array_equal(got["observation"], ref_obs)
    assert got["action"].shape == ref_actions.shape == (100, 2)
    np.testing.assert_allclose(got["action"], ref_actions, rtol=0, atol=1e-5)
    assert np.ptp(ref_actions[:, 0]) > 0  # the policy reacts to the frames (not a constant output)
    _, cfg = load_trained(ppo_continuous)
    np.testing.assert_allclose(got["steering"], ref_actions[:, 0], atol=1e-5)
    np.testing.assert_allclose(got["throttle"], np.clip(ref_actions[:, 1], cfg.throttle_min, cfg.throttle_max),
                               atol=1e-5)


def test_ppo_discrete_parity_and_grid(ppo_discrete: Path, frames: np.ndarray, tmp_path: Path) -> None:
    got, ref_actions, ref_obs = _parity(ppo_discrete, frames, tmp_path)
    np.testing.assert_array_equal(got["observation"], ref_obs)
    assert got["action"].dtype == np.int64
    np.testing.assert_array_equal(got["action"].reshape(-1), ref_actions.reshape(-1))
    _, cfg = load_trained(ppo_discrete)
    steer_values, throttle_values = action_mapping(cfg).grid
    i_steer, i_throttle = np.divmod(ref_actions.reshape(-1), len(throttle_values))
    np.testing.assert_array_equal(got["steering"], steer_values[i_steer])
    np.testing.assert_array_equal(got["throttle"], throttle_values[i_throttle])


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["dqn", "sac"])
def test_off_policy_parity(agent: str, frames: np.ndarray, tmp_path: Path) -> None:
    model_dir = train_tiny(tmp_path / agent, agent=agent, timesteps=200)
    got, ref_actions, ref_obs = _parity(model_dir, frames, tmp_path)
    np.testing.assert_array_equal(got["observation"], ref_obs)
    if agent == "dqn":
        np.testing.assert_array_equal(got["action"].reshape(-1), ref_actions.reshape(-1))
    else:
        np.testing.assert_allclose(got["action"], ref_actions, rtol=0, atol=1e-5)


def test_metadata_and_shapes(ppo_discrete: Path, tmp_path: Path) -> None:
    out = export_onnx(ppo_discrete, tmp_path / "p.onnx", check_frames=10)
    assert out.checked_frames == 10 and out.max_abs_diff == 0.0
    proto = onnx.load(str(out.path))
    meta = {p.key: p.value for p in proto.metadata_props}
    _, cfg = load_trained(ppo_discrete)
    assert meta["frame_stack"] == str(cfg.frame_stack) and meta["discrete"] == "true"
    assert meta["frames_order"] == "oldest first" and len(meta["steer_values"].split(",")) == cfg.n_steer
    assert meta["steer_max_change"] == "none"  # trained without a steering rate limit
    inp = proto.graph.input[0]
    assert inp.name == "frames"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [cfg.frame_stack, 120, 160, 3]
    assert [o.name for o in proto.graph.output] == ["action", "steering", "throttle", "observation"]


def test_the_parity_check_catches_a_different_preprocessing(ppo_continuous: Path, frames: np.ndarray,
                                                            tmp_path: Path) -> None:
    out = export_onnx(ppo_continuous, tmp_path / "p.onnx", check_frames=0)
    model, cfg = load_trained(ppo_continuous)
    other = cfg.replace(crop_top=0.3)
    with pytest.raises(ParityError, match="observation differs"):
        check_parity(out.path, model, other, frames[:20])


@pytest.mark.parametrize("n_in, n_out", [(160, 64), (88, 32), (72, 32), (94, 90), (50, 37), (40, 80)])
def test_resize_weights_are_the_ones_pillow_applies(n_in: int, n_out: int) -> None:
    """Pillow's own weights, read by resizing a 32-bit integer image with one lit pixel (value
    2**30) at a time, agree with ours to the rounding of that read-out."""
    from PIL import Image

    applied = np.zeros((n_out, n_in))
    for j in range(n_in):
        row = np.zeros((1, n_in), np.int32)
        row[0, j] = 2 ** 30
        applied[:, j] = np.asarray(Image.fromarray(row, mode="I").resize((n_out, 1), Image.Resampling.BILINEAR))[0]
    ours = pil_resize_weights(n_in, n_out) * 2 ** 8  # 2**22 scale -> 2**30 scale
    assert np.max(np.abs(ours - applied)) <= 0.5 * 2 ** 8 + 0.5


@pytest.mark.parametrize("obs, grey, crop_top", [
    ((64, 32), True, 0.4), ((80, 60), False, 0.0), ((90, 54), True, 0.1), ((160, 72), True, 0.4),
    ((37, 50), False, 0.25), ((155, 60), True, 0.4),
])
def test_graph_preprocessing_is_bit_exact_with_pillow(obs: tuple[int, int], grey: bool, crop_top: float,
                                                      frames: np.ndarray) -> None:
    """Crop, grey and resize inside the graph give fit_image's pixels, whichever pass order Pillow
    picks for the sizes (155x60 from 72 rows is one where it resizes vertically first)."""
    import torch

    pre = pillow_preprocess((120, 160), obs[0], obs[1], grey, crop_top)
    assert pre.vertical_first == (obs == (155, 60))
    for f in frames[::10]:
        with torch.no_grad():
            got = pre(torch.from_numpy(f[None])).numpy()[0].transpose(1, 2, 0)
        np.testing.assert_array_equal(got.astype(np.uint8), fit_image(f, obs[0], obs[1], grey, crop_top))
