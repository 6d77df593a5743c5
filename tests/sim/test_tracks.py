"""Tests for the track catalogue, name resolution, the generators and ``donkeyrl tracks``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from donkeyrl.cli import main
from donkeyrl.sim.expert import ExpertDriver
from donkeyrl.sim.generators import MIN_RADIUS, L, R, S, generate_track, min_radius, turtle_path
from donkeyrl.sim.realtracks import SCENES, reference_path
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
#: The project's own tracks (turtle layouts): drivable by construction.
OWN_TRACKS = [n for n in CATALOGUE if n not in SCENES and n != "generated_road"]
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
def test_every_catalogue_track_has_a_sane_road(name: str) -> None:
    track = get_track(name)
    assert track.name == name
    assert track.description
    half = (track.lat_right - track.lat_left) / 2
    assert half.min() >= 2.0 - 1e-9 and half.max() <= 8.0
    assert np.all(track.lat_left < 0) and np.all(track.lat_right > 0)
    assert track.lat_left.min() + 1.0 < track.start_lateral < track.lat_right.max() - 1.0
    if track.closed:  # the loop joins up: last sample is one sample-spacing from the first
        assert np.hypot(*(track.points[-1] - track.points[0])) < 1.0


@pytest.mark.parametrize("name", OWN_TRACKS)
def test_own_tracks_are_valid_and_drivable(name: str) -> None:
    track = get_track(name)
    assert_drivable(track)
    # the DonkeyCar road model: the path is the centre of the right lane
    np.testing.assert_allclose(track.centre_lat, -0.4 * (track.lat_right - track.lat_left) / 2)


def _hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Hausdorff distance between two closed polylines (dense-sampled to 0.1 units)."""
    from scipy.spatial import cKDTree

    def dense(p: np.ndarray) -> np.ndarray:
        q = np.vstack([p, p[:1]])
        out = [np.linspace(q[i], q[i + 1], max(2, int(np.hypot(*(q[i + 1] - q[i])) / 0.1) + 1))
               for i in range(len(p))]
        return np.vstack(out)
    da, db = dense(a), dense(b)
    return float(max(cKDTree(da).query(db)[0].max(), cKDTree(db).query(da)[0].max()))


@pytest.mark.parametrize("name", sorted(SCENES))
def test_real_scenes_follow_the_real_paths(name: str) -> None:
    """Each rebuilt scene against the simulator's own path: length within 2 %, Hausdorff < 1 unit.

    No alignment is needed: the scenes are built in the simulator's world coordinates.
    """
    track = get_track(name)
    ref = reference_path(name)
    ref_length = float(np.sum(np.hypot(*np.diff(np.vstack([ref, ref[:1]]), axis=0).T)))
    assert track.length == pytest.approx(ref_length, rel=0.02)
    assert _hausdorff(track.points, ref) < 1.0


def test_hilly_scenes_have_heights_and_flat_ones_do_not() -> None:
    for name, rise in (("mountain_track", 4.0), ("thunderhill", 25.0), ("sparkfun_avc", 0.5)):
        h = get_track(name).heights
        assert np.ptp(h) > rise, name
        assert np.abs(get_track(name).grade).max() < 0.15
    for name in ("generated_track", "warehouse", "mini_monaco", "oval"):
        assert np.ptp(get_track(name).heights) < 0.05


def test_real_shapes_are_not_look_alikes() -> None:
    """The warehouse is the real peanut (bbox about 58 x 143), not a rectangle."""
    wh = get_track("warehouse").points
    assert np.ptp(wh[:, 0]) == pytest.approx(58, abs=3) and np.ptp(wh[:, 1]) == pytest.approx(143, abs=3)
    assert get_track("sparkfun_avc").points[:, 1].max() > 250


#: Real scenes whose tape roads are too narrow for a line as wide as the car's turning circle
#: everywhere (the steering saturates for a few steps: the car runs a little wide there).
TIGHTER_THAN_THE_CAR = {"circuit_launch", "roboracingleague_1"}


def _kinematic_follow(track: Track, speed: float = 6.0, dt: float = 0.05) -> tuple[float, int]:
    """Drive a kinematic bicycle (wheelbase 1.6, steering limit 16 deg) once along the expert's
    line with pure pursuit; return (max distance from the line, steps where steering saturated)."""
    wheelbase, limit = 1.6, np.radians(16.0)
    line = ExpertDriver(track)
    x, z, yaw = track.start_pose()
    x, z = np.array([x, z]) + track.normals[0] * line.line_lat[0]
    hint, worst, saturated = 0, 0.0, 0
    end = track.length if track.closed else track.s[-1] - 10.0
    for _ in range(int(end / speed / dt)):
        p = track.project(x, z, hint)
        hint, worst = p.index, max(worst, abs(p.lateral - line.line_lat[p.index]))
        dx, dz = line.line_point(p.s + 3.0) - (x, z)
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
    steps = int((track.length if track.closed else track.s[-1] - 10.0) / 6.0 / 0.05)
    assert saturated <= (0.03 * steps if name in TIGHTER_THAN_THE_CAR else 0)
    assert worst < 0.5 < track.lat_right.min()


def test_some_tracks_vary_in_width_and_both_turn_directions_appear() -> None:
    varying = [n for n in CATALOGUE if np.ptp(get_track(n).lat_right - get_track(n).lat_left) > 0.5]
    assert varying
    procedural = [generate_track(s) for s in range(20)]
    assert sum(np.ptp(t.lat_right - t.lat_left) > 0.5 for t in procedural) >= 3
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
    """The simulator's road at load: W 5, the road centre 2.2 left of the path (edges -7.2, +2.8,
    white lines -6.2 and +1.8, yellow -2.2): the path is (0.2 right of) the right lane's centre."""
    road = get_track("generated_road")
    assert not road.closed
    np.testing.assert_allclose(road.centre_lat, -2.2)
    np.testing.assert_allclose(road.lat_left, -7.2)
    np.testing.assert_allclose(road.lat_right, 2.8)
    assert road.length == pytest.approx(2000, rel=0.01)
    np.testing.assert_allclose(road.heights, 0.5)


def test_generated_road_differs_per_seed_and_is_deterministic() -> None:
    roads = [get_track("generated_road", seed=k) for k in range(8)]
    for road in roads:
        assert min_radius(road) >= MIN_RADIUS
    ends = {tuple(np.round(r.points[-1], 3)) for r in roads}
    assert len(ends) == len(roads)
    assert get_track("generated_road") is get_track("generated_road", seed=DEFAULT_ROAD_SEED)
    from donkeyrl.sim.generators import generated_road

    fresh = generated_road(3, road_offset=2.2)
    assert np.array_equal(fresh.points, roads[3].points)


def test_generated_road_follows_the_simulators_algorithm() -> None:
    """1000 nodes 2 units apart from (50.016, 49.97) heading +z; the turn rate is a random walk of
    +-turn_increment degrees per node, so the heading change per node changes by at most that."""
    from donkeyrl.sim.generators import random_road_nodes

    for inc in (1.0, 3.0):
        pts = random_road_nodes(np.random.default_rng(5), turn_increment=inc)
        assert pts.shape == (1000, 3)
        np.testing.assert_allclose(pts[0], (50.016, 0.5, 49.97))
        step = np.diff(pts[:, [0, 2]], axis=0)
        np.testing.assert_allclose(np.hypot(*step.T), 2.0)
        heading = np.unwrap(np.arctan2(step[:, 0], step[:, 1]))
        assert heading[0] == pytest.approx(0.0, abs=np.radians(inc) + 1e-9)
        turn = np.degrees(np.diff(heading))
        # turn(i+1) = turn(i) + u  or  (turn(i) + u) * -0.5 when the road would run into itself
        plain = np.abs(np.diff(turn)) <= inc + 1e-6
        assert plain.mean() > 0.9


@pytest.mark.parametrize("style,edges", [(0, (-7.0, 3.0)), (1, (-18.0, 6.0)), (2, (-16.0, 4.0)),
                                         (4, (-16.5, 7.5)), (5, (-7.0, 3.0))])
def test_generated_road_styles_are_the_simulators(style: int, edges: tuple[float, float]) -> None:
    from donkeyrl.sim.generators import generated_road

    road = generated_road(7, road_style=style, nodes=100)
    assert (road.lat_left[0], road.lat_right[0]) == pytest.approx(edges)
    centre = next(m for m in road.markings if m.kind == "centre")
    assert (centre.dash > 0) == (style % 2 == 1)
    with pytest.raises(ValueError, match="road_style"):
        generated_road(7, road_style=-1)


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
    table = out.split("lengths and widths")[0]   # the rows; the set listing after them names every track
    listed = {line.split()[0] for line in table.splitlines()[1:] if line.strip()}
    assert listed == set(HELDOUT_TRACKS)


def test_cli_tracks_rejects_a_bad_split(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["tracks", "--split", "test"])
    assert info.value.code == 2
    assert "'test'" in capsys.readouterr().err


def test_cli_tracks_plot(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    out = tmp_path / "img" / "tracks.png"
    out.parent.mkdir()
    assert main(["tracks", "--split", "heldout", "--json", "--plot", str(out)]) == 0
    capsys.readouterr()
    with Image.open(out) as img:
        assert img.size[0] > 100 and img.size[1] > 100
        # the road (grey) covers part of the image
        arr = np.asarray(img.convert("RGB"))
        assert np.mean(np.all(arr == (90, 90, 90), axis=2)) > 0.02
