"""``blurcli enroll`` against broken input and a damaged or busy gallery (issue 5, item 1).

The gallery is the one file blurcli keeps: a bad photo or a damaged gallery must give a clear
error and leave the gallery byte-for-byte as it was (never a silent reset), and two enrolments
at once must both land.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from blurcli.identity.gallery import Gallery
from tests.hardening_support import (
    assert_clean_failure,
    bomb_png,
    cli,
    deny_reading,
    deny_writing,
    leftovers,
    run_blurcli,
    scene,
    snapshot,
    subprocess_env,
    text_file,
)


@pytest.fixture(scope="module")
def portrait(data_dir) -> np.ndarray:
    """Obama alone (obama.jpg at half size, face ~200 px), BGR."""
    image = cv2.imread(str(data_dir / "identity" / "obama" / "obama.jpg"))
    return cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)


@pytest.fixture
def dirs(tmp_path, portrait):
    """tmp/in holds me.jpg (one face); tmp/gallery holds gallery.json with one person already enrolled."""
    src, gal = tmp_path / "in", tmp_path / "gallery"
    src.mkdir()
    gal.mkdir()
    cv2.imwrite(str(src / "me.jpg"), portrait, [cv2.IMWRITE_JPEG_QUALITY, 95])
    existing = Gallery.open(gal / "gallery.json")
    existing.add("someone", np.random.default_rng(0).normal(0, 0.1, (2, 128)).astype(np.float32))
    existing.save()
    return src, gal


def _missing(src, gal, mp, data_dir):
    return [src / "missing.jpg"]


def _folder(src, gal, mp, data_dir):
    (src / "album").mkdir()
    return [src / "album"]


def _unreadable(src, gal, mp, data_dir):
    deny_reading(mp, src / "me.jpg")
    return [src / "me.jpg"]


def _zero_bytes(src, gal, mp, data_dir):
    (src / "empty.jpg").write_bytes(b"")
    return [src / "empty.jpg"]


def _text_as_jpg(src, gal, mp, data_dir):
    return [text_file(src / "notes.jpg")]


def _truncated_jpeg(src, gal, mp, data_dir):
    data = (src / "me.jpg").read_bytes()
    (src / "cut.jpg").write_bytes(data[: len(data) // 2])
    return [src / "cut.jpg"]


def _bomb(src, gal, mp, data_dir):
    return [bomb_png(src / "bomb.png")]


def _good_and_bad(src, gal, mp, data_dir):
    """All photos or none: a good photo beside a bad one enrols nothing."""
    return [src / "me.jpg", text_file(src / "notes.jpg"), "--name", "me"]


def _no_face(src, gal, mp, data_dir):
    dogs = cv2.imread(str(data_dir / "detect" / "negatives" / "dlib_dogs.jpg"))
    cv2.imwrite(str(src / "dogs.jpg"), dogs)
    return [src / "dogs.jpg"]


def _two_faces(src, gal, mp, data_dir):
    cv2.imwrite(str(src / "two.jpg"), scene(data_dir))
    return [src / "two.jpg"]


def _corrupt_gallery(src, gal, mp, data_dir):
    path = gal / "gallery.json"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return [src / "me.jpg"]


def _gallery_not_ours(src, gal, mp, data_dir):
    (gal / "gallery.json").write_text(json.dumps({"people": []}))
    return [src / "me.jpg"]


def _gallery_binary(src, gal, mp, data_dir):
    (gal / "gallery.json").write_bytes(bytes(range(256)) * 4)
    return [src / "me.jpg"]


def _gallery_is_a_folder(src, gal, mp, data_dir):
    (gal / "folder.json").mkdir()
    return [src / "me.jpg", "--gallery", gal / "folder.json"]


def _gallery_unreadable(src, gal, mp, data_dir):
    deny_reading(mp, gal / "gallery.json")
    return [src / "me.jpg"]


def _gallery_folder_not_writable(src, gal, mp, data_dir):
    deny_writing(mp, gal)
    return [src / "me.jpg"]


BAD_INPUTS = [
    # id, setup, exit code, message (regex), parser error (one line naming --help)
    ("missing-file", _missing, 3, r"missing\.jpg: no such file", False),
    ("folder-instead-of-photo", _folder, 3, r"album is a folder", False),
    ("unreadable", _unreadable, 3, r"me\.jpg: permission denied", False),
    ("zero-bytes", _zero_bytes, 3, r"empty\.jpg is empty", False),
    ("text-named-jpg", _text_as_jpg, 3, r"notes\.jpg is not an image", False),
    ("truncated-jpeg", _truncated_jpeg, 3, r"cut\.jpg is (corrupt or )?truncated", False),
    ("decompression-bomb", _bomb, 3, r"bomb\.png is 40000x40000.*over the limit", False),
    ("good-and-bad-photo", _good_and_bad, 3, r"notes\.jpg is not an image", False),
    ("no-face", _no_face, 5, r"dogs\.jpg: no (clear )?face", False),
    ("two-faces", _two_faces, 5, r"two\.jpg: 2 faces found.*--largest", False),
    ("corrupted-gallery", _corrupt_gallery, 6, r"gallery .* is damaged .*will not overwrite it", False),
    ("gallery-not-ours", _gallery_not_ours, 6, r"is damaged \(not a blurcli gallery file\)", False),
    ("gallery-binary", _gallery_binary, 6, r"is damaged \(not valid JSON", False),
    ("gallery-is-a-folder", _gallery_is_a_folder, 2, r"--gallery.*is a directory", True),
    ("gallery-unreadable", _gallery_unreadable, 6, r"cannot read the gallery .*permission denied", False),
    ("gallery-folder-not-writable", _gallery_folder_not_writable, 6, r"(cannot (lock|write) the gallery).*(permission denied|left unchanged)", False),
]


@pytest.mark.parametrize(
    "setup, code, message, usage", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS]
)
def test_bad_input_fails_cleanly_and_keeps_the_gallery(dirs, data_dir, monkeypatch, setup, code, message, usage):
    src, gal = dirs
    args = setup(src, gal, monkeypatch, data_dir)
    if "--gallery" not in args:
        args += ["--gallery", gal / "gallery.json"]
    inputs, gallery = snapshot(src), snapshot(gal)
    outcome = cli("enroll", *args)
    monkeypatch.undo()
    assert_clean_failure(outcome, code, message, usage=usage)
    assert snapshot(src) == inputs, "a photo was changed"
    assert snapshot(gal) == gallery, "the gallery folder changed"
    assert leftovers(src.parent) == []


@pytest.mark.parametrize(
    "make, args, code, message",
    [
        ("text", ["{in}/notes.jpg"], 3, r"notes\.jpg is not an image"),
        ("corrupt-gallery", ["{in}/me.jpg"], 6, r"is damaged"),
    ],
    ids=["text-named-jpg", "corrupted-gallery"],
)
def test_bad_input_in_a_real_process(dirs, make, args, code, message):
    src, gal = dirs
    if make == "text":
        text_file(src / "notes.jpg")
    else:
        (gal / "gallery.json").write_text('{"format": "blurcli-gallery", "version": 1, "peop')
    inputs, gallery = snapshot(src), snapshot(gal)
    outcome = run_blurcli("enroll", *[a.format(**{"in": src}) for a in args], "--gallery", gal / "gallery.json",
                          cwd=src.parent)
    assert_clean_failure(outcome, code, message)
    assert snapshot(src) == inputs and snapshot(gal) == gallery


def test_unreadable_photo_really_unreadable(dirs):
    if os.geteuid() == 0:
        pytest.skip("root can read a chmod 000 file; the simulated row covers this case")
    src, gal = dirs
    (src / "me.jpg").chmod(0)
    try:
        assert_clean_failure(cli("enroll", src / "me.jpg", "--gallery", gal / "gallery.json"), 3, "permission denied")
    finally:
        (src / "me.jpg").chmod(0o644)


# ---------------------------------------------------------------- unusual pictures enrol


def _alpha_png(bgr, path):
    alpha = np.full(bgr.shape[:2], 255, np.uint8)
    alpha[:, : bgr.shape[1] // 10] = 0
    Image.fromarray(np.dstack([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), alpha]), "RGBA").save(path)


def _grey_png(bgr, path):
    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), "L").save(path)


def _grey16_png(bgr, path):
    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257).save(path)


def _cmyk_jpeg(bgr, path):
    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).convert("CMYK").save(path, quality=95)


@pytest.mark.parametrize(
    "make, name",
    [(_alpha_png, "me.png"), (_grey_png, "me.png"), (_grey16_png, "me.png"), (_cmyk_jpeg, "me.jpg")],
    ids=["png-alpha", "png-greyscale", "png-16-bit", "jpeg-cmyk"],
)
def test_unusual_pictures_enrol(tmp_path, portrait, make, name):
    photo, gallery = tmp_path / name, tmp_path / "gallery.json"
    make(portrait, photo)
    before = photo.read_bytes()
    outcome = cli("enroll", photo, "--gallery", gallery)
    assert outcome.code == 0, outcome.stderr
    assert photo.read_bytes() == before
    [person] = Gallery.open(gallery).people()
    assert person.name == "me" and person.samples == 1
    assert stat.S_IMODE(gallery.stat().st_mode) == 0o600


# ---------------------------------------------------------------- two enrolments at once


_ENROL_TWICE = """
import sys
from blurcli.identity import gallery as g

# Hold the lock a little while writing, so that the two processes really overlap on it.
real_write = getattr(g, "_write", None)
if real_write is not None:
    def slow_write(path, entries):
        import time; time.sleep(0.5)
        real_write(path, entries)
    g._write = slow_write
from blurcli._cli import main
sys.argv = ["blurcli", *sys.argv[1:]]
main()
"""


def test_two_enrolments_at_once_both_land(tmp_path, data_dir):
    """Two processes enrol two people into one gallery at the same time: the file lock keeps both."""
    gallery = tmp_path / "gallery.json"
    existing = Gallery.open(gallery)
    existing.add("before", np.random.default_rng(1).normal(0, 0.1, (1, 128)).astype(np.float32))
    existing.save()
    photos = {"obama": data_dir / "identity" / "obama" / "obama2.jpg", "biden": data_dir / "identity" / "biden" / "biden2.jpg"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ENROL_TWICE, "enroll", str(photo), "--name", name, "--gallery", str(gallery)],
            cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name, photo in photos.items()
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in results] == [0, 0], results
    people = {p.name: p.samples for p in Gallery.open(gallery).people()}
    assert people == {"before": 1, "obama": 1, "biden": 1}
    assert stat.S_IMODE(gallery.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


def test_enrol_in_a_real_process_keeps_existing_people(dirs):
    src, gal = dirs
    outcome = run_blurcli("enroll", src / "me.jpg", "--gallery", gal / "gallery.json", cwd=src.parent)
    assert outcome.code == 0, outcome.stderr
    assert {p.name for p in Gallery.open(gal / "gallery.json").people()} == {"someone", "me"}


# ---------------------------------------------------------------- biometric data


def _files_holding(folder, needles: list[str]) -> list[str]:
    """Files under ``folder`` (hidden ones too) that contain any of the strings."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace")
            if any(n in text for n in needles):
                found.append(path.name)
    return found


def test_gallery_holds_encodings_only_and_forget_removes_them_everywhere(tmp_path, portrait, data_dir):
    """Only names, dates and numbers are stored (no photo, crop or path); forget leaves no copy behind."""
    folder = tmp_path / "private"
    gallery = folder / "gallery.json"
    photo = tmp_path / "secret-location-name.jpg"
    cv2.imwrite(str(photo), portrait)
    assert cli("enroll", photo, "--name", "me", "--gallery", gallery).code == 0
    biden = data_dir / "identity" / "biden" / "biden2.jpg"
    assert cli("enroll", biden, "--name", "biden", "--gallery", gallery).code == 0

    assert stat.S_IMODE(gallery.stat().st_mode) == 0o600
    text = gallery.read_text()
    document = json.loads(text)
    assert {p["name"] for p in document["people"]} == {"me", "biden"}
    assert "secret-location-name" not in text and str(tmp_path) not in text and "biden2" not in text
    assert len(text) < 20_000  # numbers, not pictures
    for person in document["people"]:
        assert set(person) <= {"name", "created", "updated", "encodings"}
        assert all(len(e) == 128 for e in person["encodings"])
    first = next(p for p in document["people"] if p["name"] == "me")["encodings"][0]
    mine = [", ".join(json.dumps(v) for v in first[:6])]  # six numbers in a row: this encoding only
    assert _files_holding(folder, mine) == ["gallery.json"]

    outcome = cli("forget", "me", "--yes", "--gallery", gallery)
    assert outcome.code == 0, outcome.stderr
    assert [p.name for p in Gallery.open(gallery).people()] == ["biden"]
    assert _files_holding(folder, mine) == [], "the forgotten encodings are still on disk"
    assert stat.S_IMODE(gallery.stat().st_mode) == 0o600 and leftovers(folder) == []


def test_forget_an_unknown_name_changes_nothing(dirs):
    src, gal = dirs
    before = snapshot(gal)
    outcome = cli("forget", "nobody-by-that-name", "--yes", "--gallery", gal / "gallery.json")
    assert_clean_failure(outcome, 6, r"'nobody-by-that-name' is not enrolled.*'someone'")
    assert snapshot(gal) == before
