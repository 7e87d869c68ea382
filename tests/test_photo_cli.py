"""``blurcli photo`` end to end on real faces: who is hidden, who is kept, what the files look like."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from blurcli._cli import app
from tests.helpers import region_correlation

runner = CliRunner()

OBAMA = [235, 29, 177, 177]  # identity/labels.json "mixed", two_people.jpg
BIDEN = [786, 65, 169, 169]


def blurcli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def two_people(data_dir):
    return data_dir / "identity" / "mixed" / "two_people.jpg"


def test_nobody_enrolled_hides_every_face_and_reports_them(tmp_path, data_dir, two_people):
    out, report = tmp_path / "out.jpg", tmp_path / "report.json"
    result = blurcli("photo", two_people, out, "--report", report, "--gallery", tmp_path / "none.json")
    assert result.exit_code == 0, result.output
    before, after = cv2.imread(str(two_people)), cv2.imread(str(out))
    assert region_correlation(data_dir, before, after, OBAMA) < 0.5
    assert region_correlation(data_dir, before, after, BIDEN) < 0.5
    [entry] = json.loads(report.read_text())
    assert len(entry["faces"]) >= 2
    assert all(f["action"] == "hidden" and f["identity"] is None for f in entry["faces"])
    assert entry["width"] == 1126 and entry["height"] == 661


def test_enrolled_obama_kept_biden_hidden(tmp_path, data_dir, two_people):
    gallery = tmp_path / "gallery.json"
    obama = data_dir / "identity" / "obama"
    result = blurcli("enroll", obama / "obama.jpg", obama / "obama2.jpg", "--name", "obama", "--gallery", gallery)
    assert result.exit_code == 0, result.output
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    result = blurcli("photo", two_people, out, "--gallery", gallery, "--report", report)
    assert result.exit_code == 0, result.output
    before, after = cv2.imread(str(two_people)), cv2.imread(str(out))
    x, y, w, h = OBAMA
    # PNG output: Obama's face region is bit-for-bit the decoded input.
    assert np.array_equal(before[y : y + h, x : x + w], after[y : y + h, x : x + w])
    assert region_correlation(data_dir, before, after, BIDEN) < 0.5
    actions = {f["identity"]: f["action"] for f in json.loads(report.read_text())[0]["faces"]}
    assert actions.get("obama") == "kept" and actions.get(None) == "hidden"


def test_dogs_photo_is_untouched(tmp_path, data_dir):
    src = data_dir / "detect" / "negatives" / "dlib_dogs.jpg"
    out = tmp_path / "dogs.png"
    assert blurcli("photo", src, out).exit_code == 0
    assert np.array_equal(cv2.imread(str(src)), cv2.imread(str(out)))


def test_exif_rotated_photo_comes_out_upright_with_faces_hidden(tmp_path, data_dir, two_people):
    upright = cv2.imread(str(two_people))
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 0.0)}
    src = tmp_path / "phone.jpg"
    Image.fromarray(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB)).save(src, exif=exif.tobytes(), quality=95)
    out = tmp_path / "phone-out.jpg"
    result = blurcli("photo", src, out)
    assert result.exit_code == 0, result.output
    written = Image.open(out)
    assert written.size == (upright.shape[1], upright.shape[0])  # upright pixels
    assert written.getexif().get(0x0112, 1) == 1 and not written.getexif().get_ifd(0x8825)  # no rotation, no GPS
    after = cv2.imread(str(out))
    assert region_correlation(data_dir, upright, after, OBAMA) < 0.5
    assert region_correlation(data_dir, upright, after, BIDEN) < 0.5


def test_folder_mode_keeps_relative_paths_and_skips_non_images(tmp_path, data_dir):
    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    mixed = data_dir / "identity" / "mixed"
    (src / "top.jpg").write_bytes((mixed / "two_people.jpg").read_bytes())
    (src / "a" / "b" / "deep.jpg").write_bytes((mixed / "obama_and_biden.jpg").read_bytes())
    (src / "a" / "notes.txt").write_text("not an image")
    result = blurcli("photo", src, tmp_path / "out")
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["a/b/deep.jpg", "top.jpg"]


def test_folder_mode_reports_bad_files_and_goes_on(tmp_path, data_dir):
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.jpg").write_bytes((data_dir / "identity" / "mixed" / "two_people.jpg").read_bytes())
    (src / "bad.jpg").write_text("this is text")
    result = blurcli("photo", src, tmp_path / "out")
    assert result.exit_code == 9
    assert (tmp_path / "out" / "good.jpg").is_file() and not (tmp_path / "out" / "bad.jpg").exists()
    assert "bad.jpg" in result.output


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("{src}", "{src}"), 2, "never overwrites"),
        (("{src}", "{tmp}/out.xyz"), 2, "extension"),
        (("{tmp}/missing.jpg", "{tmp}/o.jpg"), 3, "no such file"),
        (("{tmp}/text.jpg", "{tmp}/o.jpg"), 3, "not an image"),
    ],
    ids=["out-is-in", "unknown-extension", "missing", "text-as-jpg"],
)
def test_bad_usage_exits_with_one_clear_line(tmp_path, two_people, args, code, message):
    src = tmp_path / "in.jpg"
    src.write_bytes(two_people.read_bytes())
    (tmp_path / "text.jpg").write_text("hello")
    before = src.read_bytes()
    result = blurcli("photo", *(a.format(src=src, tmp=tmp_path) for a in args))
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert src.read_bytes() == before
    assert not (tmp_path / "o.jpg").exists() and not (tmp_path / "out.xyz").exists()
