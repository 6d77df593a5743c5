"""``donkeyrl export onnx``: a trained policy with its observation preprocessing, as one ONNX file.

The exported graph takes what the car's camera gives and returns what the car needs:

    input  frames       uint8 (frame_stack, 120, 160, 3)  the last camera images, OLDEST FIRST
    output action       what SB3's ``model.predict(obs, deterministic=True)`` returns:
                        int64 (1,) grid index (discrete agents) or float32 (1, 2) (continuous)
    output steering     float32 (1,)  steering in [-steer_limit, steer_limit]
    output throttle     float32 (1,)  throttle in [throttle_min, throttle_max]
    output observation  uint8 (1, H, W, C * frame_stack)  the stacked observation the policy saw

Frame stacking is the caller's state: keep the last ``frame_stack`` camera images (a deque) and
start a drive with black images, which is exactly SB3's ``VecFrameStack`` after a reset (a black
image preprocesses to zeros). A steering rate limit, when the model was trained with one, is also
the caller's: the metadata's ``steer_max_change`` is the largest steering change per step (from
0 at the start), ``none`` without a limit.

Preprocessing inside the graph reproduces :func:`donkeyrl.envs.common.fit_image` (the
crop, Pillow's grey conversion and Pillow's bilinear resize) bit for bit: Pillow converts to grey
with integer weights ``(19595 R + 38470 G + 7471 B + 2**15) >> 16`` and resizes in two passes, one
per axis, each a fixed-point weighted sum with 22 fractional bits rounded to uint8. The graph does
the same sums in float64 (exact for these integers) with the same weights
(:func:`pil_resize_weights`) and the pass order Pillow uses for these sizes
(:func:`pillow_preprocess`). Written by hand because no library exports Pillow's resize to ONNX;
ONNX's own ``Resize`` (antialiased linear) rounds differently, by one grey level here and there.

After writing, :func:`export_onnx` runs the file with onnxruntime next to SB3 on camera frames
from the simulator and refuses a file whose actions differ (:func:`check_parity`).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ActionMapping", "ExportedPolicy", "OnnxExport", "ParityError", "action_mapping", "export_onnx",
           "check_parity", "camera_frames", "sb3_actions", "onnx_actions", "pil_resize_weights", "pillow_preprocess",
           "CAMERA_SHAPE", "ONNX_NAME"]

log = logging.getLogger(__name__)

#: The DonkeyCar camera image (height, width) the graph takes by default.
CAMERA_SHAPE = (120, 160)
#: Default file name, beside the model.
ONNX_NAME = "policy.onnx"
#: Fractional bits of Pillow's fixed-point resampling weights for 8-bit images (32 - 8 - 2).
PIL_PRECISION_BITS = 22
OPSET = 18


class ParityError(RuntimeError):
    """The exported file does not reproduce the SB3 policy's actions."""


def pil_resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) Pillow's bilinear resampling weights along one axis, as the integers Pillow
    uses for 8-bit images (the weight times 2**22, rounded).

    Pillow does not expose its weights, so they are computed here by its documented rule: a
    triangle filter stretched by the reduction factor (never narrower than one input pixel),
    centred on each output pixel's centre, normalised to sum to one. The tests compare them with
    the weights Pillow itself applies (a 32-bit integer image resized pixel by pixel).
    """
    if n_in == n_out:
        return np.eye(n_out) * float(2 ** PIL_PRECISION_BITS)
    scale = n_in / n_out
    stretch = max(scale, 1.0)
    K = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo, hi = max(int(centre - stretch + 0.5), 0), min(int(centre + stretch + 0.5), n_in)
        w = [max(0.0, 1.0 - abs((x - centre + 0.5) / stretch)) for x in range(lo, hi)]
        total = 0.0
        for v in w:  # summed in order, in double precision, as Pillow sums them
            total += v
        K[i, lo:hi] = [v / total for v in w] if total else w
    return np.floor(K * 2 ** PIL_PRECISION_BITS + 0.5)


class Preprocess(nn.Module):
    """(k, Hc, Wc, 3) uint8 camera frames -> (1, k*C, H, W) float observation in [0, 255].

    Channel order as SB3 sees a ``VecFrameStack(channels_order="last")`` observation after
    ``VecTransposeImage``: frame-major (oldest first), then the image's channels.
    """

    kw: torch.Tensor  # (Wc, W) horizontal weights (buffers, declared for the type checker)
    kh: torch.Tensor  # (H, rows) vertical weights

    def __init__(self, camera: tuple[int, int], width: int, height: int, grey: bool, crop_top: float,
                 vertical_first: bool = False) -> None:
        super().__init__()
        self.top = int(round(camera[0] * crop_top))  # as fit_image crops
        self.grey = grey
        self.vertical_first = vertical_first
        rows = camera[0] - self.top
        self.register_buffer("kw", torch.tensor(pil_resize_weights(camera[1], width).T, dtype=torch.float64))
        self.register_buffer("kh", torch.tensor(pil_resize_weights(rows, height), dtype=torch.float64))
        self.scale = float(2 ** PIL_PRECISION_BITS)

    def _round(self, x: torch.Tensor) -> torch.Tensor:
        """Pillow's fixed-point rounding of one pass: floor((sum + 2**21) / 2**22), clipped to uint8."""
        return torch.clamp(torch.floor((x + self.scale / 2) / self.scale), 0.0, 255.0)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames[:, self.top:].to(torch.float64)  # (k, rows, Wc, 3)
        if self.grey:
            x = torch.floor((x[..., 0] * 19595.0 + x[..., 1] * 38470.0 + x[..., 2] * 7471.0 + 32768.0)
                            / 65536.0).unsqueeze(1)  # (k, 1, rows, Wc)
        else:
            x = x.permute(0, 3, 1, 2)  # (k, 3, rows, Wc)
        if self.vertical_first:
            x = self._round(torch.matmul(self.kh, x))  # vertical pass: (k, C, H, Wc)
            x = self._round(torch.matmul(x, self.kw))  # horizontal pass: (k, C, H, W)
        else:
            x = self._round(torch.matmul(x, self.kw))  # horizontal pass: (k, C, rows, W)
            x = self._round(torch.matmul(self.kh, x))  # vertical pass: (k, C, H, W)
        k, c, h, w = x.shape
        return x.reshape(1, k * c, h, w)


def pillow_preprocess(camera: tuple[int, int], width: int, height: int, grey: bool, crop_top: float,
                      probes: int = 8) -> Preprocess:
    """The :class:`Preprocess` that reproduces ``fit_image`` for these sizes exactly.

    Pillow runs its two passes horizontal first for some sizes and vertical first for others
    (the rounding between the passes makes the order visible), so both orders are tried on
    ``probes`` random images and the one that matches Pillow on every pixel is kept. ValueError
    when neither does (a Pillow whose resize works differently).
    """
    from donkeyrl.envs.common import fit_image

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (probes, camera[0], camera[1], 3), dtype=np.uint8)
    want = np.stack([fit_image(im, width, height, grey, crop_top) for im in images])  # (p, H, W, C)
    for vertical_first in (False, True):
        pre = Preprocess(camera, width, height, grey, crop_top, vertical_first)
        with torch.no_grad():
            got = np.stack([pre(torch.from_numpy(im[None])).numpy().transpose(0, 2, 3, 1)[0] for im in images])
        if np.array_equal(got, want):
            return pre
    raise ValueError(f"cannot reproduce Pillow's resize of {camera[0]}x{camera[1]} camera images to "
                     f"{width}x{height} exactly (crop_top {crop_top}); export with this Pillow is not possible")


class ExportedPolicy(nn.Module):
    """Preprocessing + the SB3 policy's deterministic action + the env's action mapping."""

    low: torch.Tensor  # (2,) action box (continuous)
    high: torch.Tensor
    steer_values: torch.Tensor  # (n_steer,) discrete grid
    throttle_values: torch.Tensor  # (n_throttle,)

    def __init__(self, model: Any, cfg: Any, camera: tuple[int, int], grid: tuple[np.ndarray, np.ndarray] | None,
                 throttle_range: tuple[float, float]) -> None:
        super().__init__()
        from donkeyrl.rl.algorithms import get_algorithm

        self.pre = pillow_preprocess(camera, cfg.obs_width, cfg.obs_height, cfg.grey, cfg.crop_top)
        self.policy = model.policy.eval()
        self.head = get_algorithm(cfg.agent).action_head
        self.discrete = grid is not None
        box = model.action_space
        if not self.discrete:
            self.register_buffer("low", torch.tensor(box.low, dtype=torch.float32))
            self.register_buffer("high", torch.tensor(box.high, dtype=torch.float32))
        else:
            self.register_buffer("steer_values", torch.tensor(grid[0], dtype=torch.float32))  # type: ignore[index]
            self.register_buffer("throttle_values", torch.tensor(grid[1], dtype=torch.float32))  # type: ignore[index]
            self.n_throttle = len(grid[1])  # type: ignore[index]
        self.tmin, self.tmax = throttle_range

    def _raw_action(self, obs: torch.Tensor) -> torch.Tensor:
        """SB3's deterministic action, by the registry's ``action_head`` of the algorithm."""
        p = self.policy
        if self.head == "q_network":  # DQN: the greedy action
            return torch.argmax(p.q_net(obs), dim=1)
        if self.head == "squashed_actor":  # SAC, TQC: the mode tanh(mean) in [-1, 1], rescaled to the box
            mean, _, _ = p.actor.get_action_dist_params(obs)  # (the distribution object does not export)
            a = torch.tanh(mean)
            return self.low + 0.5 * (a + 1.0) * (self.high - self.low)
        # actor_critic (PPO): the distribution's mode (the mean, or the most likely index)
        features = p.extract_features(obs, p.pi_features_extractor)
        logits_or_mean = p.action_net(p.mlp_extractor.forward_actor(features))
        if self.discrete:
            return torch.argmax(logits_or_mean, dim=1)
        return logits_or_mean

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        obs = self.pre(frames)
        action = self._raw_action(obs.to(torch.float32))
        if self.discrete:
            i_steer = torch.div(action, self.n_throttle, rounding_mode="floor")
            steering = self.steer_values[i_steer]
            throttle = self.throttle_values[action - i_steer * self.n_throttle]
        else:
            action = torch.maximum(torch.minimum(action, self.high), self.low)  # SB3 predict clips
            steering, throttle = action[:, 0], action[:, 1]
        throttle = torch.clamp(throttle, self.tmin, self.tmax)  # the ThrottleClamp wrapper
        observation = obs.permute(0, 2, 3, 1).to(torch.uint8)  # channels last, as SB3 stacks it
        return action, steering, throttle, observation


@dataclass(frozen=True)
class OnnxExport:
    """What was written, and the parity check's outcome."""

    path: Path
    frame_stack: int
    camera: tuple[int, int]
    checked_frames: int
    """Frames on which onnxruntime and SB3 were compared (0: not checked)."""
    max_abs_diff: float
    """Largest action difference seen (0 for identical discrete actions)."""


@dataclass(frozen=True)
class ActionMapping:
    """How the model's env stack turns a policy action into steering and throttle."""

    grid: tuple[np.ndarray, np.ndarray] | None
    """(steering values, throttle values) of a discrete agent's action grid; None if continuous."""
    throttle_range: tuple[float, float]
    """The throttle clamp (ThrottleClamp)."""
    steer_max_change: float | None
    """Largest steering change per step (SteeringRateLimit), None without a limit."""


def action_mapping(cfg: Any) -> ActionMapping:
    """Read from the model's own wrappers (built once, not stepped), so it cannot drift from them."""
    from donkeyrl.report.driving import drive_factory
    from donkeyrl.rl.envbuild import build_env
    from donkeyrl.rl.wrappers import DiscretizedAction, SteeringRateLimit, ThrottleClamp

    env = build_env(cfg, tracks=["generated_track"],
                    env_factory=drive_factory(max_laps=None, max_steps=None, start_noise=False, render=False))
    grid, clamp, limit = None, (-1.0, 1.0), None
    e: Any = env
    while e is not None:
        if isinstance(e, DiscretizedAction):
            grid = (np.asarray(e.steer_values, np.float32), np.asarray(e.throttle_values, np.float32))
        if isinstance(e, ThrottleClamp):
            clamp = (e.throttle_min, e.throttle_max)
        if isinstance(e, SteeringRateLimit):
            limit = float(e.max_step)
        e = getattr(e, "env", None)
    env.close()
    return ActionMapping(grid, clamp, limit)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch.onnx's notes about absent torchvision ops and its own deprecation warnings kept off the
    console (the CLI owns it); errors still raise."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(model_dir: str | Path, out: str | Path | None = None, *, camera: tuple[int, int] = CAMERA_SHAPE,
                check_frames: int = 100, atol: float = 1e-5) -> OnnxExport:
    """Writes the policy of ``model_dir`` (model.zip + trial_config.json) as ONNX.

    ``out`` defaults to ``<model_dir>/policy.onnx``. With ``check_frames > 0`` the file is run
    on that many simulator camera frames next to SB3 and ParityError is raised (and the file
    removed) when an action differs by more than ``atol`` (discrete: any different index).
    Raises :class:`donkeyrl.rl.evaluate.ModelLoadError` for a model that cannot be loaded.
    """
    import onnx

    from donkeyrl.rl.evaluate import load_trained

    model, cfg = load_trained(model_dir)
    src = Path(model_dir)
    path = Path(out) if out is not None else (src if src.is_dir() else src.parent) / ONNX_NAME
    mapping = action_mapping(cfg)
    grid, clamp = mapping.grid, mapping.throttle_range
    module = ExportedPolicy(model, cfg, camera, grid, clamp).eval()
    example = torch.zeros((cfg.frame_stack, camera[0], camera[1], 3), dtype=torch.uint8)
    with torch.no_grad(), _quiet_exporter():
        program = torch.onnx.export(module, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                                    input_names=["frames"],
                                    output_names=["action", "steering", "throttle", "observation"])
    proto = program.model_proto  # type: ignore[union-attr]
    meta = {
        "producer": "donkeyrl export onnx", "agent": cfg.agent, "discrete": str(grid is not None).lower(),
        "frame_stack": str(cfg.frame_stack), "camera_height": str(camera[0]), "camera_width": str(camera[1]),
        "obs_width": str(cfg.obs_width), "obs_height": str(cfg.obs_height), "grey": str(cfg.grey).lower(),
        "crop_top": str(cfg.crop_top), "throttle_min": str(clamp[0]), "throttle_max": str(clamp[1]),
        "steer_max_change": "none" if mapping.steer_max_change is None else f"{mapping.steer_max_change:.6g}",
        "frames_order": "oldest first",
    }
    if grid is not None:
        meta["steer_values"] = ",".join(f"{v:.6g}" for v in grid[0])
        meta["throttle_values"] = ",".join(f"{v:.6g}" for v in grid[1])
    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = __doc__.split("\n\n")[1] if __doc__ else ""
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    checked, diff = 0, 0.0
    if check_frames > 0:
        try:
            diff = check_parity(path, model, cfg, camera_frames(check_frames, camera=camera), atol=atol)
        except ParityError:
            path.unlink(missing_ok=True)
            raise
        checked = check_frames
    log.info("wrote %s (%d kB)", path, path.stat().st_size // 1024)
    return OnnxExport(path, cfg.frame_stack, camera, checked, diff)


def camera_frames(n: int, *, track: str = "generated_track", seed: int = 0,
                  camera: tuple[int, int] = CAMERA_SHAPE) -> np.ndarray:
    """(n, H, W, 3) uint8 camera images of the scripted expert driving ``track`` (real frames for
    parity checks: road, curves, the car moving)."""
    from donkeyrl.envs import make_env
    from donkeyrl.sim.camera import CameraConfig
    from donkeyrl.sim.expert import ExpertDriver

    env = make_env(track, camera=CameraConfig(width=camera[1], height=camera[0]), throttle_min=-1.0,
                   domain_randomization=True, seed=seed)
    try:
        obs, _ = env.reset(seed=seed)
        base: Any = env.unwrapped
        driver = ExpertDriver(base.sim.track)
        frames: list[np.ndarray] = []
        rng = np.random.default_rng(seed)
        while len(frames) < n:
            frames.append(obs)
            action = driver.action_for_env(base.sim.telemetry(0))
            action[0] = np.clip(action[0] + rng.normal(0, 0.3), -1, 1)  # wander, so views vary
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                obs, _ = env.reset()
        return np.stack(frames)
    finally:
        env.close()


def sb3_actions(model: Any, cfg: Any, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(actions, stacked observations) of SB3 on ``frames`` as one drive from a reset: each frame
    goes through :func:`donkeyrl.envs.common.fit_image` and SB3's own frame stacker."""
    from stable_baselines3.common.vec_env.stacked_observations import StackedObservations

    from donkeyrl.envs.common import fit_image

    obs = [fit_image(f, cfg.obs_width, cfg.obs_height, cfg.grey, cfg.crop_top)[None] for f in frames]
    import gymnasium as gym

    space = gym.spaces.Box(0, 255, obs[0].shape[1:], np.uint8)
    stacker = StackedObservations(1, cfg.frame_stack, space, channels_order="last")
    stacked = [stacker.reset(obs[0])]
    for o in obs[1:]:
        stacked.append(stacker.update(o, np.array([False]), [{}])[0])
    actions = [model.predict(s, deterministic=True)[0] for s in stacked]
    return np.concatenate(actions), np.concatenate(stacked)


def onnx_actions(path: str | Path, frames: np.ndarray, frame_stack: int) -> dict[str, np.ndarray]:
    """Every output of the ONNX file over ``frames`` as one drive (a deque of the last
    ``frame_stack`` frames, black at the start), stacked along the first axis."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    window: deque[np.ndarray] = deque([np.zeros_like(frames[0])] * frame_stack, maxlen=frame_stack)
    out: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for f in frames:
        window.append(f)
        for n, v in zip(names, sess.run(None, {"frames": np.stack(window)})):
            out[n].append(v)
    return {n: np.concatenate(v) for n, v in out.items()}


def check_parity(path: str | Path, model: Any, cfg: Any, frames: np.ndarray, *, atol: float = 1e-5) -> float:
    """Max action difference between onnxruntime and SB3 on ``frames``; ParityError beyond ``atol``
    (or for any differing discrete index, or any differing observation pixel)."""
    ref_actions, ref_obs = sb3_actions(model, cfg, frames)
    got = onnx_actions(path, frames, cfg.frame_stack)
    if not np.array_equal(got["observation"], ref_obs):
        bad = int((got["observation"] != ref_obs).sum())
        raise ParityError(f"{path}: the preprocessed observation differs from SB3's in {bad} pixels")
    a, b = np.asarray(got["action"]).reshape(ref_actions.shape), ref_actions
    if np.issubdtype(b.dtype, np.integer):
        if not np.array_equal(a, b):
            raise ParityError(f"{path}: {(a != b).sum()} of {len(b)} discrete actions differ from SB3's")
        return 0.0
    diff = float(np.max(np.abs(a.astype(np.float64) - b)))
    if diff > atol:
        raise ParityError(f"{path}: actions differ from SB3's by up to {diff:.3g} (> {atol})")
    return diff
