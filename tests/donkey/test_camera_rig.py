"""cam_config semantics of the DonkeyCar simulator and how the server's camera renders them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from donkeyrl.donkey import protocol as P
from donkeyrl.donkey.camera_rig import (FISHEYE_SCALE, MAX_IMAGE_SIDE, ORIGIN_HEIGHT, CameraSettings,
                                        CameraView, CarShape)
from donkeyrl.sim.appearance import Appearance
from donkeyrl.sim.camera import CameraConfig, Renderer
from donkeyrl.sim.tracks import get_track

DEFAULT = CameraSettings.default()


@pytest.fixture(scope="module")
def track():
    return get_track("generated_track")


def test_default_is_the_built_in_camera():
    c = CameraConfig()
    assert (DEFAULT.width, DEFAULT.height, DEFAULT.fov) == (c.width, c.height, c.fov_deg)
    assert DEFAULT.offset == pytest.approx((0.0, c.cam_height - ORIGIN_HEIGHT, c.cam_forward))
    assert DEFAULT.offset[1] == pytest.approx(1.12)  # the simulator's mount, above the car's origin
    assert DEFAULT.rotation[0] == c.pitch_deg
    x, z, yaw = get_track("generated_track").start_pose()
    assert np.array_equal(CameraView(DEFAULT, get_track("generated_track")).frame(x, z, yaw),
                          Renderer(get_track("generated_track")).render(x, z, yaw))  # exactly the built-in camera
    assert not DEFAULT.grey and not DEFAULT.remapped and DEFAULT.image_format == "JPEG"


def test_gym_donkeycar_default_img_enc_keeps_the_size():
    # gym-donkeycar sends every field, "0" for the ones the user left alone
    msg = P.CamConfig(img_w=320, img_h=240, img_enc="0", img_d=0, fov=0, offset_x=0, rot_x=0)
    out, problems = DEFAULT.apply(msg)
    assert (out.width, out.height) == (320, 240) and out.encoding == "JPG" and not problems
    assert out.offset == DEFAULT.offset and out.rotation == DEFAULT.rotation and out.depth == 3


@pytest.mark.parametrize("enc, fmt", [("PNG", "PNG"), ("TGA", "TGA"), ("JPG", "JPEG"), ("png", "JPEG"),
                                      ("BMP", "JPEG")])
def test_three_letter_encodings_like_the_simulator(enc, fmt):
    out, _ = DEFAULT.apply(P.CamConfig(img_enc=enc))
    assert out.encoding == enc and out.image_format == fmt


@pytest.mark.parametrize("enc", ["0", "", "JPEG", "PNGX"])
def test_other_encodings_are_ignored_not_rejected(enc):
    png, _ = DEFAULT.apply(P.CamConfig(img_enc="PNG"))
    out, problems = png.apply(P.CamConfig(img_enc=enc, img_w=64, img_h=48))
    assert out.encoding == "PNG" and (out.width, out.height) == (64, 48) and not problems


def test_size_needs_both_sides_and_bad_values_leave_the_rest_applied():
    out, _ = DEFAULT.apply(P.CamConfig(img_w=320))
    assert (out.width, out.height) == (160, 120)
    out, problems = DEFAULT.apply(P.CamConfig(img_w=100_000, img_h=50, fov=60, img_d=1))
    assert (out.width, out.height) == (160, 120) and out.fov == 60 and out.grey
    assert len(problems) == 1 and "100000x50" in problems[0] and str(MAX_IMAGE_SIDE) in problems[0]
    out, problems = DEFAULT.apply(P.CamConfig(fov=200, rot_x=120, fish_eye_x=50))
    assert out == DEFAULT and len(problems) == 3


def test_pose_fields_replace_the_whole_vector_when_any_is_set():
    # the simulator sets localPosition = (x, y, z) and localEulerAngles = (rx, ry, rz)
    out, _ = DEFAULT.apply(P.CamConfig(offset_x=0.3, offset_y=1.5, offset_z=0.2))
    assert out.offset == (0.3, 1.5, 0.2)
    out, _ = DEFAULT.apply(P.CamConfig(rot_y=10.0))
    assert out.rotation == (0.0, 10.0, 0.0)  # pitch back to 0, as in Unity
    out, _ = DEFAULT.apply(P.CamConfig(rot_x=345.0, rot_z=-370.0))
    assert out.rotation == pytest.approx((-15.0, 0.0, -10.0))
    out, _ = DEFAULT.apply(P.CamConfig(fish_eye_x=0.2))
    assert out.fisheye == (0.2, 0.0) and out.remapped
    again, _ = out.apply(P.CamConfig(fish_eye_x=0.0, fish_eye_y=0.0))
    assert again.fisheye == (0.2, 0.0)  # zeros leave Unity's effect on


def test_grey_is_three_equal_channels_with_unity_weights(track):
    settings, _ = DEFAULT.apply(P.CamConfig(img_d=1))
    x, z, yaw = track.start_pose()
    grey = CameraView(settings, track).frame(x, z, yaw)
    rgb = CameraView(DEFAULT, track).frame(x, z, yaw)
    assert grey.shape == (120, 160, 3)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 0], grey[..., 2])
    expected = (rgb.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)).astype(np.uint8)
    assert np.array_equal(grey[..., 0], expected)


def test_offset_x_and_yaw_move_the_rendered_camera(track):
    settings, _ = DEFAULT.apply(P.CamConfig(offset_x=0.8, offset_y=1.12, offset_z=0.55, rot_x=15,
                                            rot_y=20))
    x, z, yaw = track.start_pose()
    look = dataclasses.replace(Appearance.for_scene(track.scene), shadow=0.0)  # the pose alone
    got = CameraView(settings, track).frame(x, z, yaw, look)
    # the same image from a camera placed by hand: 0.8 right, 0.55 ahead, turned 20 degrees right
    fx, fz = math.sin(yaw), math.cos(yaw)
    cx, cz = x + fx * 0.55 + fz * 0.8, z + fz * 0.55 - fx * 0.8
    ref = Renderer(track, CameraConfig(cam_forward=0.0, cam_height=1.12 + ORIGIN_HEIGHT)).render(
        cx, cz, yaw + math.radians(20), look)
    assert np.array_equal(got, ref)
    assert not np.array_equal(got, CameraView(DEFAULT, track).frame(x, z, yaw, look))


@pytest.mark.parametrize("size", [(160, 120), (96, 96)])
def test_roll_rotates_the_image_about_its_centre(track, size):
    w, h = size
    base, _ = DEFAULT.apply(P.CamConfig(img_w=w, img_h=h))
    x, z, yaw = track.start_pose()
    level = CameraView(base, track).frame(x, z, yaw)
    upside, _ = base.apply(P.CamConfig(rot_x=15, rot_z=180))
    assert np.array_equal(CameraView(upside, track).frame(x, z, yaw), level[::-1, ::-1])
    if w == h:  # a positive roll turns the camera's top to the left: the scene turns clockwise
        quarter, _ = base.apply(P.CamConfig(rot_x=15, rot_z=90))
        assert np.array_equal(CameraView(quarter, track).frame(x, z, yaw), np.rot90(level, k=-1))


def test_fisheye_follows_unitys_shader(track):
    settings, _ = DEFAULT.apply(P.CamConfig(fish_eye_x=0.6, fish_eye_y=0.3))
    view = CameraView(settings, track)
    W, H = 160, 120
    # a synthetic source whose pixel values encode their column and row
    cols = np.tile(np.arange(W, dtype=np.float64), (H, 1))
    src = np.stack([cols, np.tile(np.arange(H, dtype=np.float64)[:, None], (1, W)), cols * 0],
                   axis=2).astype(np.uint8)
    out = view._remap(src)
    for r, c in [(10, 20), (60, 80), (100, 150), (30, 130)]:
        gx, gy = (c + 0.5) / W * 2 - 1, (r + 0.5) / H * 2 - 1
        ix, iy = 0.6 * (W / H) * FISHEYE_SCALE, 0.3 * FISHEYE_SCALE
        sx, sy = gx - 2 * (1 - gy * gy) * iy * gx, gy - 2 * (1 - gx * gx) * ix * gy
        assert out[r, c, 0] == pytest.approx((sx + 1) / 2 * W - 0.5, abs=0.51)
        assert out[r, c, 1] == pytest.approx((sy + 1) / 2 * H - 0.5, abs=0.51)
    # positive strengths magnify the centre: its neighbourhood samples closer to the middle
    assert abs(int(out[60, 20, 0]) - 80) < abs(20 - 80)


def test_other_cars_are_drawn_in_their_colour(track):
    x, z, yaw = track.start_pose()
    view = CameraView(DEFAULT, track)
    fx, fz = math.sin(yaw), math.cos(yaw)
    ahead = CarShape(x + fx * 6, z + fz * 6, yaw, 1.1, 0.7, 0.9, (10, 200, 250))
    behind = CarShape(x - fx * 6, z - fz * 6, yaw, 1.1, 0.7, 0.9, (10, 200, 250))
    plain = view.frame(x, z, yaw)
    seen = view.frame(x, z, yaw, cars=(ahead,))
    mask = np.all(seen == (10, 200, 250), axis=2)
    assert 100 < mask.sum() < 0.3 * mask.size
    rows, cols = np.nonzero(mask)
    assert abs(cols.mean() - 80) < 10 and rows.mean() > 40  # ahead, centred, below the horizon
    assert np.array_equal(view.frame(x, z, yaw, cars=(behind,)), plain)
