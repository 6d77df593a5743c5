"""``donkeyrl tracks``: listing and the --plot file checks."""

from __future__ import annotations

import json

import pytest

from donkeyrl.cli import main


def test_json_listing(capsys):
    assert main(["tracks", "--json", "--split", "train"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["split"] == "train" for r in rows)


def test_plot_writes_an_image(tmp_path, capsys):
    out = tmp_path / "tracks.png"
    assert main(["tracks", "--split", "heldout", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name,match", [
    ("x.unknownext", "unknown image format '.unknownext'; valid extensions: .png, .jpg"),
    ("noext", "unknown image format '(none)'"),
])
def test_plot_unknown_format_is_one_line_listing_the_formats(tmp_path, capsys, name, match):
    assert main(["tracks", "--plot", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / name).exists()


def test_plot_into_a_missing_directory_creates_nothing(tmp_path, capsys):
    target = tmp_path / "nonexistent" / "deeper" / "x.png"
    assert main(["tracks", "--plot", str(target)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "nonexistent").exists()


def test_plot_onto_a_directory_is_refused(tmp_path, capsys):
    (tmp_path / "d.png").mkdir()
    assert main(["tracks", "--plot", str(tmp_path / "d.png")]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_listing_names_each_tracks_set_and_the_three_sets(capsys):
    from donkeyrl.sim.tracksets import TEST_CATALOGUE, VALIDATION_CATALOGUE

    assert main(["tracks", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"name", "length", "width", "split", "description", "set"} <= set(rows["oval"])
    assert all(rows[n]["set"] == "validation" for n in VALIDATION_CATALOGUE)
    assert all(rows[n]["set"] == "test" for n in TEST_CATALOGUE)
    assert rows["generated_track"]["set"] == "train"
    assert main(["tracks"]) == 0
    out = capsys.readouterr().out
    assert "procedural-10000 .. procedural-10007" in out
    assert "procedural-20000 .. procedural-20011" in out and "procedural-100000 .." in out


def test_sets_document(capsys):
    from donkeyrl.sim import tracksets

    assert main(["tracks", "--sets", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["train", "validation", "test"]
    assert doc["validation"]["tracks"] == list(tracksets.validation_tracks())
    assert doc["test"]["procedural_seeds"] == [tracksets.TEST_SEEDS.start, tracksets.TEST_SEEDS.stop - 1]
    assert set(doc["train"]["regimes"]) == set(tracksets.REGIMES)
    assert not set(doc["train"]["catalogue"]) & set(doc["validation"]["catalogue"] + doc["test"]["catalogue"])
    assert main(["tracks", "--sets"]) == 0
    assert capsys.readouterr().out.startswith("track sets")
