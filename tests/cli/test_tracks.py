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
