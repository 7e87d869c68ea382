"""Fuzzing the readers with mutated real files (issue 5, item 4).

Small real files (a JPEG with EXIF, a PNG with alpha, an MP4 with audio) are mutated with
hypothesis: bytes flipped, runs overwritten, cut short, pieces spliced in or dropped. Whatever
comes in, the readers must either return a sane picture / frames or raise ``InputError``: never
another exception type, a crash or a hang.

Bounded: a fixed, reproducible set of examples by default (about 20 s on 2 cores). For a longer,
random hunt set ``BLURCLI_FUZZ_EXAMPLES=5000``.
"""
from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from blurcli.errors import InputError
from blurcli.media.image_io import load_picture, read_image, write_picture
from blurcli.media.video_io import VideoReader, probe_video
from tests.media_factory import make_clip

_EXAMPLES = int(os.environ.get("BLURCLI_FUZZ_EXAMPLES", "0"))
#: Seconds one example may take before it counts as a hang.
HANG_S = 20
#: Pixel limit while fuzzing: a mutated header may claim any size; keep allocations small.
MAX_PIXELS = 2_000_000


def _settings(examples: int):
    return settings(
        max_examples=_EXAMPLES or examples,
        deadline=None,  # a hang is caught by the alarm below; timings on a shared CI machine vary
        derandomize=not _EXAMPLES,  # reproducible in CI; random when hunting
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in the code under test eats it."""


@contextlib.contextmanager
def hang_guard(seconds: int = HANG_S):
    """SIGALRM after ``seconds``; pytest-timeout's own alarm (same timer) is put back afterwards."""

    def alarm(signum, frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    outer = signal.alarm(seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.alarm(max(1, outer - int(time.monotonic() - started)))


# ---------------------------------------------------------------- seeds and mutations


@pytest.fixture(scope="module")
def seeds(data_dir, tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("seeds")
    face = cv2.imread(str(data_dir / "identity" / "obama" / "obama_small.jpg"))
    face = cv2.resize(face, (80, 60), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(face, cv2.COLOR_BGR2RGB)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the reader rotates
    exif[0x010F] = "fuzz camera"
    Image.fromarray(rgb).save(folder / "seed.jpg", quality=80, exif=exif.tobytes())
    exif[0x8769] = {0x9003: "2024:01:01 10:00:00", 0x829A: (1, 125), 0x927C: b"MAKERNOTE" * 8}
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 0.0), 6: 34.5}
    Image.fromarray(rgb).save(folder / "seed_gps.jpg", quality=80, exif=exif.tobytes())
    alpha = np.tile(np.linspace(0, 255, 80, dtype=np.uint8), (60, 1))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(folder / "seed.png")
    make_clip(folder / "seed.mp4", frames=6, size=(48, 32), audio=True,
              image_fn=lambda i: np.random.default_rng(i).integers(0, 256, (32, 48, 3), np.uint8))
    make_clip(folder / "seed_fast.mp4", frames=6, size=(48, 32), faststart=True)
    make_clip(folder / "seed.mkv", frames=6, size=(48, 32), audio=True, rotation=90)
    names = ("seed.jpg", "seed_gps.jpg", "seed.png", "seed.mp4", "seed_fast.mp4", "seed.mkv")
    return {name: (folder / name).read_bytes() for name in names}


def _mutation():
    """One edit: (kind, position as a fraction of the length, a size, a byte value)."""
    return st.tuples(
        st.sampled_from(["flip", "overwrite", "truncate", "splice", "delete", "duplicate", "zero"]),
        st.floats(0, 1, allow_nan=False),
        st.integers(1, 512),
        st.integers(0, 255),
    )


MUTATIONS = st.lists(_mutation(), min_size=1, max_size=4)


def mutate(data: bytes, edits) -> bytes:
    """Apply edits in order; positions are fractions, so one list of edits fits any seed."""
    buf = bytearray(data)
    for kind, where, size, value in edits:
        if not buf:
            break
        at = min(int(where * len(buf)), len(buf) - 1)
        if kind == "flip":
            buf[at] ^= value or 0xFF
        elif kind == "overwrite":
            buf[at : at + size] = bytes((value + i * 31) & 0xFF for i in range(min(size, len(buf) - at)))
        elif kind == "truncate":
            del buf[at:]
        elif kind == "splice":  # a piece from elsewhere in the file lands here
            start = (at + size * 7) % len(buf)
            buf[at:at] = buf[start : start + size]
        elif kind == "delete":
            del buf[at : at + size]
        elif kind == "duplicate":
            buf[at:at] = buf[at : at + size]
        elif kind == "zero":
            buf[at : at + size] = bytes(min(size, len(buf) - at))
    return bytes(buf)


def _write(data: bytes, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix, prefix="fuzz-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(name)


# ---------------------------------------------------------------- images


def _check_image(path: Path, *, write: bool = False) -> None:
    """Read ``path``: a sane picture or InputError. With ``write``, a picture read must also write back."""
    try:
        with hang_guard():
            picture = load_picture(path, max_pixels=MAX_PIXELS)
    except InputError as exc:
        message = str(exc)
        assert message and "\n" not in message and str(path) in message
        return
    bgr = picture.bgr
    assert bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] == 3 and bgr.flags.c_contiguous
    assert bgr.shape[0] * bgr.shape[1] <= MAX_PIXELS
    if picture.alpha is not None:
        assert picture.alpha.shape == bgr.shape[:2] and picture.alpha.dtype == np.uint8
    if write:  # whatever metadata survived reading must not break writing
        out = path.with_name(path.stem + "-out.jpg")
        try:
            write_picture(out, picture, bgr)
            with Image.open(out) as written:
                assert written.size == (bgr.shape[1], bgr.shape[0])
                assert not written.getexif().get_ifd(0x8825)  # no location, whatever came in
        finally:
            out.unlink(missing_ok=True)


def _app1(jpeg: bytes) -> tuple[int, int]:
    """(start, end) of the EXIF APP1 segment's payload in a JPEG."""
    start = jpeg.index(b"\xff\xe1") + 4
    length = int.from_bytes(jpeg[start - 2 : start], "big")
    return start, start - 2 + length


@pytest.mark.parametrize("seed", ["seed.jpg", "seed.png"])
def test_mutated_images_give_a_picture_or_input_error(seeds, seed):
    data, suffix = seeds[seed], Path(seed).suffix

    @_settings(250)
    @given(MUTATIONS)
    def check(edits):
        path = _write(mutate(data, edits), suffix)
        try:
            _check_image(path)
        finally:
            path.unlink()

    check()


def test_mutated_exif_reads_and_writes_or_gives_input_error(seeds):
    """Edits only inside the EXIF block: the picture stays decodable, the metadata parser is stressed."""
    data = seeds["seed_gps.jpg"]
    start, end = _app1(data)

    @_settings(200)
    @given(MUTATIONS)
    def check(edits):
        path = _write(data[:start] + mutate(data[start:end], edits) + data[end:], ".jpg")
        try:
            _check_image(path, write=True)
        finally:
            path.unlink()

    check()


@_settings(60)
@given(st.binary(min_size=0, max_size=2048), st.sampled_from([".jpg", ".png", ".webp", ".tif", ".bmp", ".gif"]))
def test_random_bytes_as_image(data, suffix):
    path = _write(data, suffix)
    try:
        _check_image(path)
    finally:
        path.unlink()


def test_read_image_agrees_with_load_picture(seeds):
    path = _write(seeds["seed.jpg"], ".jpg")
    try:
        assert np.array_equal(read_image(path), load_picture(path).bgr)
    finally:
        path.unlink()


# ---------------------------------------------------------------- videos


def _check_video(path: Path) -> None:
    try:
        with hang_guard():
            info = probe_video(path)
            assert info.width > 0 and info.height > 0
            count = 0
            with VideoReader(path, threads=1) as reader:
                for frame in reader:
                    assert frame.image.shape == (reader.info.height, reader.info.width, 3)
                    assert frame.image.dtype == np.uint8
                    count += 1
                    assert count < 10_000
    except InputError as exc:
        message = str(exc)
        assert message and "\n" not in message and str(path) in message


@pytest.mark.parametrize("seed", ["seed.mp4", "seed_fast.mp4", "seed.mkv"])
def test_mutated_videos_give_frames_or_input_error(seeds, seed):
    data, suffix = seeds[seed], Path(seed).suffix

    @_settings(80)
    @given(MUTATIONS)
    def check(edits):
        path = _write(mutate(data, edits), suffix)
        try:
            _check_video(path)
        finally:
            path.unlink()

    check()


@_settings(30)
@given(st.binary(min_size=1, max_size=4096), st.sampled_from([".mp4", ".mkv", ".avi", ".ts", ".mov"]))
def test_random_bytes_as_video(data, suffix):
    path = _write(data, suffix)
    try:
        _check_video(path)
    finally:
        path.unlink()
