"""Identity: encodings of real faces, matching, the gallery file's safety, and which face is enrolled."""
from __future__ import annotations

import json
import multiprocessing
import os
import stat
import subprocess
import sys
import threading
from contextlib import ExitStack as DoesNotRaise
from pathlib import Path

import numpy as np
import pytest

from blurcli.errors import EnrolmentError, GalleryError
from blurcli.faces import Faces, iou_matrix
from blurcli.identity import FaceEncoder, Gallery, Matcher
from blurcli.identity import gallery as gallery_module
from blurcli.identity.enroll import choose_face, enroll
from blurcli.media.image_io import read_image

# identity/labels.json "mixed" boxes ([x, y, w, h]) for two_people.jpg.
OBAMA_BOX = [235, 29, 177, 177]
BIDEN_BOX = [786, 65, 169, 169]


def xywh_to_xyxy(b):
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


def make_faces(xyxy, score=None) -> Faces:
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    return Faces(xyxy, np.full(len(xyxy), 0.9, np.float32) if score is None else score)


def unit(seed: int, near=None, distance: float = 0.0) -> np.ndarray:
    """A random 128-d encoding, or one at exactly ``distance`` from ``near``."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=128)
    if near is None:
        return (v / np.linalg.norm(v) * 0.6).astype(np.float32)
    v -= v.dot(near) / near.dot(near) * near  # orthogonal step keeps the arithmetic exact
    return (near + v / np.linalg.norm(v) * distance).astype(np.float32)


# ---------------------------------------------------------------- real faces (session-wide, computed once)


@pytest.fixture(scope="module")
def detector():
    from blurcli.detect import load_detector

    return load_detector()


@pytest.fixture(scope="module")
def encoder():
    return FaceEncoder()


@pytest.fixture(scope="module")
def obama_samples(data_dir, detector, encoder):
    """Encodings of obama.jpg and obama2.jpg (one face each)."""
    out = []
    for name in ("obama.jpg", "obama2.jpg"):
        image = read_image(data_dir / "identity" / "obama" / name)
        faces = detector.detect(image, upscale_small=False)
        index, _ = choose_face(faces)
        out.append(encoder.encode(image, faces.xyxy[index : index + 1])[0])
    return np.stack(out)


@pytest.fixture(scope="module")
def two_people(data_dir, detector):
    image = read_image(data_dir / "identity" / "mixed" / "two_people.jpg")
    return image, detector.detect(image)


def labelled(faces: Faces, box_xywh) -> int:
    """Index of the detection that is the labelled face."""
    iou = iou_matrix(faces.xyxy, [xywh_to_xyxy(box_xywh)])[:, 0]
    assert iou.max() > 0.4, "the labelled face was not detected"
    return int(iou.argmax())


def test_enrolled_obama_is_matched_and_biden_is_unknown(obama_samples, two_people, encoder):
    image, faces = two_people
    matcher = Matcher(["obama"], [obama_samples], tolerance=0.45)
    names, distances = matcher.match(encoder.encode(image, faces.xyxy))
    obama, biden = labelled(faces, OBAMA_BOX), labelled(faces, BIDEN_BOX)
    assert names[obama] == "obama" and distances[obama] < 0.4
    assert names[biden] is None and distances[biden] > 0.6
    assert sum(n is not None for n in names) == 1


def test_same_person_is_near_and_different_people_are_far(obama_samples, two_people, encoder):
    image, faces = two_people
    biden = encoder.encode(image, faces.xyxy[[labelled(faces, BIDEN_BOX)]])[0]
    assert np.linalg.norm(obama_samples[0] - obama_samples[1]) < 0.45
    assert np.linalg.norm(obama_samples - biden, axis=1).min() > 0.6


def test_encoding_barely_moves_when_the_detector_box_jitters(two_people, encoder):
    image, faces = two_people
    box = faces.xyxy[labelled(faces, OBAMA_BOX)].astype(np.float64)
    w, h = box[2] - box[0], box[3] - box[1]
    jittered = [box + [dx * w, dy * h, dx * w + (s - 1) * w, dy * h + (s - 1) * h] for dx, dy, s in
                [(0.08, -0.06, 1.1), (-0.08, 0.08, 0.9), (0.0, 0.1, 1.15)]]
    enc = encoder.encode(image, np.array([box, *jittered]))
    assert np.linalg.norm(enc[1:] - enc[0], axis=1).max() < 0.12


def test_encoder_accepts_grey_and_bgra_and_marks_unusable_boxes_nan(two_people, encoder):
    image, faces = two_people
    box = faces.xyxy[[labelled(faces, OBAMA_BOX)]]
    colour = encoder.encode(image, box)
    bgra = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    assert np.linalg.norm(encoder.encode(bgra, box) - colour) < 1e-5
    grey = image.mean(axis=2).astype(np.uint8)
    assert np.linalg.norm(encoder.encode(grey, box) - colour) < 0.3
    h, w = image.shape[:2]
    odd = np.array([box[0], [w + 10, 0, w + 90, 80], [5, 5, 5, 5], [np.nan, 0, 10, 10]], np.float32)
    out = encoder.encode(image, odd)
    assert out.shape == (4, 128) and out.dtype == np.float32
    assert np.isfinite(out[0]).all() and np.isnan(out[1:]).all()
    assert encoder.encode(image, np.zeros((0, 4))).shape == (0, 128)
    names, distances = Matcher(["x"], [out[:1]], 0.45).match(out)
    assert names.tolist() == ["x", None, None, None] and np.isnan(distances[1:]).all()


def test_importing_identity_loads_no_model():
    code = "import sys, blurcli.identity, blurcli.identity.enroll; print('dlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------- matching rules


A = unit(1)
B = unit(2)


@pytest.mark.parametrize(
    "face, expected_name",
    [
        (unit(10, A, 0.30), "a"),  # clearly a
        (unit(11, A, 0.449), "a"),  # just inside the tolerance
        (unit(12, A, 0.46), None),  # just outside
        (unit(13, B, 0.20), "b"),
        (unit(14), None),  # a stranger
        (np.full(128, np.nan, np.float32), None),  # no encoding
    ],
)
def test_match_table(face, expected_name):
    matcher = Matcher(["a", "b"], [A[None], B[None]], tolerance=0.45)
    names, distances = matcher.match(face[None])
    assert names[0] == expected_name
    if expected_name is not None:
        assert distances[0] <= 0.45


def test_match_uses_the_nearest_sample_of_each_person():
    far, near = unit(20, A, 0.9), A
    matcher = Matcher(["a"], [np.stack([far, near])], tolerance=0.45)
    names, distances = matcher.match(unit(21, A, 0.3)[None])
    assert names[0] == "a" and abs(distances[0] - 0.3) < 1e-4


def test_a_face_between_two_look_alikes_is_unknown():
    twin = unit(30, A, 0.06)
    matcher = Matcher(["a", "twin"], [A[None], twin[None]], tolerance=0.45)
    face = unit(31, A, 0.2)
    names, distances = matcher.match(face[None])
    assert names[0] is None  # within tolerance of both: not clearly either
    assert distances[0] <= 0.45


def test_empty_matcher_keeps_nobody():
    matcher = Gallery(Path("unused.json")).matcher(0.45)
    assert matcher.empty
    names, distances = matcher.match(np.stack([A, B]))
    assert names.tolist() == [None, None] and np.isnan(distances).all()


# ---------------------------------------------------------------- gallery file


def saved(path: Path, **people) -> Gallery:
    g = Gallery.open(path)
    for name, enc in people.items():
        g.add(name, enc)
    g.save()
    return g


def test_gallery_round_trip_modes_and_contents(tmp_path):
    path = tmp_path / "private" / "nested" / "gallery.json"
    assert Gallery.open(path).people() == [] and not path.exists()  # missing file: empty, nothing created
    saved(path, ann=np.stack([A, B]))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = Gallery.open(path)
    [person] = again.people()
    assert (person.name, person.samples) == ("ann", 2)
    assert np.abs(again.encodings("ann") - np.stack([A, B])).max() < 1e-6
    doc = json.loads(path.read_text())
    assert doc["version"] == 1 and doc["format"] == "blurcli-gallery"
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_adding_to_an_existing_name_adds_samples(tmp_path):
    path = tmp_path / "g.json"
    saved(path, ann=A)
    first = Gallery.open(path).people()[0]
    saved(path, ann=B)
    [person] = Gallery.open(path).people()
    assert person.samples == 2 and person.created == first.created and person.updated >= first.updated


def test_default_path_comes_from_env_then_user_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BLURCLI_GALLERY", str(tmp_path / "env.json"))
    assert Gallery.open(None).path == tmp_path / "env.json"
    monkeypatch.delenv("BLURCLI_GALLERY")
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_data_dir", lambda app, appauthor=None: str(tmp_path / "data" / app))
    assert Gallery.open(None).path == tmp_path / "data" / "blurcli" / "gallery.json"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[]", "not a blurcli gallery"),
        (b'{"format": "blurcli-gallery", "version": 1, "encoder": "%s", "people": {}}', "'people' is not a list"),
        (b'{"format": "blurcli-gallery", "version": 99, "encoder": "x", "people": []}', "newer blurcli"),
        (b'{"format": "blurcli-gallery", "version": 1, "encoder": "other-model", "people": []}', "another face model"),
        (b'{"format": "blurcli-gallery", "version": 1, "encoder": "%s", "people": [{"name": "a"}]}', "entry 0"),
        (b'{"format": "blurcli-gallery", "version": 1, "encoder": "%s", "people": [{"name": "a", "created":'
         b' "2024-01-01T00:00:00+00:00", "updated": "2024-01-01T00:00:00+00:00", "encodings": [[0.1, 0.2]]}]}', "shape"),
    ],
)
def test_a_damaged_gallery_is_an_error_and_is_never_overwritten(tmp_path, content, message):
    path = tmp_path / "gallery.json"
    content = content.replace(b"%s", gallery_module.ENCODER_ID.encode())
    path.write_bytes(content)
    with pytest.raises(GalleryError, match=message) as info:
        Gallery.open(path)
    assert str(path) in str(info.value)
    g = Gallery(path)  # a gallery opened before the file was damaged must not overwrite it either
    g.add("ann", A)
    with pytest.raises(GalleryError):
        g.save()
    assert path.read_bytes() == content


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_an_interrupted_save_leaves_the_previous_gallery_and_no_temp_file(tmp_path, monkeypatch, failure):
    path = tmp_path / "gallery.json"
    saved(path, ann=A)
    before = path.read_bytes()
    g = Gallery.open(path)
    g.add("bob", B)

    def broken(*args, **kwargs):
        raise failure

    monkeypatch.setattr(gallery_module.os, "replace", broken)
    with pytest.raises(GalleryError if isinstance(failure, OSError) else KeyboardInterrupt):
        g.save()
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gallery.json.lock", "gallery.json"]
    assert [p.name for p in Gallery.open(path).people()] == ["ann"]


_KILL_MID_SAVE = """
import os, signal, sys, numpy as np
from blurcli.identity import gallery
real_fsync = os.fsync
def fsync_then_die(fd):
    real_fsync(fd)
    os.kill(os.getpid(), signal.SIGKILL)  # the temp file is written, the rename has not happened
gallery.os.fsync = fsync_then_die
g = gallery.Gallery.open(sys.argv[1])
g.add("bob", np.full(128, 0.01, np.float32))
g.save()
"""


def test_a_writer_killed_mid_save_leaves_the_previous_gallery(tmp_path):
    path = tmp_path / "gallery.json"
    saved(path, ann=A)
    before = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", _KILL_MID_SAVE, str(path)], capture_output=True)
    assert proc.returncode == -9, proc.stderr
    assert path.read_bytes() == before
    assert len(list(tmp_path.glob(".gallery.json.*.tmp"))) == 1  # SIGKILL cannot clean up...
    saved(path, cy=B)  # ...the next save (under the lock) removes the leftover
    assert list(tmp_path.glob("*.tmp")) == [] and list(tmp_path.glob(".*.tmp")) == []
    assert [p.name for p in Gallery.open(path).people()] == ["ann", "cy"]


def test_saves_merge_with_changes_made_since_open(tmp_path):
    path = tmp_path / "gallery.json"
    saved(path, ann=A)
    first, second = Gallery.open(path), Gallery.open(path)
    first.add("bob", B)
    second.forget("ann")
    second.add("cy", unit(3))
    first.save()
    second.save()
    assert [p.name for p in Gallery.open(path).people()] == ["bob", "cy"]


def test_concurrent_enrolments_from_threads_all_land(tmp_path):
    path = tmp_path / "gallery.json"
    names = [f"person{i}" for i in range(6)]
    barrier = threading.Barrier(len(names))
    errors = []

    def enrol(i, name):
        try:
            g = Gallery.open(path)
            g.add(name, unit(100 + i))
            barrier.wait()
            g.save()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=enrol, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in Gallery.open(path).people()) == names


def _enrol_in_process(args):
    path, name, seed = args
    g = Gallery.open(path)
    g.add(name, unit(seed))
    g.save()


def test_concurrent_enrolments_from_processes_all_land(tmp_path):
    path = str(tmp_path / "gallery.json")
    jobs = [(path, f"p{i}", 200 + i) for i in range(4)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_enrol_in_process, jobs)
    assert sorted(p.name for p in Gallery.open(path).people()) == ["p0", "p1", "p2", "p3"]


def test_forget_removes_every_encoding_from_the_file(tmp_path):
    path = tmp_path / "gallery.json"
    saved(path, ann=np.stack([A, unit(5)]), bob=B)
    g = Gallery.open(path)
    gone = g.forget("ann")
    g.save()
    assert gone.samples == 2
    text = path.read_text()
    assert "ann" not in text
    stored = np.array([e for p in json.loads(text)["people"] for e in p["encodings"]])
    assert stored.shape == (1, 128) and np.abs(stored[0] - B).max() < 1e-6


def test_forget_unknown_name_lists_who_is_enrolled(tmp_path):
    path = tmp_path / "gallery.json"
    saved(path, ann=A, bob=B)
    with pytest.raises(GalleryError, match=r"'zed' is not enrolled.*'ann', 'bob'"):
        Gallery.open(path).forget("zed")


@pytest.mark.parametrize(
    "name, expectation",
    [("  ann  ", DoesNotRaise()), ("", pytest.raises(GalleryError)), ("a\nb", pytest.raises(GalleryError)),
     ("x" * 101, pytest.raises(GalleryError)), ("[1,2]", DoesNotRaise())],
)
def test_names_are_checked(tmp_path, name, expectation):
    with expectation:
        g = saved(tmp_path / "g.json", **{"placeholder": A})
        g.add(name, B)
        g.save()
        assert name.strip() in [p.name for p in Gallery.open(tmp_path / "g.json").people()]


# ---------------------------------------------------------------- which face is enrolled


@pytest.mark.parametrize(
    "boxes, scores, largest, expected",
    [
        ([], [], False, pytest.raises(EnrolmentError, match="no face")),
        ([[0, 0, 100, 120]], [0.35], False, pytest.raises(EnrolmentError, match="no clear face")),
        ([[0, 0, 40, 50]], [0.9], False, pytest.raises(EnrolmentError, match="50 px tall")),
        ([[0, 0, 100, 120]], [0.9], False, (0, 0)),
        # a second person of similar size: refused, unless --largest
        ([[0, 0, 100, 120], [300, 0, 390, 110]], [0.9, 0.9], False, pytest.raises(EnrolmentError, match="--largest")),
        ([[300, 0, 390, 110], [0, 0, 100, 120]], [0.9, 0.9], True, (1, 1)),
        # an uncertain but big second face still makes the photo ambiguous
        ([[0, 0, 100, 120], [300, 0, 390, 110]], [0.9, 0.35], False, pytest.raises(EnrolmentError)),
        # a face in the far background (< 1/4 of the main face's height) is ignored
        ([[0, 0, 100, 120], [300, 0, 322, 28]], [0.9, 0.9], False, (0, 1)),
        # the same face found twice (box mostly inside the main one) is one face
        ([[0, 0, 100, 120], [10, 10, 80, 100]], [0.9, 0.4], False, (0, 0)),
    ],
)
def test_choose_face_table(boxes, scores, largest, expected):
    faces = make_faces(boxes, np.asarray(scores, np.float32))
    if isinstance(expected, tuple):
        assert choose_face(faces, largest=largest) == expected
    else:
        with expected:
            choose_face(faces, largest=largest)


class _FakeDetector:
    """Returns fixed faces, whatever the picture (for enrolment rules, not detection)."""

    def __init__(self, faces: Faces):
        self.faces = faces

    def detect(self, image, **options):
        return self.faces


class _FakeEncoder:
    def __init__(self, encodings):
        self.encodings = list(encodings)

    def encode(self, image, xyxy):
        return np.stack([self.encodings.pop(0) for _ in range(len(xyxy))])


def _photo(tmp_path, name: str) -> Path:
    import cv2

    path = tmp_path / name
    cv2.imwrite(str(path), np.full((200, 200, 3), 128, np.uint8))
    return path


def test_all_photos_or_none_are_enrolled(tmp_path):
    good, bad = _photo(tmp_path, "good.jpg"), _photo(tmp_path, "bad.jpg")

    class Detector:
        def detect(self, image, **options):
            return make_faces([[0, 0, 100, 120]]) if Detector.calls.pop(0) else Faces.empty()

    Detector.calls = [True, False]
    gallery = tmp_path / "g.json"
    with pytest.raises(EnrolmentError, match=r"nothing was enrolled.*bad\.jpg: no face") as info:
        enroll([good, bad], gallery_path=gallery, detector=Detector(), encoder=_FakeEncoder([A]))
    assert "good.jpg" not in str(info.value)
    assert not gallery.exists()


def test_name_defaults_to_the_first_photo_stem_and_doubts_are_reported(tmp_path, caplog):
    gallery = tmp_path / "g.json"
    saved(gallery, bob=B)
    me, other = _photo(tmp_path, "me.jpg"), _photo(tmp_path, "me-too.jpg")
    detector = _FakeDetector(make_faces([[0, 0, 100, 120]]))
    # the second photo is 0.1 from bob and far from the first one: both doubts are raised
    result = enroll([me, other], gallery_path=gallery, detector=detector, encoder=_FakeEncoder([A, unit(7, B, 0.1)]))
    assert result.person.name == "me" and result.person.samples == 2 and result.created
    assert len(result.warnings) == 3
    assert any("looks like 'bob'" in w for w in result.warnings)
    assert any("does not look like the other photos of 'me'" in w for w in result.warnings)
    assert sum(r.levelname == "WARNING" for r in caplog.records) == 3


def test_gallery_from_real_enrolment_holds_no_image_data_or_paths(tmp_path, data_dir, detector, encoder):
    gallery = tmp_path / "g.json"
    photo = data_dir / "identity" / "obama" / "obama.jpg"
    result = enroll([photo], name="obama", gallery_path=gallery, detector=detector, encoder=encoder)
    assert result.photos[0].face_px > 200 and result.person.samples == 1
    raw = gallery.read_bytes()
    assert len(raw) < 5000  # 128 numbers and a few fields, nothing like a picture
    doc = json.loads(raw)
    assert set(doc) == {"format", "version", "encoder", "people"}
    [person] = doc["people"]
    assert set(person) == {"name", "created", "updated", "encodings"}
    strings = [doc["format"], doc["encoder"], person["name"], person["created"], person["updated"]]
    assert not any("/" in s or "\\" in s or "jpg" in s.lower() for s in strings)
    assert str(data_dir) not in raw.decode() and "obama.jpg" not in raw.decode()
