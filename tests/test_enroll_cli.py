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
        "biden": identity / "biden" / "biden.jpg",
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


# -- enrolment from a short video ---------------------------------------------------------------


def _clip_of(path, pictures, frames_each=8):
    """A 25 fps 480x360 clip showing each picture (scaled to fit, letterboxed) for ``frames_each`` frames."""
    import cv2
    import numpy as np

    from tests.media_factory import make_clip

    def fit(path):
        image = cv2.imread(str(path))
        scale = min(480 / image.shape[1], 360 / image.shape[0])
        small = cv2.resize(image, (int(image.shape[1] * scale) // 2 * 2, int(image.shape[0] * scale) // 2 * 2),
                           interpolation=cv2.INTER_AREA)
        canvas = np.zeros((360, 480, 3), np.uint8)
        y, x = (360 - small.shape[0]) // 2, (480 - small.shape[1]) // 2
        canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
        return canvas

    images = [fit(p) for p in pictures]
    return make_clip(path, frames=len(images) * frames_each, size=(480, 360),
                     image_fn=lambda i: images[i // frames_each])


def test_enroll_from_a_video_takes_varied_frames_and_then_recognises_the_person(tmp_path, photos):
    """The clip turns from one pose (obama1) to another (obama2, 0.46 apart: one of them alone would
    not keep the other at 0.45): samples of both are kept, so the full-size photos of both poses
    stay sharp, and someone else does not."""
    from blurcli.identity.enroll import enroll

    obama1 = photos["obama"].with_name("obama1.jpg")
    clip = _clip_of(tmp_path / "selfie.mp4", [obama1, photos["obama2"]], frames_each=20)
    gallery_file = tmp_path / "g.json"
    result = blurcli("enroll", clip, "--name", "obama", "--gallery", gallery_file)
    assert result.exit_code == 0, result.output
    assert "from video frames" in flat(result.output)
    encodings = Gallery.open(gallery_file).encodings("obama")
    assert 2 <= len(encodings) <= 8
    taken = enroll([clip], name="again", gallery_path=tmp_path / "g2.json").photos
    assert {p.at_s < 0.8 for p in taken} == {True, False}  # frames of both poses
    from blurcli.pipeline.photo import PhotoRedactor, PhotoSettings
    from blurcli.settings import IdentitySettings

    redactor = PhotoRedactor(PhotoSettings(identity=IdentitySettings(gallery=gallery_file)))
    for photo, action in ((obama1, "kept"), (photos["obama2"], "kept"), (photos["biden"], "hidden")):
        report = redactor.redact_file(photo, tmp_path / f"out-{photo.name}")
        assert [f.action for f in report.faces] == [action], photo


def test_a_video_with_two_people_is_refused_and_nothing_is_saved(tmp_path, photos):
    gallery_file = tmp_path / "g.json"
    together = _clip_of(tmp_path / "together.mp4", [photos["obama"], photos["two_people"]])
    result = blurcli("enroll", together, "--name", "obama", "--gallery", gallery_file)
    assert result.exit_code == 5 and "faces found" in flat(result.output), result.output
    assert not gallery_file.exists()
    by_turns = _clip_of(tmp_path / "turns.mp4", [photos["obama"], photos["obama3"], photos["biden"]])
    result = blurcli("enroll", by_turns, "--name", "obama", "--gallery", gallery_file)
    assert result.exit_code == 5 and "not the person in the rest of the video" in flat(result.output), result.output
    assert not gallery_file.exists()


def test_enroll_from_a_camera_watches_it_for_the_seconds_given(tmp_path, photos, monkeypatch):
    """--device N --seconds S: no /dev/video* exists here, so camera N is a clip of two poses
    (read as its pictures come, like a camera's); both poses are sampled, a stranger is not kept."""
    from blurcli.live.settings import SourceSpec

    obama1 = photos["obama"].with_name("obama1.jpg")
    clip = _clip_of(tmp_path / "camera.mp4", [obama1, photos["obama2"], photos["biden"]], frames_each=20)
    opened = []

    def camera(index, options=None):
        opened.append(index)
        return SourceSpec(str(clip))

    monkeypatch.setattr(SourceSpec, "camera", staticmethod(camera))
    gallery_file = tmp_path / "g.json"
    nameless = blurcli("enroll", "--device", "2", "--gallery", gallery_file)
    assert nameless.exit_code == 2 and "give --name" in flat(nameless.output)
    # 1.5 s of the camera: both poses of him (0-1.6 s), not the stranger who follows at 1.6 s.
    result = blurcli("enroll", "--device", "2", "--seconds", "1.5", "--name", "obama", "--gallery", gallery_file)
    assert result.exit_code == 0, result.output
    assert opened == [2] and "camera.mp4 for 1.5 s: look at it" in flat(result.output)
    assert "from video frames" in flat(result.output)
    from blurcli.pipeline.photo import PhotoRedactor, PhotoSettings
    from blurcli.settings import IdentitySettings

    redactor = PhotoRedactor(PhotoSettings(identity=IdentitySettings(gallery=gallery_file)))
    for photo, action in ((obama1, "kept"), (photos["obama2"], "kept"), (photos["biden"], "hidden")):
        assert [f.action for f in redactor.redact_file(photo, tmp_path / f"out-{photo.name}").faces] == [action], photo
    # Watched for longer, the stranger who steps in refuses the whole enrolment.
    longer = blurcli("enroll", "--device", "2", "--seconds", "3", "--name", "x", "--gallery", tmp_path / "g2.json")
    assert longer.exit_code == 5 and "not the person in the rest of the video" in flat(longer.output)
    assert not (tmp_path / "g2.json").exists()
