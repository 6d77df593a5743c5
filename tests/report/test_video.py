"""Video frames (camera + overlay + bird's-eye trail) and the GIF / MP4 writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from donkeyrl.envs import make_env
from donkeyrl.report.video import FrameComposer, gif_bytes, thin_frames, webp_bytes, write_gif, write_mp4
from donkeyrl.sim.expert import ExpertDriver


def _drive(n: int) -> tuple[FrameComposer, list[np.ndarray], list[dict]]:
    env = make_env("warren", throttle_min=-1.0)
    obs, _ = env.reset(seed=0)
    base = env.unwrapped
    composer = FrameComposer(base.sim.track)
    driver = ExpertDriver(base.sim.track)
    frames, infos = [composer.frame(obs, {})], []
    for _ in range(n):
        obs, _, term, trunc, info = env.step(driver.action_for_env(base.sim.telemetry(0)))
        frames.append(composer.frame(obs, info))
        infos.append(info)
    env.close()
    return composer, frames, infos


def test_frame_layout_overlay_and_trail() -> None:
    composer, frames, infos = _drive(60)
    assert all(f.shape == (240, 560, 3) and f.dtype == np.uint8 for f in frames)
    first, last = frames[1], frames[-1]
    # camera on the left (2x), map on the right; the overlay's black bars top and bottom
    assert (first[:14, :320].max(axis=2) < 30).mean() > 0.7  # mostly black, with white text
    assert (first[:14, :320].max(axis=2) > 200).any()
    assert (first[-24:, :320].max(axis=2) < 30).mean() > 0.6
    # the car (red dot) moves on the map and leaves a trail: the map changes between frames
    car = np.argwhere((last[:, 320:, 0] > 200) & (last[:, 320:, 1] < 60) & (last[:, 320:, 2] < 60))
    assert len(car) > 0
    x, z = infos[-1]["pos"][0] * 8.0, infos[-1]["pos"][2] * 8.0
    px = composer.to_px((x, z))
    assert np.min(np.abs(car[:, 1] - px[0]) + np.abs(car[:, 0] - px[1])) <= 3
    assert (frames[1][:, 320:] != last[:, 320:]).sum() > 100


def test_steering_bar_follows_the_action() -> None:
    composer, _, _ = _drive(1)
    cam = np.zeros((120, 160, 3), np.uint8)
    left = composer.frame(cam, {"pos": (0, 0, 0), "steering": -1.0, "throttle": 0.5})
    right = composer.frame(cam, {"pos": (0, 0, 0), "steering": 1.0, "throttle": 0.5})
    y = 240 - 26 + 4  # the steering bar's row
    blue = lambda f: np.flatnonzero((f[y, :320, 2] > 200) & (f[y, :320, 0] < 120))  # noqa: E731
    assert blue(left).min() < 60 and blue(left).max() <= 160  # from the left end to the centre
    assert blue(right).min() >= 160 and blue(right).max() > 260


def test_gif_and_mp4_round_trip(tmp_path: Path) -> None:
    import imageio.v3 as iio

    _, frames, _ = _drive(40)
    kept, every = thin_frames(frames, 10, min_every=2)
    assert every == 5 and len(kept) == 9
    write_gif(tmp_path / "a.gif", kept, fps=4)
    gif = iio.imread(tmp_path / "a.gif")
    assert gif.shape == (9, 240, 560, 3)
    assert gif_bytes(kept, fps=4)[:6] == b"GIF89a"
    write_mp4(tmp_path / "a.mp4", frames, fps=20)
    mp4 = iio.imread(tmp_path / "a.mp4", plugin="FFMPEG")
    assert mp4.shape == (len(frames), 240, 560, 3)
    # lossy, but the same picture
    assert np.abs(mp4[20].astype(int) - frames[20].astype(int)).mean() < 12


def test_webp_animation() -> None:
    import io

    from PIL import Image

    _, frames, _ = _drive(12)
    data = webp_bytes(frames, fps=10)
    im = Image.open(io.BytesIO(data))
    assert im.format == "WEBP" and im.n_frames == len(frames) and im.size == (560, 240)
    im.load()
    assert im.info["duration"] == 100 and im.info["loop"] == 0
