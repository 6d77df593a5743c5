"""Behaviour of the camera renderer (donkeyrl.sim.camera): what a frame shows, formats, determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from donkeyrl.sim.appearance import Appearance, pack
from donkeyrl.sim.camera import CameraConfig, Renderer
from donkeyrl.sim.raster import FAR, get_raster
from donkeyrl.sim.track import Track, Wall

FLAT = Appearance(noise=0.0, shadow=0.0)  # no texture noise or shadow: every surface has one colour


def bend_track(sign: float, half_width: float = 4.0, **kwargs: object) -> Track:
    """Straight 30 units up +z, then a 90-degree bend of radius 12 (sign +1 right, -1 left)."""
    pts = [(0.0, z) for z in np.linspace(0.0, 30.0, 7)]
    pts += [(sign * (12 - 12 * np.cos(a)), 30 + 12 * np.sin(a)) for a in np.linspace(0, np.pi / 2, 8)[1:]]
    pts += [(sign * (12 + d), 42.0) for d in (6.0, 12.0, 18.0, 24.0)]
    return Track.from_waypoints("bend", np.array(pts), half_width, closed=False, **kwargs)


def loop_track(**kwargs: object) -> Track:
    th = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    wp = np.stack([40 * np.sin(th) * (1 + 0.3 * np.cos(3 * th)), 30 * np.cos(th)], axis=1)
    return Track.from_waypoints("loop", wp, 4.0, closed=True, **kwargs)


@pytest.fixture(scope="module")
def right() -> Track:
    return bend_track(+1.0)


@pytest.fixture(scope="module")
def left() -> Track:
    return bend_track(-1.0)


def colour(app: Appearance, name: str) -> np.ndarray:
    return np.array(getattr(app, name), dtype=np.uint8)


def mask_of(img: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    return np.all(img == rgb, axis=-1)


# ---------------------------------------------------------------- formats
@pytest.mark.parametrize("cfg", [CameraConfig(), CameraConfig(grey=True), CameraConfig(width=64, height=64),
                                 CameraConfig(width=33, height=17, grey=True, crop_top=0.3),
                                 CameraConfig(width=1, height=1)])
def test_shape_and_dtype(right: Track, cfg: CameraConfig) -> None:
    img = Renderer(right, cfg).render(0.0, 5.0, 0.0)
    assert img.shape == (cfg.height, cfg.width, 1 if cfg.grey else 3)
    assert img.dtype == np.uint8
    batch = Renderer(right, cfg).render_batch(np.zeros(3), np.arange(3.0), np.zeros(3))
    assert batch.shape == (3, *img.shape) and batch.dtype == np.uint8


def test_out_buffer_is_filled_in_place(right: Track) -> None:
    r = Renderer(right)
    out = np.zeros((120, 160, 3), np.uint8)
    res = r.render(0.0, 5.0, 0.0, out=out)
    assert res is out and np.array_equal(out, r.render(0.0, 5.0, 0.0))


def test_grey_is_luminance_of_rgb(right: Track) -> None:
    rgb = Renderer(right, CameraConfig(), FLAT).render(0.0, 5.0, 0.0).astype(float)
    grey = Renderer(right, CameraConfig(grey=True), FLAT).render(0.0, 5.0, 0.0)[..., 0].astype(float)
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    assert np.abs(lum - grey).max() <= 2.0


# ---------------------------------------------------------------- determinism
def test_same_inputs_give_identical_bytes(right: Track) -> None:
    app = Appearance.random(7)
    a = Renderer(right, appearance=app).render(1.0, 12.0, 0.2)
    b = Renderer(right, appearance=app).render(1.0, 12.0, 0.2)
    assert a.tobytes() == b.tobytes()


def test_appearance_random_is_seeded() -> None:
    assert Appearance.random(5) == Appearance.random(5)
    assert Appearance.random(5) == Appearance.random(np.random.default_rng(5))
    assert Appearance.random(5) != Appearance.random(6)
    draws = {Appearance.random(s).road for s in range(20)}
    assert len(draws) > 10


def test_random_appearances_render_differently(right: Track) -> None:
    r = Renderer(right)
    a, b = (r.render(0.0, 5.0, 0.0, appearance=Appearance.random(s)) for s in (1, 2))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5


def test_batch_equals_single_renders(right: Track) -> None:
    r = Renderer(right)
    xs, zs, yaws = np.array([0.0, 2.0, -3.0, 10.0]), np.array([0.0, 10.0, 25.0, 38.0]), np.array([0.0, 0.3, -0.2, 1.2])
    batch = r.render_batch(xs, zs, yaws)
    for i in range(4):
        assert np.array_equal(batch[i], r.render(xs[i], zs[i], yaws[i]))
    apps = [Appearance.random(i) for i in range(4)]
    batch = r.render_batch(xs, zs, yaws, appearances=apps)
    for i in range(4):
        assert np.array_equal(batch[i], r.render(xs[i], zs[i], yaws[i], appearance=apps[i]))


# ---------------------------------------------------------------- content
def test_road_under_the_car_and_ground_off_road(right: Track) -> None:
    r = Renderer(right, CameraConfig(), FLAT)
    on = r.render(1.0, 5.0, 0.0)          # on the road, right of the centre line
    patch = on[-10:, 70:90]
    assert mask_of(patch, colour(FLAT, "road")).mean() > 0.95
    off = r.render(30.0, 5.0, np.pi)      # 26 units right of the road edge, facing away from it
    assert mask_of(off[-20:, :], colour(FLAT, "ground")).mean() > 0.95
    assert not mask_of(off, colour(FLAT, "road")).any()


def test_road_under_the_car_with_default_texture(right: Track) -> None:
    img = Renderer(right).render(1.0, 5.0, 0.0)
    patch = img[-10:, 70:90].reshape(-1, 3).astype(float)
    assert np.abs(patch.mean(axis=0) - np.array(Appearance().road)).max() < 10


def test_lines_are_painted(right: Track) -> None:
    img = Renderer(right, CameraConfig(), FLAT).render(0.0, 4.0, 0.0)   # on the path = the centre line here
    assert mask_of(img, colour(FLAT, "edge_line")).sum() > 50
    assert mask_of(img[-20:, 70:90], colour(FLAT, "centre_line")).mean() > 0.3


@pytest.mark.parametrize("row", [50, 56, 64])
def test_projection_matches_pinhole_geometry(row: int) -> None:
    """On a straight road the first grass pixel right of the road is where lateral = half-width."""
    straight = Track.from_waypoints("straight", np.array([(0.0, z) for z in range(0, 101, 10)]), 4.0,
                                    closed=False)
    img = Renderer(straight, CameraConfig(), FLAT).render(0.0, 20.0, 0.0)
    p, tan_v, tan_h = np.radians(15.0), 1.0, 4 / 3
    yu = tan_v * (1 - 2 * (row + 0.5) / 120)
    t = CameraConfig().cam_height / -(yu * np.cos(p) - np.sin(p))
    cols = np.arange(160)
    lateral = t * tan_h * (2 * (cols + 0.5) / 160 - 1)
    expected = int(np.argmax(lateral > 4.0))
    ground = np.nonzero(mask_of(img[row], colour(FLAT, "ground")) & (cols > 80))[0]
    assert abs(int(ground.min()) - expected) <= 1


def test_sky_above_horizon(right: Track) -> None:
    img = Renderer(right, CameraConfig(), FLAT).render(0.0, 5.0, 0.0)
    top = img[:10].reshape(-1, 3).astype(int)
    assert np.all(top[:, 2] > top[:, 0])                      # bluish
    assert np.all(img[0] == img[0, 0])                        # no roll: each sky row is uniform
    # Horizon at tan(15 deg) above the image centre: row 60 - 60 tan(15) ~ 44.
    assert mask_of(img[:40], colour(FLAT, "road")).sum() == 0
    assert mask_of(img[48:], colour(FLAT, "road")).any()


@pytest.mark.parametrize("sign", [+1.0, -1.0])
def test_bend_puts_road_on_expected_side(sign: float) -> None:
    track = bend_track(sign)
    img = Renderer(track, CameraConfig(), FLAT).render(0.0, 24.0, 0.0)
    road = mask_of(img, colour(FLAT, "road")) | mask_of(img, colour(FLAT, "edge_line"))
    upper = road[44:60]                                       # just below the horizon: far ahead
    left_half, right_half = upper[:, :80].sum(), upper[:, 80:].sum()
    if sign > 0:
        assert right_half > 1.5 * left_half
    else:
        assert left_half > 1.5 * right_half


def test_car_right_of_path_sees_right_edge_close(right: Track) -> None:
    img = Renderer(right, CameraConfig(), FLAT).render(3.0, 5.0, 0.0)  # 1 unit inside the right edge
    bottom = img[-30:]
    edge_cols = np.nonzero(mask_of(bottom, colour(FLAT, "edge_line")).any(axis=0))[0]
    assert edge_cols.size and edge_cols.min() > 80
    ground_cols = np.nonzero(mask_of(bottom, colour(FLAT, "ground")).any(axis=0))[0]
    assert ground_cols.size and ground_cols.min() > 80


def test_barriers_stand_as_walls_beyond_the_edge() -> None:
    """Barriers are walls the camera sees: their pixels rise from the ground beyond the edge,
    above where the flat ground would be; hidden with ``walls=False``."""
    track = bend_track(+1.0, barriers=True)
    img = Renderer(track, CameraConfig(), FLAT).render(2.5, 5.0, 0.0)
    wall = mask_of(img, colour(FLAT, "wall")) | mask_of(img, colour(FLAT, "wall_stripe"))
    assert wall.sum() > 200
    rows = np.nonzero(wall.any(axis=1))[0]
    assert rows.min() < 60 < rows.max()            # a vertical object spanning many rows
    assert wall[:, 100:].sum() > wall[:, :60].sum()  # the right barrier is nearer
    no_bar = Renderer(bend_track(+1.0), CameraConfig(), FLAT).render(2.5, 5.0, 0.0)
    assert mask_of(no_bar, colour(FLAT, "wall")).sum() == 0
    hidden = Renderer(track, CameraConfig(), replace(FLAT, walls=False)).render(2.5, 5.0, 0.0)
    assert mask_of(hidden, colour(FLAT, "wall")).sum() == 0


def test_a_tall_wall_hides_the_sky_and_the_ground_behind_it() -> None:
    z = np.arange(0.0, 201.0, 10.0)
    track = Track.from_waypoints("walled", np.stack([np.zeros_like(z), z], axis=1), 3.0, closed=False,
                                 walls=(Wall("right", "right", 0.5, 4.0),))
    img = Renderer(track, CameraConfig(), FLAT).render(0.0, 10.0, 0.0)
    wall = mask_of(img, colour(FLAT, "wall"))
    assert wall[:30, 150:].mean() > 0.9             # above the horizon on the right: the wall
    assert wall[:, :70].sum() == 0                  # nothing on the left
    # the foot of the wall is where the ground 3.5 units to the right meets it (pinhole geometry)
    row = 70
    p, tan_v, tan_h = np.radians(15.0), 1.0, 4 / 3
    yu = tan_v * (1 - 2 * (row + 0.5) / 120)
    tt = CameraConfig().cam_height / -(yu * np.cos(p) - np.sin(p))
    expected = int(np.ceil((3.5 / (tt * tan_h) + 1) * 80 - 0.5))
    first = int(np.nonzero(wall[row])[0].min())
    assert abs(first - expected) <= 1


def test_cones_are_drawn_and_hidden_behind_walls() -> None:
    z = np.arange(0.0, 201.0, 10.0)
    wp = np.stack([np.zeros_like(z), z], axis=1)
    cone = [(0.0, 15.0, 0.4, 1.3)]
    track = Track.from_waypoints("coned", wp, 3.0, closed=False, cones=cone)
    img = Renderer(track, CameraConfig(), FLAT).render(0.0, 5.0, 0.0)
    orange = mask_of(img, colour(FLAT, "cone"))
    cols = np.nonzero(orange.any(axis=0))[0]
    assert orange.sum() > 10 and abs(cols.mean() - 80) < 3     # straight ahead
    assert mask_of(img, colour(FLAT, "cone_stripe")).sum() > 0
    behind = Track.from_waypoints("behind", wp, 3.0, closed=False, cones=[(6.0, 15.0, 0.4, 1.3)],
                                  walls=(Wall("right", "right", 0.5, 3.0),))
    img = Renderer(behind, CameraConfig(), FLAT).render(0.0, 5.0, 0.0)
    assert mask_of(img, colour(FLAT, "cone")).sum() == 0


def test_start_line_and_shadow() -> None:
    z = np.arange(0.0, 201.0, 10.0)
    wp = np.stack([np.zeros_like(z), z], axis=1)
    track = Track.from_waypoints("start", wp, 3.0, closed=False, start_line="checkered", start_line_s=8.0)
    img = Renderer(track, CameraConfig(), FLAT).render(0.0, 4.0, 0.0)
    a, b = mask_of(img, colour(FLAT, "start_a")), mask_of(img, colour(FLAT, "start_b"))
    assert a.sum() > 50 and b.sum() > 50
    assert not (a | b)[:, :20].any() and not (a | b)[:, 140:].any()  # only on the road
    shaded = Renderer(track, CameraConfig(), replace(FLAT, shadow=0.5)).render(0.0, 20.0, 0.0)
    plain = Renderer(track, CameraConfig(), FLAT).render(0.0, 20.0, 0.0)
    dark = shaded.astype(int).sum(axis=2) < plain.astype(int).sum(axis=2)
    assert dark[100:].sum() > 20 and not dark[:90].any()


def test_tracks_use_their_scene_look_by_default() -> None:
    from donkeyrl.sim.tracks import get_track

    mt, gt = get_track("mountain_track"), get_track("generated_track")
    assert Renderer(mt).appearance == Appearance.for_scene("mountain_track") != Appearance.for_scene("generated_track")
    img = Renderer(mt).render(50.122, 51.181, np.pi)
    assert img[90:].mean() > 150                      # light concrete
    assert Renderer(gt).render(49.69, 47.838, 0.0)[90:].mean() < 150


def test_one_batch_renders_cars_on_different_tracks() -> None:
    from donkeyrl.sim.tracks import get_track

    tracks = [get_track(n) for n in ("generated_track", "mountain_track", "generated_track", "oval")]
    poses = np.array([t.points[10] for t in tracks])
    yaws = np.array([np.arctan2(*t.tangents[10]) for t in tracks])
    r = Renderer(tracks[0])
    batch = r.render_batch(poses[:, 0], poses[:, 1], yaws, tracks=tracks)
    for i, t in enumerate(tracks):
        single = Renderer(t).render(poses[i, 0], poses[i, 1], yaws[i])
        assert np.array_equal(batch[i], single), t.name
    assert len(r.atlas) == 3
    with pytest.raises(ValueError, match="one track per car"):
        r.render_batch(poses[:, 0], poses[:, 1], yaws, tracks=tracks[:2])


def test_open_road_ends(right: Track) -> None:
    # Behind the start of the open road, looking backwards: no road beyond its first sample.
    img = Renderer(right, CameraConfig(), FLAT).render(0.0, -6.0, np.pi)
    assert not mask_of(img, colour(FLAT, "road")).any()


def test_camera_pitch_jitter_moves_horizon(right: Track) -> None:
    def horizon_row(app: Appearance) -> int:
        img = Renderer(right, CameraConfig(), app).render(60.0, 5.0, 0.0)  # off the road: grass
        return int(np.argmax(mask_of(img, colour(app, "ground")).any(axis=1)))

    base = horizon_row(FLAT)
    down = horizon_row(Appearance(noise=0.0, pitch_delta_deg=5.0))
    assert down < base - 3                                     # more pitch down: horizon rises


def test_crop_top_equals_crop_then_resize(right: Track) -> None:
    crop = 0.4
    full = Renderer(right, CameraConfig(), FLAT).render(1.0, 10.0, 0.1)
    cropped = full[int(round(crop * 120)):]
    ref = np.asarray(Image.fromarray(cropped).resize((80, 60), Image.BOX), dtype=float)
    small_r = Renderer(right, CameraConfig(width=80, height=60, crop_top=crop), FLAT)
    small = small_r.render(1.0, 10.0, 0.1).astype(float)
    other = small_r.render(-2.0, 20.0, -0.4).astype(float)
    err = np.abs(small - ref).mean()
    assert err < 3.0
    assert np.abs(other - ref).mean() > 2 * err


# ---------------------------------------------------------------- raster and bad input
def test_raster_matches_exact_projection() -> None:
    track = loop_track(barriers=True)
    raster = get_raster(track)
    assert get_raster(track) is raster                          # cached per track
    rng = np.random.default_rng(0)
    idx = rng.integers(0, track.n, 300)
    off = rng.uniform(-5.5, 5.5, 300)
    pts = track.points[idx] + track.normals[idx] * off[:, None]
    lat, s = raster.lookup(pts[:, 0], pts[:, 1])
    exact = np.array([track.project(x, z).lateral for x, z in pts])
    assert np.all(lat < FAR / 2)
    assert np.abs(lat - exact).max() < 0.05
    far_lat, _ = raster.lookup(np.array([0.0]), np.array([0.0]))  # the loop's middle
    assert far_lat[0] >= FAR / 2


@pytest.mark.parametrize("kwargs", [{"width": 0}, {"height": 5000}, {"crop_top": 1.0}, {"fov_deg": 0.0},
                                    {"cam_height": -1.0}, {"pitch_deg": 95.0}, {"width": 2.5}])
def test_bad_camera_config(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CameraConfig(**kwargs)


def test_bad_render_input(right: Track) -> None:
    r = Renderer(right)
    with pytest.raises(ValueError, match="finite"):
        r.render(float("nan"), 0.0, 0.0)
    with pytest.raises(ValueError, match="shape"):
        r.render(0.0, 0.0, 0.0, out=np.zeros((120, 160, 1), np.uint8))
    with pytest.raises(ValueError, match="same length"):
        r.render_batch(np.zeros(2), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="one appearance per car"):
        r.render_batch(np.zeros(2), np.zeros(2), np.zeros(2), appearances=[Appearance()])
    with pytest.raises(ValueError, match="road"):
        Appearance(road=(0, 0, 300))


def test_pack_tables_have_expected_shapes() -> None:
    from donkeyrl.sim.appearance import N_CLASSES, N_LEVELS, N_PARAMS

    lut, prm = pack(Appearance.random(3), False)
    assert lut.shape == (N_CLASSES, N_LEVELS, 3) and lut.dtype == np.uint8 and prm.shape == (N_PARAMS,)


def test_random_looks_span_the_scene_looks_and_beyond() -> None:
    from donkeyrl.sim.appearance import SCENE_LOOKS

    draws = [Appearance.random(s) for s in range(300)]
    lum = [np.dot(a.road, (0.299, 0.587, 0.114)) for a in draws]
    real = [np.dot(a.road, (0.299, 0.587, 0.114)) for a in SCENE_LOOKS.values()]
    assert min(lum) < min(real) and max(lum) > max(real)
    assert {a.dash_mode for a in draws} == {"track", "solid", "dashed"}
    assert any(not a.walls for a in draws) and any(a.walls for a in draws)
    assert min(a.shadow for a in draws) < 0.05 and max(a.shadow for a in draws) > 0.6
    assert min(a.line_width_scale for a in draws) < 0.7 and max(a.line_width_scale for a in draws) > 1.7
    assert max(abs(a.yaw_delta_deg) for a in draws) > 1.5 and max(abs(a.cam_height_delta) for a in draws) > 0.1


def test_random_looks_include_roads_that_barely_differ_from_their_ground() -> None:
    """Several real scenes' roads are within 10 grey levels of their ground (warehouse, carpet,
    warren); random looks must include such surfaces, not only roads that stand out."""
    from donkeyrl.sim.appearance import MIN_ROAD_CONTRAST, SCENE_LOOKS

    def contrast(a: Appearance) -> float:
        w = (0.299, 0.587, 0.114)
        return abs(float(np.dot(a.road, w)) - float(np.dot(a.ground, w)))

    assert min(contrast(a) for a in SCENE_LOOKS.values()) < 10
    draws = [Appearance.random(s) for s in range(300)]
    low = [a for a in draws if contrast(a) < 10]
    assert len(low) >= 15
    assert sum(contrast(a) >= MIN_ROAD_CONTRAST for a in draws) >= 150


def test_atlas_drops_unused_tracks_and_keeps_slots_valid() -> None:
    from donkeyrl.sim.tracks import get_track

    r = Renderer(get_track("oval"))
    r.MAX_SLOTS = 3
    for seed in range(4):  # fill the atlas with tracks no car uses any more
        r.render(0.0, 0.0, 0.0, track=get_track(f"procedural-{seed}"))
    tracks = [get_track(n) for n in ("procedural-7", "procedural-8", "generated_track")]
    poses = np.array([t.points[5] for t in tracks])
    yaws = np.array([np.arctan2(*t.tangents[5]) for t in tracks])
    batch = r.render_batch(poses[:, 0], poses[:, 1], yaws, tracks=tracks)
    assert len(r.atlas) <= 4
    for i, t in enumerate(tracks):
        assert np.array_equal(batch[i], Renderer(t).render(poses[i, 0], poses[i, 1], yaws[i]))
