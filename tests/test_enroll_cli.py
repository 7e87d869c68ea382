"""``blurcli enroll / faces / forget`` in-process, on real photos: exit codes, messages, the gallery file."""
from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from blurcli._cli import app
from blurcli.identity import Gallery

runner = CliRunner()


def blurcli(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def flat(text: str) -> str:
    """Output with line wrapping undone, for substring checks."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def photos(data_dir):
    identity = data_dir / "identity"
    return {
        "obama": identity / "obama" / "obama.jpg",
        "obama2": identity / "obama" / "obama2.jpg",
        "obama3": identity / "obama" / "obama3.jpg",
        "two_people": identity / "mixed" / "two_people.jpg",
        "dogs": data_dir / "detect" / "negatives" / "dlib_dogs.jpg",
    }


def test_enroll_then_list_then_forget(tmp_path, photos):
    gallery = tmp_path / "gallery.json"
    result = blurcli("enroll", photos["obama"], photos["obama2"], "--name", "obama", "--gallery", gallery)
    assert result.exit_code == 0, result.output
    assert "enrolled 'obama': 2 photo(s), 2 sample(s)" in flat(result.output)
    assert stat.S_IMODE(gallery.stat().st_mode) == 0o600

    result = blurcli("enroll", photos["obama3"], "-n", "obama", "--gallery", gallery)
    assert result.exit_code == 0, result.output
    assert "added to 'obama': 1 photo(s), 3 sample(s) in total" in flat(result.output)

    result = blurcli("faces", "--gallery", gallery, "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert listing["gallery"] == str(gallery)
    assert [(p["name"], p["samples"]) for p in listing["people"]] == [("obama", 3)]

    result = blurcli("faces", "--gallery", gallery)
    assert result.exit_code == 0 and "obama" in result.stdout and "3" in result.stdout

    result = blurcli("forget", "obama", "--gallery", gallery, input="n\n")
    assert result.exit_code == 1 and "nothing was removed" in flat(result.output)
    assert [p.samples for p in Gallery.open(gallery).people()] == [3]

    result = blurcli("forget", "obama", "--gallery", gallery, "--yes")
    assert result.exit_code == 0, result.output
    assert "removed 3 sample(s)" in flat(result.output)
    doc = json.loads(gallery.read_text())
    assert doc["people"] == [] and "obama" not in gallery.read_text()


def test_photo_without_a_face_is_refused_with_its_name(tmp_path, photos):
    gallery = tmp_path / "gallery.json"
    result = blurcli("enroll", photos["dogs"], "--gallery", gallery)
    assert result.exit_code == 5
    assert "dlib_dogs.jpg" in flat(result.output) and "no face found" in flat(result.output)
    assert not gallery.exists()


def test_photo_with_two_faces_is_refused_unless_largest(tmp_path, photos):
    gallery = tmp_path / "gallery.json"
    result = blurcli("enroll", photos["two_people"], "--gallery", gallery)
    assert result.exit_code == 5
    assert "two_people.jpg: 2 faces found" in flat(result.output) and "--largest" in result.output
    assert not gallery.exists()

    result = blurcli("enroll", photos["two_people"], "--largest", "--gallery", gallery)
    assert result.exit_code == 0, result.output
    [person] = Gallery.open(gallery).people()
    assert (person.name, person.samples) == ("two_people", 1)  # named after the file


def test_enroll_uses_the_gallery_env_var(tmp_path, photos, monkeypatch):
    gallery = tmp_path / "from-env.json"
    monkeypatch.setenv("BLURCLI_GALLERY", str(gallery))
    result = blurcli("enroll", photos["obama"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in Gallery.open(gallery).people()] == ["obama"]


def test_missing_photo_is_an_input_error(tmp_path):
    result = blurcli("enroll", tmp_path / "nope.jpg", "--gallery", tmp_path / "g.json")
    assert result.exit_code == 3
    assert "nope.jpg" in flat(result.output)


def test_corrupt_gallery_is_reported_and_left_alone(tmp_path, photos):
    gallery = tmp_path / "gallery.json"
    gallery.write_text("{ this is not json")
    for args in (["enroll", photos["obama"]], ["faces"], ["forget", "obama", "--yes"]):
        result = blurcli(*args, "--gallery", gallery)
        assert result.exit_code == 6, result.output
        assert "damaged" in flat(result.output) and "gallery.json" in flat(result.output)
    assert gallery.read_text() == "{ this is not json"


def test_empty_gallery_listing_and_unknown_forget(tmp_path):
    gallery = tmp_path / "none.json"
    result = blurcli("faces", "--gallery", gallery)
    assert result.exit_code == 0 and "nobody is enrolled" in flat(result.output)
    result = blurcli("faces", "--gallery", gallery, "--json")
    assert json.loads(result.stdout)["people"] == []
    result = blurcli("forget", "ann", "--gallery", gallery, "--yes")
    assert result.exit_code == 6 and "'ann' is not enrolled" in flat(result.output) and "nobody" in result.output
    assert not gallery.exists()
