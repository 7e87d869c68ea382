"""Image I/O: upright on read, no location on write, every pixel format, clear errors, atomic writes."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from blurcli.errors import InputError, OutputError, UsageError
from blurcli.media.image_io import load_picture, read_image, write_picture
from tests.helpers import make_frame

GPS_IFD = 0x8825


def save_with_exif(path, rgb, orientation=None, gps=True):
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    if orientation:
        exif[0x0112] = orientation
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 0.0)}
    Image.fromarray(rgb).save(path, exif=exif.tobytes(), quality=95)


def test_exif_orientation_is_applied(tmp_path):
    upright = make_frame(60, 100)
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # what a phone writes with orientation 6
    path = tmp_path / "phone.jpg"
    save_with_exif(path, cv2.cvtColor(stored, cv2.COLOR_BGR2RGB), orientation=6)
    picture = load_picture(path)
    assert picture.bgr.shape == upright.shape
    error = np.abs(picture.bgr.astype(int) - upright).mean()
    assert error < 0.3 * np.abs(picture.bgr.astype(int) - upright[::-1, ::-1]).mean()  # upright, not upside down
    assert 0x0112 not in picture.exif


def test_gps_removed_and_other_exif_kept(tmp_path):
    src, dst = tmp_path / "in.jpg", tmp_path / "out.jpg"
    save_with_exif(src, make_frame(40, 40))
    assert Image.open(src).getexif().get_ifd(GPS_IFD)
    picture = load_picture(src)
    write_picture(dst, picture, picture.bgr)
    exif = Image.open(dst).getexif()
    assert GPS_IFD not in exif and not exif.get_ifd(GPS_IFD)
    assert exif[0x010F] == "TestCam"
    write_picture(tmp_path / "kept.jpg", picture, picture.bgr, keep_location=True)
    assert Image.open(tmp_path / "kept.jpg").getexif().get_ifd(GPS_IFD)[1] == "N"


@pytest.mark.parametrize(
    "mode, suffix",
    [("RGBA", ".png"), ("L", ".png"), ("I;16", ".png"), ("CMYK", ".jpg"), ("P", ".png"), ("LA", ".png")],
)
def test_pixel_formats_read_as_8bit_bgr_and_round_trip(tmp_path, mode, suffix):
    rgb = Image.fromarray(cv2.cvtColor(make_frame(32, 48), cv2.COLOR_BGR2RGB))
    img = rgb.convert("I;16") if mode == "I;16" else rgb.convert(mode)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)
    src = tmp_path / f"in{suffix}"
    img.save(src)
    picture = load_picture(src)
    assert picture.bgr.dtype == np.uint8 and picture.bgr.shape == (32, 48, 3)
    assert picture.bgr.std() > 10  # real content, not a blank conversion
    dst = tmp_path / f"out{suffix}"
    write_picture(dst, picture, picture.bgr)
    back = Image.open(dst)
    assert back.size == (48, 32)
    if mode in ("RGBA", "LA"):
        assert "A" in back.mode
    if mode in ("L", "I;16"):
        assert back.mode == "L"


def test_alpha_is_written_back_unchanged(tmp_path):
    rgba = np.dstack([cv2.cvtColor(make_frame(30, 30), cv2.COLOR_BGR2RGB), np.tile(np.arange(30, dtype=np.uint8) * 8, (30, 1))])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    picture = load_picture(tmp_path / "a.png")
    write_picture(tmp_path / "b.png", picture, picture.bgr)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png"))[:, :, 3], rgba[:, :, 3])


def _text_file(p):
    p.write_text("not an image")


def _truncated_jpeg(p):
    Image.fromarray(make_frame(200, 200)).save(p, quality=95)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])


@pytest.mark.parametrize(
    "make, message",
    [
        (None, "no such file"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_bytes(b""), "empty"),
        (_text_file, "not an image"),
        (_truncated_jpeg, "corrupt or truncated"),
    ],
    ids=["missing", "directory", "zero-bytes", "text-as-jpg", "truncated"],
)
def test_bad_inputs_raise_clear_input_errors(tmp_path, make, message):
    path = tmp_path / "bad.jpg"
    if make:
        make(path)
    with pytest.raises(InputError, match=message):
        read_image(path)


def test_decompression_bomb_refused_unless_limit_raised(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (5000, 5000)).save(path)
    with pytest.raises(InputError, match="--max-pixels"):
        read_image(path, max_pixels=10_000_000)
    assert read_image(path, max_pixels=30_000_000).shape == (5000, 5000, 3)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without permission")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.jpg"
    Image.fromarray(make_frame(10, 10)).save(path)
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        read_image(path)


def test_unknown_extension_and_unwritable_folder(tmp_path):
    picture = load_picture_from_array(tmp_path)
    with pytest.raises(UsageError, match="extension"):
        write_picture(tmp_path / "out.xyz", picture, picture.bgr)
    with pytest.raises(OutputError, match="does not exist"):
        write_picture(tmp_path / "missing" / "out.png", picture, picture.bgr)


def test_failed_write_leaves_previous_output_and_no_temp(tmp_path, monkeypatch):
    picture = load_picture_from_array(tmp_path)
    dst = tmp_path / "out.png"
    dst.write_bytes(b"previous")

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        write_picture(dst, picture, picture.bgr)
    assert dst.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "src.png"]


def load_picture_from_array(tmp_path):
    Image.fromarray(make_frame(20, 20)).save(tmp_path / "src.png")
    return load_picture(tmp_path / "src.png")
