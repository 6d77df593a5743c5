"""Tests for the track catalogue, name resolution, the generators and ``donkeyrl tracks``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from donkeyrl.cli import main
from donkeyrl.sim.generators import MIN_RADIUS, L, R, S, generate_track, min_radius, turtle_path
from donkeyrl.sim.track import Track
from donkeyrl.sim.tracks import (
    CATALOGUE,
    DEFAULT_ROAD_SEED,
    ENV_IDS,
    HELDOUT_TRACKS,
    TRAIN_TRACKS,
    InvalidSeedError,
    UnknownTrackError,
    get_track,
    list_tracks,
    resolve_track_name,
)

#: Path lengths of the real DonkeyCar scenes (protocol reference, section 6).
REAL_LENGTHS = {"generated_track": 216, "warehouse": 353, "mountain_track": 516, "sparkfun_avc": 1047,
                "thunderhill": 2825, "waveshare": 64, "generated_road": 2000}
SCENE_NAMES = ("generated_road", "warehouse", "sparkfun_avc", "generated_track", "roboracingleague_1",
               "waveshare", "mini_monaco", "warren", "circuit_launch", "mountain_track", "thunderhill")


def assert_drivable(track: Track) -> None:
    """Valid (no self-overlap) and no bend tighter than MIN_RADIUS on the path."""
    track.validate()
    assert min_radius(track) >= MIN_RADIUS - 1e-6, f"{track.name}: radius {min_radius(track):.2f}"


# ------------------------------------------------------------------------------------ catalogue
def test_catalogue_has_distinct_named_tracks_and_scene_names() -> None:
    assert len(CATALOGUE) >= 12
    assert set(SCENE_NAMES) <= set(CATALOGUE)
    lengths = sorted(get_track(n).length for n in CATALOGUE)
    assert len(set(np.round(lengths))) == len(lengths), "two catalogue tracks have the same length"


def test_splits_are_disjoint_and_cover_the_catalogue() -> None:
    assert set(TRAIN_TRACKS).isdisjoint(HELDOUT_TRACKS)
    assert set(TRAIN_TRACKS) | set(HELDOUT_TRACKS) == set(CATALOGUE)
    assert len(HELDOUT_TRACKS) >= 3
    for name in CATALOGUE:
        assert get_track(name).split == ("train" if name in TRAIN_TRACKS else "heldout")


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_every_catalogue_track_is_valid_and_drivable(name: str) -> None:
    track = get_track(name)
    assert track.name == name
    assert track.description
    assert_drivable(track)
    half = (track.lat_right - track.lat_left) / 2
    assert half.min() >= 2.5 - 1e-9 and half.max() <= 6.5
    assert np.all(track.lat_left < 0) and np.all(track.lat_right > 0)
    if track.closed:  # the loop joins up: last sample is one sample-spacing from the first
        assert np.hypot(*(track.points[-1] - track.points[0])) < 1.0


def _kinematic_follow(track: Track, speed: float = 6.0, dt: float = 0.05) -> tuple[float, int]:
    """Drive a kinematic bicycle (wheelbase 1.6, steering limit 16 deg) once along the path with
    pure pursuit; return (max |cte|, number of steps where the steering had to saturate)."""
    wheelbase, limit = 1.6, np.radians(16.0)
    x, z, yaw = track.start_pose()
    hint, worst, saturated = 0, 0.0, 0
    end = track.length if track.closed else track.s[-1] - 10.0
    for _ in range(int(end / speed / dt)):
        p = track.project(x, z, hint)
        hint, worst = p.index, max(worst, abs(p.lateral))
        dx, dz = track.point_at(p.s + 3.0) - (x, z)
        lat = dx * np.cos(yaw) - dz * np.sin(yaw)  # target offset to the right of the car
        steer = np.arctan(wheelbase * 2 * lat / (dx * dx + dz * dz))
        saturated += abs(steer) > limit
        yaw += speed / wheelbase * np.tan(np.clip(steer, -limit, limit)) * dt
        x, z = x + speed * np.sin(yaw) * dt, z + speed * np.cos(yaw) * dt
    return worst, saturated


@pytest.mark.parametrize("name", [*CATALOGUE, "procedural-0", "procedural-1"])
def test_a_car_with_the_real_steering_limit_can_follow_every_track(name: str) -> None:
    track = get_track(name)
    worst, saturated = _kinematic_follow(track)
    assert saturated == 0
    assert worst < 0.5 < track.lat_right.min()


def test_some_tracks_vary_in_width_and_both_turn_directions_appear() -> None:
    varying = [n for n in CATALOGUE if np.ptp(get_track(n).lat_right - get_track(n).lat_left) > 0.5]
    assert len(varying) >= 2
    # net turn sign of each closed loop: both clockwise and anticlockwise loops are present
    signs = {np.sign(np.sum(get_track(n).curvature)) for n in CATALOGUE if get_track(n).closed}
    assert signs == {-1.0, 1.0}


def test_only_the_expected_tracks_have_barriers() -> None:
    assert get_track("mini_monaco").barriers
    assert not get_track("generated_road").barriers


@pytest.mark.parametrize("name,real", sorted(REAL_LENGTHS.items()))
def test_analogue_lengths_match_the_real_scenes(name: str, real: float) -> None:
    assert get_track(name).length == pytest.approx(real, rel=0.15)


# -------------------------------------------------------------------------------- generated road
def test_generated_road_is_open_with_the_path_in_the_right_lane() -> None:
    road = get_track("generated_road")
    assert not road.closed
    assert np.all(road.centre_lat < 0)  # painted centre line is left of the path
    half = (road.lat_right - road.lat_left) / 2
    assert np.allclose(-road.centre_lat, half / 2)  # path = middle of the right lane
    assert 5.0 <= half.mean() <= 6.0


def test_generated_road_differs_per_seed_and_is_deterministic() -> None:
    roads = [get_track("generated_road", seed=k) for k in range(8)]
    for road in roads:
        assert_drivable(road)
    ends = {tuple(np.round(r.points[-1], 3)) for r in roads}
    assert len(ends) == len(roads)
    assert get_track("generated_road") is get_track("generated_road", seed=DEFAULT_ROAD_SEED)
    from donkeyrl.sim.generators import generated_road

    fresh = generated_road(3)
    assert np.array_equal(fresh.points, roads[3].points)


# ------------------------------------------------------------------------------ procedural tracks
def test_procedural_tracks_are_valid_distinct_and_deterministic() -> None:
    tracks = [generate_track(seed) for seed in range(50)]
    for tr in tracks:
        assert tr.closed
        assert_drivable(tr)
    assert len({round(t.length, 3) for t in tracks}) == len(tracks)
    again = generate_track(17)
    assert np.array_equal(again.points, tracks[17].points)
    assert np.array_equal(again.lat_left, tracks[17].lat_left)


def test_procedural_names_resolve_to_the_generator() -> None:
    assert resolve_track_name("Procedural-0042") == "procedural-42"
    tr = get_track("procedural-42")
    assert tr.name == "procedural-42"
    assert np.array_equal(tr.points, generate_track(42).points)
    assert get_track("procedural", seed=42) is tr
    assert get_track("procedural-42", seed=42) is tr
    with pytest.raises(InvalidSeedError, match="42.*7"):
        get_track("procedural-42", seed=7)


def test_turtle_layout_closes_exactly() -> None:
    # the straights are deliberately the wrong length; the layout must still close smoothly
    xy = turtle_path([S(40), R(10, 90), S(13), R(12, 90), S(55), R(9, 90), S(20), R(15, 90)],
                     closed=True)
    step = np.hypot(*np.diff(xy, axis=0).T)
    assert np.hypot(*(xy[-1] - xy[0])) == pytest.approx(step.mean(), rel=0.05)
    assert step.std() < 0.01 * step.mean()
    with pytest.raises(ValueError, match="not \\+-360"):
        turtle_path([S(10), L(10, 90), S(10)], closed=True)


# ------------------------------------------------------------------------------ name resolution
@pytest.mark.parametrize("env_id,name", sorted(ENV_IDS.items()))
def test_env_ids_resolve_to_their_analogues(env_id: str, name: str) -> None:
    assert resolve_track_name(env_id) == name
    assert get_track(env_id) is get_track(name)


def test_scene_names_and_spellings_resolve() -> None:
    for scene in SCENE_NAMES:
        assert resolve_track_name(scene) == scene
    assert resolve_track_name("Mini-Monaco") == "mini_monaco"
    assert resolve_track_name(" generated_road ") == "generated_road"
    assert resolve_track_name("donkey-generated-roads-v0") == "generated_road"
    assert resolve_track_name("donkey-roboracingleague-track-v0") == "roboracingleague_1"
    assert resolve_track_name("donkey-avc-sparkfun-v0") == "sparkfun_avc"


def test_fixed_tracks_ignore_the_seed() -> None:
    assert get_track("oval", seed=5) is get_track("oval")


def test_unknown_name_error_names_the_value_suggests_and_lists() -> None:
    with pytest.raises(UnknownTrackError) as info:
        get_track("mini_monco")
    msg = str(info.value)
    assert "'mini_monco'" in msg and "Did you mean 'mini_monaco'" in msg
    assert "warehouse" in msg and "donkey-generated-roads-v0" in msg and "procedural-<seed>" in msg
    with pytest.raises(UnknownTrackError, match="'nowhere'"):
        get_track("nowhere")
    with pytest.raises(UnknownTrackError, match="string"):
        get_track(3)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True, 2**64])
def test_bad_seeds_are_rejected_clearly(seed: object) -> None:
    with pytest.raises(InvalidSeedError, match="seed must be an integer"):
        get_track("generated_road", seed=seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["procedural--3", "procedural-abc", "procedural-1.5"])
def test_bad_procedural_names_are_rejected_clearly(name: str) -> None:
    with pytest.raises(InvalidSeedError, match="non-negative integer"):
        get_track(name)


def test_numpy_integer_seeds_are_accepted() -> None:
    assert get_track("generated_road", seed=np.int64(2)) is get_track("generated_road", seed=2)


# ------------------------------------------------------------------------------------ listing
def test_list_tracks_filters_by_split() -> None:
    assert [i.name for i in list_tracks()] == list(CATALOGUE)
    assert [i.name for i in list_tracks("heldout")] == list(HELDOUT_TRACKS)
    assert [i.name for i in list_tracks("train")] == list(TRAIN_TRACKS)
    with pytest.raises(ValueError, match="'test'"):
        list_tracks("test")


def test_cli_tracks_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tracks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(CATALOGUE)
    by_name = {r["name"]: r for r in rows}
    assert by_name["generated_road"]["closed"] is False
    assert by_name["mini_monaco"]["barriers"] is True
    assert by_name["warehouse"]["width"] == pytest.approx(2 * get_track("warehouse").half_width, abs=0.01)
    assert by_name["thunderhill"]["split"] == "heldout"
    assert "donkey-mountain-track-v0" in by_name["mountain_track"]["env_ids"]
    for r in rows:
        assert set(r) >= {"name", "length", "width", "closed", "barriers", "split", "description"}


def test_cli_tracks_table_and_split(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tracks", "--split", "heldout"]) == 0
    out = capsys.readouterr().out
    for name in HELDOUT_TRACKS:
        assert name in out
    assert "oval" not in out


def test_cli_tracks_rejects_a_bad_split(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["tracks", "--split", "test"])
    assert info.value.code == 2
    assert "'test'" in capsys.readouterr().err


def test_cli_tracks_plot(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    out = tmp_path / "img" / "tracks.png"
    assert main(["tracks", "--split", "heldout", "--json", "--plot", str(out)]) == 0
    capsys.readouterr()
    with Image.open(out) as img:
        assert img.size[0] > 100 and img.size[1] > 100
        # the road (grey) covers part of the image
        arr = np.asarray(img.convert("RGB"))
        assert np.mean(np.all(arr == (90, 90, 90), axis=2)) > 0.02
