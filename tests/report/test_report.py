"""The HTML report: self-contained, every section present, read-only over the study, cached drives.

The tests marked slow share one report of a study whose champion is driven on all 26 validation and
test tracks (tens of seconds).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path

import pytest

from report_fixtures import tree_digest
from donkeyrl.report import REPORT_NAME, build_report, load_study, write_report
from donkeyrl.report.champion import CACHE_DIR, champion_drives


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


@pytest.mark.slow
def test_report_is_one_self_contained_file(written: dict) -> None:
    page, root = written["page"], written["root"]
    assert written["path"] == root / REPORT_NAME
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    srcs = _images(page)
    assert len(srcs) >= 12
    for src in srcs:  # every image is embedded, and is a real PNG or GIF
        kind, data = re.match(r"data:image/(png|webp);base64,(.+)", src).groups()
        raw = base64.b64decode(data)
        assert raw[:4] == b"\x89PNG" if kind == "png" else (raw[:4], raw[8:12]) == (b"RIFF", b"WEBP")
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from a network
    assert "<script" not in page


@pytest.mark.slow
def test_report_shows_every_section(written: dict) -> None:
    page = html.unescape(written["page"])
    data = load_study(written["root"])
    for title in ("Optimisation history", "Champion progression", "Parameter importance", "Slices",
                  "GP posterior", "Learning curves", "Validation set", "Test set",
                  "Lap times against the scripted expert", "The champion driving", "Head to head"):
        assert title in page, title
    # failures with their reasons, proposals, champion
    assert "killed after --trial-timeout 300 s" in page and "ValueError: n_steer out of range" in page
    assert "reward hacking" in page
    assert ">gp<" in written["page"] and ">random<" in written["page"]
    assert f"trial {data.champion.trial}: driving_score" in page
    assert "fANOVA" in page and "learning_rate" in page
    missing = sum(t.curve is None for t in data.trials)
    assert missing >= 4 and f"{missing} trial(s) have no curve recorded" in page  # trial 2 and the failures
    # every validation and test track appears in the per-track table, with the expert's lap time
    from donkeyrl.rl.evaluate import expert_lap_time
    from donkeyrl.sim.tracksets import test_tracks, validation_tracks

    for track in (*validation_tracks(), *test_tracks()):
        assert f">{track}<" in written["page"], track
    assert f"{expert_lap_time('warren'):.4g}" in page
    # the head-to-head rows, every column present (also one only some rows have)
    for col in ("method", "lap_rate", "best_lap_time", "race_score", "pit_stops"):
        assert f">{col}<" in written["page"]
    assert "101.2" in page and "baseline" in page and "the scripted expert" in page


@pytest.mark.slow
def test_report_only_reads_the_study(written: dict) -> None:
    root = written["root"]
    assert tree_digest(root) == written["before"]  # journal, models, logs: byte for byte
    cache = sorted(p.name for p in (root / CACHE_DIR).iterdir())
    assert len(cache) == 2 and cache[0].startswith("champion-")
    assert {Path(c).suffix for c in cache} == {".webp", ".json"}
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [*{p.split("/")[0] for p in written["before"]}, CACHE_DIR, REPORT_NAME])


@pytest.mark.slow
def test_second_report_reuses_the_cached_drives(written: dict) -> None:
    root = written["root"]
    drives = champion_drives(load_study(root))
    assert drives is not None and drives.from_cache and drives.seconds == 0.0
    # the cached traces and animation are what the first report drew and embedded
    film = base64.b64encode(drives.animation).decode("ascii")
    assert f'src="data:image/webp;base64,{film}"' in written["page"]
    cache_json = next((root / CACHE_DIR).glob("*.json"))
    cached = json.loads(cache_json.read_text())
    assert {t: tr.to_json() for t, tr in drives.traces.items()} == cached["traces"]
    # the key is the champion model's sha256: another model would be driven again
    assert cached["key"]["sha256"].startswith(cache_json.stem.split("-")[1])
    assert cached["key"]["sha256"] == hashlib.sha256((root / "models/champion/model.zip").read_bytes()).hexdigest()


def test_report_without_driving_and_without_a_champion(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text(json.dumps({
        "trial": 1, "params": {"learning_rate": 1e-3}, "run_status": "crashed", "message": "boom",
        "objective_name": "driving_score"}) + "\n")
    out = write_report(tmp_path, tmp_path / "r.html")
    page = html.unescape(out.read_text())
    assert "No champion model to drive yet" in page and "none yet" in page and "boom" in page
    assert "study.json holds no search space" in page
    assert not (tmp_path / CACHE_DIR).exists()
    page2 = build_report(load_study(tmp_path), drive=False)
    assert "Not driven" in page2


def test_a_champion_that_cannot_drive_still_gives_a_report(study: Path, tmp_path: Path) -> None:
    """A config that no longer fits its model (observation size edited): the page says so."""
    import shutil

    from donkeyrl.rl.config import TrialConfig

    root = tmp_path / "s"
    shutil.copytree(study, root)
    champion = root / "models" / "champion"
    cfg = TrialConfig.load(champion)
    cfg.replace(obs_width=cfg.obs_width + 16).save(champion)
    page = html.unescape(write_report(root).read_text())
    assert "driving the champion failed" in page and "Optimisation history" in page
    assert "No animation" in page
