"""The DonkeyCar simulator's scenes rebuilt from its own path data (sim/data/real_tracks/).

Why: a policy trained here is meant to drive the real simulator, so its scenes must have the real
shapes, positions, heights and road layout, not look-alikes. The path files are the simulator's
own (BSD 3-Clause, Copyright (c) 2017 Tawn Kramer; licence and attribution in
``data/real_tracks/``); this module turns them into nodes exactly as its ``PathManager`` does:

* point paths: lines with exactly three comma-separated numbers, y lowered by 0.1, optional
  Chaikin smoothing (each pass doubles the points), then the node nearest the scene's start
  position becomes node 0 (the simulator drops the old node 0 when it rotates the list);
* script paths (generated_track): from the start with y = 0.5, heading +z, one node every
  ``span`` units, the heading turning by +DY (``R``) / -DY (``L``) / 0 (``S``) after each node;
* Bezier scenes: the node lists the simulator builds from their curves, stored as derived files.

The road layout around each path: where the simulator builds the road itself (generated_track,
warren, generated_road) it is its ``RoadBuilder`` model (half-width W, centre o left of the path,
so the path is the right-lane centre); mountain_track's layout was measured in public frames of
the real simulator (benchmarks/fidelity.py); mini_monaco's and thunderhill's barrier offsets are
the scenes' values; the rest of the scene-mesh layouts are inferred from the scenes' menu pictures
(documented per scene in :data:`SCENES`, see docs/fidelity.md).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from donkeyrl.sim.track import Marking, Track, Wall, single_lane_markings, two_lane_markings

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data" / "real_tracks"
#: Height of a point-file path above the road the simulator lowers it by (units).
POINT_PATH_Y_OFFSET = -0.1
#: Node spacing of script paths (``spanDist``, units).
SCRIPT_SPAN = 2.0


# ------------------------------------------------------------------------------------ parsing
def read_points(name: str) -> np.ndarray:
    """(N, 3) x, y, z of a point file, parsed like the simulator (3 comma tokens per line)."""
    pts = []
    for line in (DATA_DIR / name).read_bytes().decode("ascii").split("\n"):
        tok = line.strip().split(",")
        if len(tok) == 3:
            pts.append([float(t) for t in tok])
    return np.array(pts, dtype=np.float64)


def chaikin(points: np.ndarray) -> np.ndarray:
    """One closed Chaikin pass as the simulator does it: each segment i -> i+1 yields the points at
    3/4 of it and at 1/4 of the next one (so the count doubles)."""
    p = np.asarray(points, dtype=np.float64)
    p1, p2 = np.roll(p, -1, axis=0), np.roll(p, -2, axis=0)
    out = np.empty((2 * len(p), p.shape[1]))
    out[0::2] = p + 0.75 * (p1 - p)
    out[1::2] = p1 + 0.25 * (p2 - p1)
    return out


def rotate_to_start(nodes: np.ndarray, start: tuple[float, float, float]) -> np.ndarray:
    """Make the node nearest ``start`` (3-D distance) node 0, dropping the old node 0 like the
    simulator does when it rotates its list."""
    k = int(np.argmin(np.linalg.norm(nodes - np.asarray(start), axis=1)))
    if k == 0:
        return nodes
    order = [i % len(nodes) for i in range(k, len(nodes) + k) if i % len(nodes) != 0]
    return nodes[order]


def expand_script(text: str, start: tuple[float, float, float], span: float = SCRIPT_SPAN) -> np.ndarray:
    """Nodes (N, 3) of a track script (``S n``, ``L n``, ``R n``, ``DY deg``), as ``MakeScriptedPath``.

    Each node is laid, then the heading turns by the current DY (right = clockwise from above =
    our positive yaw) and the position advances ``span`` units.
    """
    x, z = start[0], start[2]
    heading, turn_val = 0.0, 10.0
    nodes = []
    for line in text.split("\n"):
        tok = line.split(" ")
        if len(tok) < 2 or tok[0].startswith("//"):
            continue
        cmd, arg = tok[0], tok[1]
        if cmd == "DY":
            turn_val = float(arg)
            continue
        if cmd not in ("S", "L", "R"):
            raise ValueError(f"unsupported track script command {cmd!r}")
        dy = {"S": 0.0, "L": -turn_val, "R": turn_val}[cmd]
        for _ in range(int(arg)):
            nodes.append((x, 0.5, z))
            heading += np.radians(dy)
            x += span * np.sin(heading)
            z += span * np.cos(heading)
    return np.array(nodes, dtype=np.float64)


#: Gaussian smoothing (units) of path heights: recorded heights jitter by centimetres per node,
#: which would read as a bumpy road (grades of 15 %); the real road meshes are smooth.
HEIGHT_SMOOTH = 5.0


def smooth_closed(nodes: np.ndarray, sigma: float, sigma_y: float = HEIGHT_SMOOTH) -> np.ndarray:
    """Gaussian-smooth a closed node list along its arc length (sigma in units; 0 = unchanged).

    Recorded paths carry driving noise (a 2-unit zig-zag makes a spline bend at radius < 1); a
    sigma of one or two units removes it while moving the path by a few centimetres. Heights are
    smoothed over ``sigma_y``.
    """
    seg = np.linalg.norm(np.diff(np.vstack([nodes, nodes[:1]])[:, [0, 2]], axis=0), axis=1)
    step = float(np.median(seg))
    out = nodes.copy()
    for c, sg in ((0, sigma), (1, sigma_y), (2, sigma)):
        if sg > 0:
            out[:, c] = gaussian_filter1d(nodes[:, c], sg / step, mode="wrap")
    return out


def dedupe(nodes: np.ndarray, min_gap: float = 0.2) -> np.ndarray:
    """Drop nodes closer than ``min_gap`` (ground plane) to the previous kept node, and a last node
    that repeats the first: the spline needs distinct, ordered waypoints."""
    keep = [0]
    for i in range(1, len(nodes)):
        if np.hypot(*(nodes[i, [0, 2]] - nodes[keep[-1], [0, 2]])) >= min_gap:
            keep.append(i)
    out = nodes[keep]
    if len(out) > 3 and np.hypot(*(out[-1, [0, 2]] - out[0, [0, 2]])) < min_gap:
        out = out[:-1]
    return out


# ------------------------------------------------------------------------------------ scenes
@dataclass(frozen=True)
class SceneSpec:
    """How one DonkeyCar scene is rebuilt: its path source and the road around the path."""

    #: Loads the nodes (N, 3) in the simulator's order.
    nodes: Callable[[], np.ndarray]
    #: Road edges relative to the path (+ = right).
    left: float
    right: float
    #: Paint, given the road half-width W = (right - left) / 2.
    markings: tuple[Marking, ...]
    #: Where the facts come from: V = the scene's data, M = measured in real frames, I = inferred
    #: from the scene's menu picture.
    source: str
    walls: tuple[Wall, ...] = ()
    barriers: bool = False
    barrier_margin: float = 0.6
    start_line: str = "none"
    #: Arc length where the start-line decal begins (the lap line is s = 0).
    start_line_s: float = 0.0
    start_lateral: float = 0.0
    drive_lateral: float = 0.0
    #: The car's spawn pose in the real scene (x, z, yaw degrees), when known.
    real_start: tuple[float, float, float] | None = None
    #: Gaussian smoothing (units) of the nodes before the spline fit (removes recording noise and
    #: the kinks between a script's straights and arcs; moves the path by under 0.3 units).
    smooth: float = 1.5
    cones: tuple[tuple[float, float], ...] = ()
    #: Cone base radius and height (units).
    cone_size: tuple[float, float] = (0.35, 1.3)
    scene: str = "default"
    lanes: int = 2
    extra: dict[str, str] = field(default_factory=dict)


def _point_path(file: str, start: tuple[float, float, float] | None, smooth_iter: int = 0
                ) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        p = read_points(file)
        p[:, 1] += POINT_PATH_Y_OFFSET
        for _ in range(smooth_iter):
            p = chaikin(p)
        return p if start is None else rotate_to_start(p, start)
    return load


def _derived(file: str) -> Callable[[], np.ndarray]:
    return lambda: read_points(file)


def _script(file: str, start: tuple[float, float, float]) -> Callable[[], np.ndarray]:
    return lambda: expand_script((DATA_DIR / file).read_text(), start)


#: generated_track's static cones (x, z), from the scene file (scene scale 6.5 x 0.1538 = 1).
GENERATED_TRACK_CONES = ((82.35, 70.14), (45.97, 83.68), (28.56, 11.46), (58.49, 3.25), (82.24, 3.73),
                         (73.77, -23.50), (38.20, -18.88), (54.49, 35.79), (39.65, 36.54), (56.05, 71.94),
                         (68.71, 83.68), (82.01, 33.52), (74.57, 52.68))
#: generated_track's cones are scaled (5, 3, 5): about 6.4 units tall and 1.1 in base radius in
#: the real car-camera frame (measured at 24 and 36 units; docs/fidelity.md).
GENERATED_TRACK_CONE = (1.1, 6.4)
_W5 = two_lane_markings(5.0)

#: Mountain track, measured in the public gym-donkeycar frames at the spawn pose (see
#: benchmarks/fidelity.py): from the car, left wall -5.95, left white -5.08, yellow -1.67, right
#: white +1.80, road edge +2.6, right wall +3.1; the car spawns 3.54 right of the path.
_MT_CAR = 3.54
_MT_MARKS = (Marking("path", -5.08 + _MT_CAR, "edge", 0.25), Marking("path", -1.67 + _MT_CAR, "centre", 0.25),
             Marking("path", 1.80 + _MT_CAR, "edge", 0.25))

SCENES: dict[str, SceneSpec] = {
    "generated_track": SceneSpec(
        _script("racePi2.txt", (49.69, 0.5, 49.95)), -7.0, 3.0, _W5, "V: RoadBuilder W 5, o 2, racePi2 script",
        start_line="checkered", start_line_s=-2.4, real_start=(49.69, 47.838, 0.0),
        cones=GENERATED_TRACK_CONES, cone_size=GENERATED_TRACK_CONE, scene="generated_track"),
    "warehouse": SceneSpec(
        _point_path("warehouse_path.txt", (47.742, 0.633, 34.704)), -7.0, 3.0,
        two_lane_markings(5.0, centre_dash=(2.0, 4.0)),
        "I: path = right lane (file name), concrete floor, white sides, dashed yellow centre",
        scene="warehouse", start_line="dashed"),
    "sparkfun_avc": SceneSpec(
        _point_path("sparkfun_avc.txt", (-32.13, 0.611, -76.92)), -6.0, 6.0,
        (Marking("left", 0.5, "edge", 0.25), Marking("path", 0.0, "accent", 0.3, 2.0, 4.0),
         Marking("right", -0.5, "edge", 0.25)),
        "I: cracked asphalt, orange dashed centre, white sides; the car spawns 3 left of the path",
        start_lateral=-3.0, drive_lateral=-3.0, scene="sparkfun_avc",
        real_start=(-32.13, -76.92, 0.0)),
    "roboracingleague_1": SceneSpec(
        _derived("roboracingleague_1_nodes_world.txt"), -3.5, 3.5, single_lane_markings(dashed_centre=False),
        "I: office carpet, white tape on both edges (single lane)", scene="carpet", lanes=1,
        real_start=(23.864, -25.952, -90.0)),
    "waveshare": SceneSpec(
        _point_path("waveshare.txt", None), -2.0, 2.0,
        (Marking("left", 0.15, "accent", 0.3), Marking("path", 0.0, "edge", 0.15, 0.6, 1.2),
         Marking("right", -0.15, "accent", 0.3)),
        "I: white mat, solid orange borders, dashed white centre (single lane)", scene="waveshare", lanes=1,
        real_start=(0.0, -7.7, 90.0)),
    "mini_monaco": SceneSpec(
        _derived("mini_monaco_nodes_world.txt"), -5.0, 5.0,
        (Marking("left", 1.0, "edge", 0.25), Marking("path", 0.0, "centre", 0.25),
         Marking("right", -1.0, "edge", 0.25)),
        "V: barriers at +-6 (scene), I: yellow centre, white sides; the car spawns in the right lane (+1.9)",
        barriers=True, barrier_margin=1.0,
        walls=(Wall("left", "left", -1.0, 0.9, 2.6, "barrier"), Wall("right", "right", 1.0, 0.9, 2.6, "barrier")),
        start_lateral=1.9, drive_lateral=2.0, scene="mini_monaco", real_start=(14.04, -68.185, -136.2)),
    "warren": SceneSpec(
        _derived("warren_nodes_world.txt"), -7.0, 3.0, two_lane_markings(5.0, centre_dash=(4.5, 10.0)),
        "V: RoadBuilder W 5, o 2, TransparentRoad paint (dashed yellow)", scene="warren",
        real_start=(41.6, -27.6, -90.0)),
    "circuit_launch": SceneSpec(
        _derived("circuit_launch_nodes_world.txt"), -3.5, 3.5,
        (Marking("left", 0.15, "edge", 0.3), Marking("path", 0.0, "centre", 0.25, 1.0, 2.0),
         Marking("right", -0.15, "accent", 0.3)),
        "I: carpet, white outer tape, dashed yellow centre, black inner tape (single lane); the real "
        "car spawns 4 units right of the path, off this road", scene="carpet", lanes=1,
        real_start=(20.282, -22.122, -90.0)),
    "mountain_track": SceneSpec(
        _point_path("large_loop_center.txt", (49.69, 5.135, 49.95)), -5.95 + _MT_CAR + 0.45, 2.6 + _MT_CAR,
        _MT_MARKS, "M: measured in real frames: the path is the left-lane centre, the car drives the right lane",
        walls=(Wall("left", "left", -0.45, 1.4, 5.0), Wall("right", "right", 0.5, 1.4, 5.0)),
        barriers=True, barrier_margin=0.45, start_lateral=_MT_CAR, drive_lateral=_MT_CAR,
        start_line="dashed", start_line_s=2.3, scene="mountain_track", real_start=(50.122, 51.181, 180.0)),
    "thunderhill": SceneSpec(
        _point_path("thunderhill2.txt", (185.107, 18.649, 503.665), smooth_iter=1), -8.0, 8.0,
        (Marking("left", 0.4, "edge", 0.3), Marking("right", -0.4, "edge", 0.3)),
        "V: barriers at +-10 (scene), I: dark asphalt, white sides; the car spawns 2 right of the path",
        barriers=True, barrier_margin=2.0,
        walls=(Wall("left", "left", -2.0, 0.9, 2.2, "barrier"), Wall("right", "right", 2.0, 0.9, 2.2, "barrier")),
        start_lateral=2.0, drive_lateral=2.0, scene="thunderhill",
        real_start=(185.107, 503.665, 173.2)),
}


def scene_nodes(name: str) -> np.ndarray:
    """The node list (N, 3) the real simulator uses for scene ``name`` (before any smoothing)."""
    return SCENES[name].nodes()


@functools.cache
def reference_path(name: str) -> np.ndarray:
    """The real scene's path as a closed polyline (N, 2) in (x, z), for comparisons."""
    return scene_nodes(name)[:, [0, 2]].copy()


def build_scene(name: str, *, split: str, description: str) -> Track:
    """The Track of DonkeyCar scene ``name`` (real shape, heights and layout; see :data:`SCENES`)."""
    spec = SCENES[name]
    nodes = dedupe(smooth_closed(scene_nodes(name), spec.smooth))
    half = (spec.right - spec.left) / 2
    offset = -(spec.right + spec.left) / 2  # path offset from the road centre (+ = path right of it)
    cones = np.array([(x, z, *spec.cone_size) for x, z in spec.cones]).reshape(-1, 4)
    return Track.from_waypoints(
        name, nodes[:, [0, 2]], half, closed=True, path_offset=offset, heights=nodes[:, 1], waypoints_are="path",
        check=False,
        barriers=spec.barriers, barrier_margin=spec.barrier_margin, markings=spec.markings, walls=spec.walls,
        cones=cones, start_line=spec.start_line, start_line_s=spec.start_line_s, start_lateral=spec.start_lateral,
        drive_lateral=spec.drive_lateral, scene=spec.scene, split=split, description=description)
