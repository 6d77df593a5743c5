"""``donkeyrl tracks``: list the track catalogue and the train / validation / test sets.

The sets come from :mod:`donkeyrl.sim.tracksets` (the one place that names them): every catalogue
row says which set its track belongs to (``set``), and the listing ends with the three sets,
procedural seed ranges included. ``--sets`` prints only the sets (a JSON object with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from donkeyrl.cli.common import CLIError
from donkeyrl.sim.track import Track
from donkeyrl.sim.tracks import TrackInfo, get_track, list_tracks


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tracks`` subcommand."""
    p = subparsers.add_parser(
        "tracks", help="list the built-in tracks",
        description="List the built-in track catalogue: name, path length and mean road width "
        "(simulator units), closed loop or open road, barriers, train/held-out split and the "
        "track set (train, validation or test), then the three sets of the track protocol: "
        "training (catalogue training tracks + a procedural stream), validation (what a study's "
        "objective is measured on) and test (only reported), with their procedural seed ranges. "
        "Any name listed, a DonkeyCar env id (e.g. donkey-generated-roads-v0) or "
        "procedural-<seed> is accepted wherever donkeyrl takes a track; training takes the "
        "regimes procedural, catalogue and mixed too. See docs/evaluation.md.")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list of objects (one per track, with its 'set') instead of a "
                   "table; with --sets a JSON object of the three sets")
    p.add_argument("--sets", action="store_true",
                   help="print only the train / validation / test sets (tracks, procedural seed "
                   "ranges, training regimes)")
    p.add_argument("--split", choices=("train", "heldout", "all"), default="all",
                   help="only list tracks of this split (default: all)")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE",
                   help="also save a top-down drawing of the listed tracks to this image file "
                   f"(format from the extension: {', '.join(PLOT_FORMATS)}); its directory must "
                   "exist")
    p.set_defaults(func=run)


#: Image formats ``--plot`` writes (an RGB drawing; pillow picks the encoder by extension).
PLOT_FORMATS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".pdf")


def check_plot_path(path: Path) -> None:
    """Refuse, before any drawing, an extension pillow cannot write or a missing directory
    (nothing is created: a typo in the directory must not make new directories)."""
    from PIL import Image

    Image.init()
    savable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}
    if path.suffix.lower() not in savable or path.suffix.lower() not in PLOT_FORMATS:
        valid = [ext for ext in PLOT_FORMATS if ext in savable]
        raise CLIError(f"--plot {str(path)!r}: unknown image format {path.suffix or '(none)'!r}; "
                       f"valid extensions: {', '.join(valid)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"--plot {str(path)!r}: directory {str(parent)!r} does not exist")
    if path.is_dir():
        raise CLIError(f"--plot {str(path)!r} is a directory, not a file name")


def sets_document() -> dict[str, Any]:
    """The three track sets of :mod:`donkeyrl.sim.tracksets` as one JSON-ready object.

    ``procedural_seeds`` is ``[first, last]`` (inclusive) of each set's procedural range.
    """
    from donkeyrl.sim import tracksets as ts

    def seeds(r: range) -> list[int]:
        return [r.start, r.stop - 1]

    return {
        "train": {"catalogue": list(ts.training_catalogue()),
                  "procedural_seeds": seeds(ts.TRAIN_SEED_RANGE),
                  "regimes": dict(ts.REGIMES),
                  "note": "an unlimited procedural stream: a fresh seeded track per episode"},
        "validation": {"catalogue": list(ts.VALIDATION_CATALOGUE),
                       "procedural_seeds": seeds(ts.VALIDATION_SEEDS),
                       "tracks": list(ts.validation_tracks()),
                       "note": "what a study's objective, race_score, is measured on"},
        "test": {"catalogue": list(ts.TEST_CATALOGUE), "procedural_seeds": seeds(ts.TEST_SEEDS),
                 "tracks": list(ts.test_tracks()),
                 "note": "never used to select anything: only reported, by the final test"},
    }


def _sets_text(doc: dict[str, Any]) -> str:
    lines = ["track sets (train / validation / test are disjoint; see docs/evaluation.md):"]
    for name in ("train", "validation", "test"):
        d = doc[name]
        first, last = d["procedural_seeds"]
        lines.append(f"  {name + ':':<11} {', '.join(d['catalogue'])} + procedural-{first} .. "
                     f"procedural-{last} ({d['note']})")
    lines.append(f"  training regimes: {'; '.join(f'{k}: {v}' for k, v in doc['train']['regimes'].items())}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the listing; return the exit code."""
    if args.sets:
        doc = sets_document()
        print(json.dumps(doc, indent=2) if args.json else _sets_text(doc))
        return 0
    infos = list_tracks(args.split)
    if args.plot is not None:
        check_plot_path(args.plot)
        try:
            plot_tracks([get_track(i.name) for i in infos], args.plot)
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot write plot {str(args.plot)!r}: {exc}") from None
    from donkeyrl.sim.tracksets import set_of

    if args.json:
        print(json.dumps([{**i.to_dict(), "set": set_of(i.name)} for i in infos], indent=2))
    else:
        _print_table(infos)
        print(_sets_text(sets_document()))
    return 0


def _print_table(infos: list[TrackInfo]) -> None:
    """Plain fixed-width table: readable in any terminal width and in logs (no wrapping)."""
    from donkeyrl.sim.tracksets import set_of

    head = ("name", "length", "width", "min_w", "type", "barriers", "split", "set", "description")
    rows = [(i.name, f"{i.length:.0f}", f"{i.width:.1f}", f"{i.min_width:.1f}",
             "closed" if i.closed else "open", "yes" if i.barriers else "no", i.split,
             set_of(i.name), i.description)
            for i in infos]
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    right = {1, 2, 3}
    for r in [head, *rows]:
        print("  ".join(v.rjust(w) if c in right else v.ljust(w)
                        for c, (v, w) in enumerate(zip(r, widths))).rstrip())
    print("lengths and widths in simulator units (1 telemetry unit = 8); width = 2 x half-width")


def plot_tracks(tracks: list[Track], path: Path, tile: int = 260) -> None:
    """Draw each track top-down (road grey, path yellow, start green) in a grid PNG.

    Uses pillow only. Each tile is scaled to fit its track, so compare sizes by the printed length.
    The directory of ``path`` must exist (see ``check_plot_path``).
    """
    from PIL import Image, ImageDraw

    cols = min(5, len(tracks))
    rows = math.ceil(len(tracks) / cols)
    img = Image.new("RGB", (cols * tile, rows * tile), (34, 92, 40))
    draw = ImageDraw.Draw(img)
    for k, tr in enumerate(tracks):
        ox, oy = (k % cols) * tile, (k // cols) * tile
        left = tr.points + tr.normals * tr.lat_left[:, None]
        right = tr.points + tr.normals * tr.lat_right[:, None]
        allp = np.vstack([left, right])
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        scale = (tile - 36) / max(float(np.max(hi - lo)), 1e-6)
        centre = (lo + hi) / 2

        def px(p: np.ndarray, ox: int = ox, oy: int = oy, scale: float = scale,
               centre: np.ndarray = centre) -> list[tuple[float, float]]:
            q = (p - centre) * scale
            return [(ox + tile / 2 + x, oy + tile / 2 + 8 - z) for x, z in q]  # z up

        # road as quads between consecutive edge samples (handles varying width)
        n = tr.n if tr.closed else tr.n - 1
        for i in range(n):
            j = (i + 1) % tr.n
            draw.polygon(px(np.array([left[i], left[j], right[j], right[i]])), fill=(90, 90, 90))
        if tr.barriers:
            for lat in (tr.lat_left - tr.barrier_margin, tr.lat_right + tr.barrier_margin):
                wall = tr.points + tr.normals * lat[:, None]
                wall = np.vstack([wall, wall[:1]]) if tr.closed else wall
                draw.line(px(wall), fill=(200, 40, 40), width=1)
        line = np.vstack([tr.points, tr.points[:1]]) if tr.closed else tr.points
        draw.line(px(line), fill=(235, 200, 40), width=1 if tr.closed else 2)
        sx, sz = px(tr.points[:1])[0]
        draw.ellipse([sx - 4, sz - 4, sx + 4, sz + 4], fill=(40, 220, 60))
        draw.text((ox + 4, oy + 2), f"{tr.name} ({tr.length:.0f}, {tr.split})", fill=(255, 255, 255))
    img.save(path)
