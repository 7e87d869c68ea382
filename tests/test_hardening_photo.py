"""``blurcli photo`` against broken, hostile and unusual input (issue 5, items 1 and 2).

Every bad input is a row: the command exits with its documented code and one line on stderr, the
input folder is byte-for-byte unchanged and the output folder holds nothing new (no output, no
temporary file). Unusual but valid pictures (alpha, grey, 16-bit, CMYK, palette) must work, with
the faces hidden.
"""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from blurcli.media.image_io import load_picture
from tests.hardening_support import (
    assert_clean_failure,
    bomb_png,
    cli,
    deny_reading,
    deny_writing,
    leftovers,
    run_blurcli,
    scene,
    scene_faces,
    snapshot,
    text_file,
)
from tests.helpers import region_correlation


@pytest.fixture(scope="module")
def face_jpeg(data_dir, tmp_path_factory) -> bytes:
    """A real photo with two faces (two_people.jpg at half size), as JPEG bytes."""
    path = tmp_path_factory.mktemp("scene") / "scene.jpg"
    cv2.imwrite(str(path), scene(data_dir), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path.read_bytes()


@pytest.fixture
def dirs(tmp_path, face_jpeg):
    """tmp/in holds face.jpg; tmp/out is the (empty) output folder."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "face.jpg").write_bytes(face_jpeg)
    return src, out


# ---------------------------------------------------------------- bad input table
# Each setup gets (in folder, out folder, monkeypatch) and returns the command's arguments.


def _missing(src, out, mp):
    return [src / "missing.jpg", out / "o.jpg"]


def _folder_named_like_an_image(src, out, mp):
    (src / "holiday.jpg").mkdir()
    return [src / "holiday.jpg", out / "o.jpg"]


def _folder_into_a_file(src, out, mp):
    (out / "existing.jpg").write_bytes(b"a previous output")
    return [src, out / "existing.jpg"]


def _report_is_a_folder(src, out, mp):
    (out / "report").mkdir()
    return [src / "face.jpg", out / "o.jpg", "--report", out / "report"]


def _unreadable(src, out, mp):
    deny_reading(mp, src / "face.jpg")
    return [src / "face.jpg", out / "o.jpg"]


def _zero_bytes(src, out, mp):
    (src / "empty.jpg").write_bytes(b"")
    return [src / "empty.jpg", out / "o.jpg"]


def _text_as_jpg(src, out, mp):
    return [text_file(src / "notes.jpg"), out / "o.jpg"]


def _text_as_png(src, out, mp):
    return [text_file(src / "notes.png"), out / "o.png"]


def _truncated_jpeg(src, out, mp):
    data = (src / "face.jpg").read_bytes()
    (src / "cut.jpg").write_bytes(data[: len(data) // 2])
    return [src / "cut.jpg", out / "o.jpg"]


def _jpeg_header_destroyed(src, out, mp):
    data = bytearray((src / "face.jpg").read_bytes())
    data[2:600] = np.random.default_rng(1).integers(0, 256, 598, np.uint8).tobytes()
    (src / "broken.jpg").write_bytes(bytes(data))
    return [src / "broken.jpg", out / "o.jpg"]


def _png_truncated(src, out, mp):
    path = src / "cut.png"
    cv2.imwrite(str(path), cv2.imread(str(src / "face.jpg")))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return [path, out / "o.png"]


def _decompression_bomb(src, out, mp):
    return [bomb_png(src / "bomb.png"), out / "o.png"]


def _over_max_pixels(src, out, mp):
    return [src / "face.jpg", out / "o.jpg", "--max-pixels", "10000"]


def _output_folder_not_writable(src, out, mp):
    deny_writing(mp, out)
    return [src / "face.jpg", out / "o.jpg"]


def _output_folder_refuses_writes(src, out, mp):
    deny_writing(mp, out, access_says_yes=True)
    return [src / "face.jpg", out / "o.jpg"]


def _output_subfolder_not_creatable(src, out, mp):
    deny_writing(mp, out)
    return [src / "face.jpg", out / "new" / "o.jpg"]


def _folder_mode_output_not_writable(src, out, mp):
    shutil.copy(src / "face.jpg", src / "second.jpg")
    deny_writing(mp, out)
    return [src, out / "mirror"]


def _out_is_in(src, out, mp):
    return [src / "face.jpg", src / "face.jpg"]


def _out_is_in_spelled_differently(src, out, mp):
    return [src / "face.jpg", src / ".." / src.name / "face.jpg"]


def _out_is_a_hard_link_to_in(src, out, mp):
    os.link(src / "face.jpg", src / "link.jpg")
    return [src / "face.jpg", src / "link.jpg"]


def _out_is_a_symlink_to_in(src, out, mp):
    (src / "alias.jpg").symlink_to(src / "face.jpg")
    return [src / "face.jpg", src / "alias.jpg"]


def _out_folder_is_in_folder(src, out, mp):
    return [src, src]


def _folder_output_lands_on_an_input(src, out, mp):
    """photo A/B A: A/B/B/face.jpg would be written to A/B/face.jpg, an input."""
    (src / "in").mkdir()
    shutil.copy(src / "face.jpg", src / "in" / "face.jpg")
    return [src, src.parent]


def _report_is_the_input(src, out, mp):
    return [src / "face.jpg", out / "o.jpg", "--report", src / "face.jpg"]


def _report_is_the_output(src, out, mp):
    return [src / "face.jpg", out / "o.jpg", "--report", out / "o.jpg"]


def _report_over_another_photo(src, out, mp):
    shutil.copy(src / "face.jpg", src / "other.jpg")
    return [src / "face.jpg", out / "o.jpg", "--report", src / "other.jpg"]


def _corrupted_gallery(src, out, mp):
    (src / "gallery.json").write_text('{"format": "blurcli-gallery", "version": 1, "people": [{"na')
    (src / "gallery.json").chmod(0o600)  # a private file (a shared one adds a warning line)
    return [src / "face.jpg", out / "o.jpg", "--gallery", src / "gallery.json"]


def _markup_in_the_name(src, out, mp):
    """Rich markup in a file name ("[/x]" closes no tag) is printed as it is, not parsed."""
    return [src / "[" / "x].jpg", out / "o.jpg"]


def _unknown_output_extension(src, out, mp):
    return [src / "face.jpg", out / "o.xyz"]


def _no_output_extension(src, out, mp):
    return [src / "face.jpg", out / "o"]


def _gif_output(src, out, mp):
    return [src / "face.jpg", out / "o.gif"]


def _unknown_input_extension(src, out, mp):
    shutil.copy(src / "face.jpg", src / "face.heic")
    return [src / "face.heic", out / "o.jpg"]


def _empty_folder(src, out, mp):
    (src / "nothing").mkdir()
    text_file(src / "nothing" / "readme.txt")
    return [src / "nothing", out / "x"]


BAD_INPUTS = [
    # id, setup, exit code, message (regex), parser error (one line naming --help)
    ("missing-file", _missing, 3, r"missing\.jpg: no such file", False),
    ("folder-named-like-an-image", _folder_named_like_an_image, 3, r"holiday\.jpg holds no image files", False),
    ("folder-into-a-file", _folder_into_a_file, 2, r"output must be a folder", False),
    ("report-is-a-folder", _report_is_a_folder, 2, r"--report.*is a directory", True),
    ("unreadable", _unreadable, 3, r"face\.jpg: permission denied", False),
    ("zero-bytes", _zero_bytes, 3, r"empty\.jpg is empty", False),
    ("text-named-jpg", _text_as_jpg, 3, r"notes\.jpg is not an image", False),
    ("text-named-png", _text_as_png, 3, r"notes\.png is not an image", False),
    ("truncated-jpeg", _truncated_jpeg, 3, r"cut\.jpg is (corrupt or )?truncated", False),
    ("corrupted-jpeg-header", _jpeg_header_destroyed, 3, r"broken\.jpg is (not an image|corrupt)", False),
    ("truncated-png", _png_truncated, 3, r"cut\.png is (corrupt or )?truncated", False),
    ("decompression-bomb", _decompression_bomb, 3, r"bomb\.png is 40000x40000.*--max-pixels", False),
    ("over-max-pixels", _over_max_pixels, 3, r"over the limit of 10,000.*--max-pixels", False),
    ("output-folder-not-writable", _output_folder_not_writable, 4, r"cannot write in .*out.*permission denied", False),
    ("output-folder-refuses-writes", _output_folder_refuses_writes, 4, r"cannot write in .*out.*permission denied", False),
    ("output-subfolder-not-creatable", _output_subfolder_not_creatable, 4, r"cannot create folder .*new.*permission denied", False),
    ("folder-mode-output-not-writable", _folder_mode_output_not_writable, 4, r"(cannot create folder|cannot write in) .*mirror.*permission denied", False),
    ("out-is-in", _out_is_in, 2, r"is the input itself", False),
    ("out-is-in-other-spelling", _out_is_in_spelled_differently, 2, r"is the input itself", False),
    ("out-is-hard-link-to-in", _out_is_a_hard_link_to_in, 2, r"is the input itself", False),
    ("out-is-symlink-to-in", _out_is_a_symlink_to_in, 2, r"is the input itself", False),
    ("out-folder-is-in-folder", _out_folder_is_in_folder, 2, r"is the input folder", False),
    ("folder-output-lands-on-an-input", _folder_output_lands_on_an_input, 2, r"face\.jpg.*is (also )?an input", False),
    ("report-is-the-input", _report_is_the_input, 2, r"--report .*face\.jpg is also the input or output", False),
    ("report-is-the-output", _report_is_the_output, 2, r"--report .*o\.jpg is also the input or output", False),
    ("report-over-another-photo", _report_over_another_photo, 2, r"--report .*other\.jpg is an existing file that is not a JSON report", False),
    ("corrupted-gallery", _corrupted_gallery, 6, r"gallery .*gallery\.json is damaged", False),
    ("markup-in-the-name", _markup_in_the_name, 3, r"in/\[/x\]\.jpg: no such file", False),
    ("unknown-output-extension", _unknown_output_extension, 2, r"extension '\.xyz'.*use one of", False),
    ("no-output-extension", _no_output_extension, 2, r"extension '\(none\)'.*use one of", False),
    ("gif-output", _gif_output, 2, r"extension '\.gif'.*use one of", False),
    ("unknown-input-extension", _unknown_input_extension, 3, r"face\.heic: not a image file by its extension|face\.heic: not an image", False),
    ("folder-without-images", _empty_folder, 3, r"nothing holds no image files", False),
]


@pytest.mark.parametrize(
    "setup, code, message, usage", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS]
)
def test_bad_input_fails_cleanly(dirs, monkeypatch, setup, code, message, usage):
    src, out = dirs
    args = setup(src, out, monkeypatch)
    inputs, outputs = snapshot(src), snapshot(out)
    outcome = cli("photo", *args)
    monkeypatch.undo()  # the checks below read files normally
    assert_clean_failure(outcome, code, message, usage=usage)
    assert snapshot(src) == inputs, "an input was changed"
    assert snapshot(out) == outputs, "something was written to the output folder"
    assert leftovers(src.parent) == []


def test_unreadable_file_really_unreadable(dirs):
    """Without the simulation: chmod 000 (meaningful only when not root, as root reads anything)."""
    if os.geteuid() == 0:
        pytest.skip("root can read a chmod 000 file; the simulated row covers this case")
    src, out = dirs
    (src / "face.jpg").chmod(0)
    try:
        assert_clean_failure(cli("photo", src / "face.jpg", out / "o.jpg"), 3, "permission denied")
    finally:
        (src / "face.jpg").chmod(0o644)
    assert snapshot(out) == {}


def test_debug_shows_the_traceback(dirs):
    """--debug is the one way to see where an error came from; the one-line message still ends the output."""
    src, out = dirs
    text_file(src / "notes.jpg")
    outcome = cli("--debug", "photo", src / "notes.jpg", out / "o.jpg")
    assert outcome.code == 3
    assert "Traceback" in outcome.stderr
    assert outcome.lines()[-1].startswith("error: ") and "not an image" in outcome.lines()[-1]


# ---------------------------------------------------------------- the same, through a real process


@pytest.mark.parametrize(
    "make, args, code, message",
    [
        (None, ["{in}/missing.jpg", "{out}/o.jpg"], 3, r"no such file"),
        ("text", ["{in}/notes.jpg", "{out}/o.jpg"], 3, r"notes\.jpg is not an image"),
        ("bomb", ["{in}/bomb.png", "{out}/o.png"], 3, r"--max-pixels"),
        (None, ["{in}/face.jpg", "{in}/face.jpg"], 2, r"is the input itself"),
    ],
    ids=["missing", "text-named-jpg", "decompression-bomb", "out-is-in"],
)
def test_bad_input_in_a_real_process(dirs, make, args, code, message):
    src, out = dirs
    if make == "text":
        text_file(src / "notes.jpg")
    elif make == "bomb":
        bomb_png(src / "bomb.png")
    inputs = snapshot(src)
    outcome = run_blurcli("photo", *[a.format(**{"in": src, "out": out}) for a in args], cwd=src.parent)
    assert_clean_failure(outcome, code, message)
    assert outcome.stdout == ""
    assert snapshot(src) == inputs and snapshot(out) == {}


# ---------------------------------------------------------------- unusual pictures that must work


def _alpha_png(bgr, path):
    h, w = bgr.shape[:2]
    alpha = np.full((h, w), 255, np.uint8)
    alpha[:, : w // 8] = 0  # a transparent strip, and a soft edge
    alpha[:, w // 8 : w // 4] = 128
    rgba = np.dstack([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), alpha])
    Image.fromarray(rgba, "RGBA").save(path)


def _grey_png(bgr, path):
    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), "L").save(path)


def _grey16_png(bgr, path):
    grey16 = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    Image.fromarray(grey16).save(path)  # mode I;16
    assert Image.open(path).mode.startswith("I")


def _rgb16_png(bgr, path):
    cv2.imwrite(str(path), bgr.astype(np.uint16) * 257)  # 48-bit colour PNG


def _cmyk_jpeg(bgr, path):
    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"


def _cmyk_tiff(bgr, path):
    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).convert("CMYK").save(path)


def _palette_png(bgr, path):
    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).quantize(256).save(path)


UNUSUAL = [
    ("png-alpha", _alpha_png, "in.png", "out.png"),
    ("png-greyscale", _grey_png, "in.png", "out.png"),
    ("png-16-bit-grey", _grey16_png, "in.png", "out.png"),
    ("png-16-bit-colour", _rgb16_png, "in.png", "out.png"),
    ("jpeg-cmyk", _cmyk_jpeg, "in.jpg", "out.jpg"),
    ("tiff-cmyk", _cmyk_tiff, "in.tif", "out.png"),
    ("png-palette", _palette_png, "in.png", "out.png"),
]


@pytest.mark.parametrize("make, name, out_name", [r[1:] for r in UNUSUAL], ids=[r[0] for r in UNUSUAL])
def test_unusual_pictures_work_with_faces_hidden(tmp_path, data_dir, make, name, out_name):
    src, dst = tmp_path / name, tmp_path / "out" / out_name
    dst.parent.mkdir()
    make(scene(data_dir), src)
    before_bytes = src.read_bytes()
    outcome = cli("photo", src, dst)
    assert outcome.code == 0, outcome.stderr
    assert src.read_bytes() == before_bytes
    assert leftovers(tmp_path) == [] and sorted(os.listdir(dst.parent)) == [out_name]
    before, after = load_picture(src), load_picture(dst)
    assert after.bgr.shape == before.bgr.shape
    for box in scene_faces():
        assert region_correlation(data_dir, before.bgr, after.bgr, box) < 0.5, f"face at {box} not hidden"
    # away from the faces the picture is what it was (within the output codec's loss)
    background = np.s_[before.bgr.shape[0] - 40 :, :]
    assert np.abs(before.bgr[background].astype(int) - after.bgr[background].astype(int)).mean() < 4
    if make is _alpha_png:
        assert after.alpha is not None and np.array_equal(after.alpha, before.alpha)
    if make in (_grey_png, _grey16_png):
        assert Image.open(dst).mode == "L"


# ---------------------------------------------------------------- folder mode keeps going


def test_folder_mode_skips_bad_files_reports_them_and_exits_9(tmp_path, face_jpeg, data_dir):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    (src / "a_good.jpg").write_bytes(face_jpeg)
    cv2.imwrite(str(src / "sub" / "c_good.png"), cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_COLOR))
    text_file(src / "b_text.jpg")
    (src / "sub" / "d_cut.jpg").write_bytes(face_jpeg[: len(face_jpeg) // 3])
    (src / "e_empty.png").write_bytes(b"")
    bomb_png(src / "f_bomb.png")
    report = tmp_path / "report.json"
    inputs = snapshot(src)

    outcome = cli("photo", src, out, "--report", report)

    assert outcome.code == 9, outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert snapshot(src) == inputs
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a_good.jpg", "sub/c_good.png"]
    assert leftovers(tmp_path) == []
    original = scene(data_dir)
    for name in written:
        result = cv2.imread(str(out / name))
        for box in scene_faces():
            assert region_correlation(data_dir, original, result, box) < 0.5
    # the summary table names every bad file and says why; the last line says how many failed
    table = outcome.stderr
    for name, why in [("b_text.jpg", "not an image"), ("d_cut.jpg", "truncated"), ("e_empty.png", "empty"),
                      ("f_bomb.png", "max-pixels")]:
        assert name in table and why in table, table
    assert "4 of 6" in table
    assert outcome.lines()[-1].startswith("error: 4 of 6 files failed")
    entries = {Path(e["input"]).name: e for e in json.loads(report.read_text())}
    assert set(entries) == {"a_good.jpg", "b_text.jpg", "c_good.png", "d_cut.jpg", "e_empty.png", "f_bomb.png"}
    assert entries["a_good.jpg"]["error"] is None and len(entries["a_good.jpg"]["faces"]) >= 2
    assert "not an image" in entries["b_text.jpg"]["error"]


def test_folder_mode_with_an_unreadable_file_goes_on(tmp_path, face_jpeg, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (src / name).write_bytes(face_jpeg)
    deny_reading(monkeypatch, src / "b.jpg")
    outcome = cli("photo", src, out)
    monkeypatch.undo()
    assert outcome.code == 9, outcome.stderr
    assert sorted(os.listdir(out)) == ["a.jpg", "c.jpg"]
    assert "b.jpg" in outcome.stderr and "permission denied" in outcome.stderr


# ---------------------------------------------------------------- metadata from real cameras


def test_camera_exif_with_thumbnail_works_and_the_thumbnail_is_gone(tmp_path, data_dir, face_jpeg):
    """A camera JPEG's EXIF has an Exif sub-IFD and an IFD1 thumbnail (an unredacted copy of the photo)."""
    camera = Image.open(data_dir / "identity" / "deepface" / "img3.jpg")
    raw_exif = camera.info["exif"]
    assert b"\xff\xd8" in raw_exif  # it carries a JPEG thumbnail
    src, dst = tmp_path / "camera.jpg", tmp_path / "out.jpg"
    Image.open(io.BytesIO(face_jpeg)).save(src, exif=raw_exif, quality=95)
    outcome = cli("photo", src, dst)
    assert outcome.code == 0, outcome.stderr
    data = dst.read_bytes()
    assert data.count(b"\xff\xd8") == 1, "an embedded picture (thumbnail) was copied"
    written = Image.open(dst).getexif()
    assert written.get(0x0131) == camera.getexif().get(0x0131)  # descriptive tags are kept
    assert not written.get_ifd(0x8825)


def test_maker_note_previews_and_xmp_names_are_not_copied(tmp_path, data_dir, face_jpeg):
    """Maker notes can hold preview JPEGs; XMP can hold face regions with people's names."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x8769] = {0x9003: "2024:05:01 12:00:00", 0x927C: b"Nikon\x00" + face_jpeg[:4000]}
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" '
           b'mwg-rs:Name="Joe Bloggs"/></rdf:RDF></x:xmpmeta>')
    src, dst = tmp_path / "camera.jpg", tmp_path / "out.jpg"
    Image.open(io.BytesIO(face_jpeg)).save(src, exif=exif.tobytes(), xmp=xmp, quality=95)
    assert Image.open(src).getexif().get_ifd(0x8769).get(0x927C)
    outcome = cli("photo", src, dst)
    assert outcome.code == 0, outcome.stderr
    data = dst.read_bytes()
    assert data.count(b"\xff\xd8") == 1 and b"Nikon" not in data and b"Joe Bloggs" not in data
    written = Image.open(dst).getexif()
    assert written[0x010F] == "TestCam" and written.get_ifd(0x8769)[0x9003] == "2024:05:01 12:00:00"


def test_eps_named_jpg_is_refused_without_running_ghostscript(dirs, monkeypatch):
    """Pillow opens EPS by content and renders it with Ghostscript; blurcli reads only raster formats."""
    src, out = dirs
    (src / "doc.jpg").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n")
    import subprocess

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a program was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    monkeypatch.setattr(subprocess, "check_call", no_subprocess)
    outcome = cli("photo", src / "doc.jpg", out / "o.jpg")
    monkeypatch.undo()
    assert_clean_failure(outcome, 3, r"doc\.jpg is not an image blurcli can read")
    assert snapshot(out) == {}


def test_folder_mode_prints_names_that_look_like_markup_as_they_are(tmp_path, face_jpeg):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "a[").mkdir(parents=True)
    (src / "good.jpg").write_bytes(face_jpeg)
    text_file(src / "[red]bad.jpg")
    text_file(src / "a[" / "x].jpg")  # shown as a[/x].jpg: a closing tag that matches nothing
    outcome = cli("photo", src, out)
    assert outcome.code == 9, outcome.stderr
    assert outcome.exception is None and "Traceback" not in outcome.stderr
    assert "[red]bad.jpg" in outcome.stderr and "a[/x].jpg" in outcome.stderr
    assert sorted(os.listdir(out)) == ["good.jpg"]


def test_disk_full_while_writing_keeps_the_previous_output(dirs, monkeypatch):
    """ENOSPC half-way through the file: exit 4, the previous output is untouched, no temp file."""
    import errno

    src, out = dirs
    (out / "o.jpg").write_bytes(b"previous output")
    real_save = Image.Image.save

    def save(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)  # the temp file is complete...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...and then the disk is full

    monkeypatch.setattr(Image.Image, "save", save)
    outcome = cli("photo", src / "face.jpg", out / "o.jpg")
    monkeypatch.undo()
    assert_clean_failure(outcome, 4, r"cannot write .*o\.jpg: No space left on device")
    assert (out / "o.jpg").read_bytes() == b"previous output"
    assert leftovers(out) == [] and sorted(os.listdir(out)) == ["o.jpg"]
