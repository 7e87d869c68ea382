"""``blurcli video`` against broken and hostile input (issue 5, items 1 and 2).

Same contract as photos: the documented exit code, one line on stderr, the input unchanged and
nothing new in the output folder (the encoder writes a hidden temporary file: it must be gone).
"""
from __future__ import annotations

import os
import shutil
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from blurcli.media.video_io import VideoReader
from tests.hardening_support import (
    assert_clean_failure,
    cli,
    deny_reading,
    deny_writing,
    leftovers,
    run_blurcli,
    snapshot,
    text_file,
)
from tests.helpers import region_correlation
from tests.media_factory import corrupt, make_clip, truncate

#: The video scene: two_people.jpg squeezed to 384x224 (faces ~60 px), boxes [x, y, w, h].
SIZE = (384, 224)
_SX, _SY = 384 / 1126, 224 / 661
FACES = [(235 * _SX, 29 * _SY, 177 * _SX, 177 * _SY), (786 * _SX, 65 * _SY, 169 * _SX, 169 * _SY)]


@pytest.fixture(scope="module")
def picture(data_dir) -> np.ndarray:
    image = cv2.imread(str(data_dir / "identity" / "mixed" / "two_people.jpg"))
    return cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, picture):
    """Good and broken clips, built once: name -> path."""
    folder = tmp_path_factory.mktemp("clips")
    face = make_clip(folder / "face.mp4", frames=12, size=SIZE, audio=True, image_fn=lambda i: picture)
    noisy = make_clip(folder / "noisy.mp4", frames=30, size=(96, 64), faststart=True,
                      image_fn=lambda i: np.random.default_rng(i).integers(0, 256, (64, 96, 3), np.uint8))
    no_moov = make_clip(folder / "no_moov.mp4", frames=30, size=(96, 64))
    truncate(no_moov, no_moov.stat().st_size // 2)
    cut = truncate(shutil.copy(noisy, folder / "cut_in_data.mp4"), int(noisy.stat().st_size * 0.6))
    damaged = corrupt(shutil.copy(noisy, folder / "damaged.mp4"), at=0.5, nbytes=3000)
    audio_only = folder / "audio_only.mp4"
    with av.open(str(audio_only), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=44100, layout="mono")
        for i in range(20):
            tone = (np.sin(np.arange(1024) * 0.05) * 8000).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 44100, i * 1024, Fraction(1, 44100)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return {"face": face, "no_moov": no_moov, "cut_in_data": cut, "damaged": damaged, "audio_only": audio_only}


@pytest.fixture
def dirs(tmp_path, clips):
    """tmp/in holds clip.mp4 (two faces, audio); tmp/out is the empty output folder."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    shutil.copy(clips["face"], src / "clip.mp4")
    return src, out


def _copy(name, as_name=None):
    def setup(src, out, mp, clips):
        target = src / (as_name or f"{name}.mp4")
        shutil.copy(clips[name], target)
        return [target, out / "o.mp4"]

    return setup


def _missing(src, out, mp, clips):
    return [src / "missing.mp4", out / "o.mp4"]


def _folder_named_like_a_video(src, out, mp, clips):
    (src / "holiday.mp4").mkdir()
    return [src / "holiday.mp4", out / "o.mp4"]


def _folder_into_a_file(src, out, mp, clips):
    (out / "existing.mp4").write_bytes(b"a previous output")
    return [src, out / "existing.mp4"]


def _report_is_a_folder(src, out, mp, clips):
    (out / "report").mkdir()
    return [src / "clip.mp4", out / "o.mp4", "--report", out / "report"]


def _unreadable(src, out, mp, clips):
    deny_reading(mp, src / "clip.mp4")
    return [src / "clip.mp4", out / "o.mp4"]


def _zero_bytes(src, out, mp, clips):
    (src / "empty.mp4").write_bytes(b"")
    return [src / "empty.mp4", out / "o.mp4"]


def _text_as_mp4(src, out, mp, clips):
    return [text_file(src / "notes.mp4"), out / "o.mp4"]


def _jpeg_as_mp4(src, out, mp, clips):
    """A still picture renamed .mp4 opens in FFmpeg as a one-frame video: it must work or fail cleanly."""
    path = src / "still.mp4"
    cv2.imwrite(str(path.with_suffix(".jpg")), np.zeros((48, 64, 3), np.uint8))
    path.with_suffix(".jpg").rename(path)
    return [path, out / "o.mp4"]


def _output_folder_not_writable(src, out, mp, clips):
    deny_writing(mp, out)
    return [src / "clip.mp4", out / "o.mp4"]


def _output_folder_refuses_writes(src, out, mp, clips):
    deny_writing(mp, out, access_says_yes=True)
    return [src / "clip.mp4", out / "o.mp4"]


def _folder_mode_output_not_writable(src, out, mp, clips):
    deny_writing(mp, out)
    return [src, out / "mirror"]


def _out_is_in(src, out, mp, clips):
    return [src / "clip.mp4", src / "clip.mp4"]


def _out_is_a_hard_link_to_in(src, out, mp, clips):
    os.link(src / "clip.mp4", src / "link.mp4")
    return [src / "clip.mp4", src / "link.mp4"]


def _out_is_a_symlink_to_in(src, out, mp, clips):
    (src / "alias.mp4").symlink_to(src / "clip.mp4")
    return [src / "clip.mp4", src / "alias.mp4"]


def _out_folder_is_in_folder(src, out, mp, clips):
    return [src, src]


def _report_is_the_input(src, out, mp, clips):
    return [src / "clip.mp4", out / "o.mp4", "--report", src / "clip.mp4"]


def _corrupted_gallery(src, out, mp, clips):
    (src / "gallery.json").write_bytes(b"\x00\x01 not json")
    (src / "gallery.json").chmod(0o600)  # a private file (a shared one adds a warning line)
    return [src / "clip.mp4", out / "o.mp4", "--gallery", src / "gallery.json"]


def _output_extension(suffix):
    def setup(src, out, mp, clips):
        return [src / "clip.mp4", out / f"o{suffix}"]

    return setup


BAD_INPUTS = [
    # id, setup, exit code, message (regex), parser error (one line naming --help)
    ("missing-file", _missing, 3, r"missing\.mp4: no such file", False),
    ("folder-named-like-a-video", _folder_named_like_a_video, 3, r"holiday\.mp4 holds no video files", False),
    ("folder-into-a-file", _folder_into_a_file, 2, r"output must be a folder", False),
    ("report-is-a-folder", _report_is_a_folder, 2, r"--report.*is a directory", True),
    ("unreadable", _unreadable, 3, r"clip\.mp4: cannot be read \(permission denied\)", False),
    ("zero-bytes", _zero_bytes, 3, r"empty\.mp4: file is empty", False),
    ("text-named-mp4", _text_as_mp4, 3, r"notes\.mp4: not a readable video", False),
    ("truncated-no-moov", _copy("no_moov"), 3, r"no_moov\.mp4: not a readable video.*truncated", False),
    ("cut-in-the-middle-of-data", _copy("cut_in_data"), 3, r"cut_in_data\.mp4: file is truncated", False),
    ("damaged-data", _copy("damaged"), 3, r"damaged\.mp4: .*damaged", False),
    ("audio-but-no-video", _copy("audio_only"), 3, r"audio_only\.mp4: has no video stream", False),
    ("output-folder-not-writable", _output_folder_not_writable, 4, r"cannot write in .*out.*permission denied", False),
    ("output-folder-refuses-writes", _output_folder_refuses_writes, 4, r"out: cannot write here \(permission denied\)|cannot write in .*out.*permission denied", False),
    ("folder-mode-output-not-writable", _folder_mode_output_not_writable, 4, r"cannot (create folder|write in) .*mirror.*permission denied", False),
    ("out-is-in", _out_is_in, 2, r"is the input itself", False),
    ("out-is-hard-link-to-in", _out_is_a_hard_link_to_in, 2, r"is the input itself", False),
    ("out-is-symlink-to-in", _out_is_a_symlink_to_in, 2, r"is the input itself", False),
    ("out-folder-is-in-folder", _out_folder_is_in_folder, 2, r"is the input folder", False),
    ("report-is-the-input", _report_is_the_input, 2, r"--report .*clip\.mp4 (is also the input|is an existing file that is not a JSON report)", False),
    ("corrupted-gallery", _corrupted_gallery, 6, r"gallery .*gallery\.json is damaged", False),
    ("avi-output", _output_extension(".avi"), 2, r"cannot write video as '\.avi'.*use one of", False),
    ("unknown-output-extension", _output_extension(".xyz"), 2, r"cannot write video as '\.xyz'.*use one of", False),
    ("no-output-extension", _output_extension(""), 2, r"cannot write video as '\(no extension\)'", False),
]


@pytest.mark.parametrize(
    "setup, code, message, usage", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS]
)
def test_bad_input_fails_cleanly(dirs, clips, monkeypatch, setup, code, message, usage):
    src, out = dirs
    args = setup(src, out, monkeypatch, clips)
    inputs, outputs = snapshot(src), snapshot(out)
    outcome = cli("video", *args)
    monkeypatch.undo()
    assert_clean_failure(outcome, code, message, usage=usage)
    assert snapshot(src) == inputs, "an input was changed"
    assert snapshot(out) == outputs, "something was written to the output folder"
    assert leftovers(src.parent) == []


def test_still_picture_named_mp4_is_one_frame_or_a_clean_error(dirs, monkeypatch, clips):
    src, out = dirs
    args = _jpeg_as_mp4(src, out, monkeypatch, clips)
    outcome = cli("video", *args)
    assert "Traceback" not in outcome.stderr and outcome.exception is None, outcome.stderr
    if outcome.code == 0:
        with VideoReader(out / "o.mp4") as reader:
            assert sum(1 for _ in reader) == 1
    else:
        assert_clean_failure(outcome, 3, r"still\.mp4")
        assert snapshot(out) == {}
    assert leftovers(src.parent) == []


@pytest.mark.parametrize(
    "name, code, message",
    [("text", 3, r"not a readable video"), ("no_moov", 3, r"not a readable video"),
     ("audio_only", 3, r"has no video stream")],
    ids=["text-named-mp4", "truncated-no-moov", "audio-but-no-video"],
)
def test_bad_input_in_a_real_process(dirs, clips, name, code, message):
    src, out = dirs
    path = text_file(src / "text.mp4") if name == "text" else shutil.copy(clips[name], src / f"{name}.mp4")
    inputs = snapshot(src)
    outcome = run_blurcli("video", path, out / "o.mp4", cwd=src.parent)
    assert_clean_failure(outcome, code, message)
    assert outcome.stdout == ""
    assert snapshot(src) == inputs and snapshot(out) == {}


def test_folder_mode_skips_bad_videos_reports_them_and_exits_9(tmp_path, clips, picture, data_dir):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    shutil.copy(clips["face"], src / "a_good.mp4")
    text_file(src / "b_text.mp4")
    shutil.copy(clips["cut_in_data"], src / "sub" / "c_cut.mp4")
    shutil.copy(clips["audio_only"], src / "d_audio.mp4")
    inputs = snapshot(src)

    outcome = cli("video", src, out)

    assert outcome.code == 9, outcome.stderr
    assert "Traceback" not in outcome.stderr and outcome.exception is None
    assert snapshot(src) == inputs
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a_good.mp4"]
    assert leftovers(tmp_path) == []
    with VideoReader(out / "a_good.mp4") as reader:
        frames = [f.image for f in reader]
    assert len(frames) == 12
    for image in frames:
        for box in FACES:
            assert region_correlation(data_dir, picture, image, box) < 0.5
    for name, why in [("b_text.mp4", "not a readable video"), ("c_cut.mp4", "truncated"),
                      ("d_audio.mp4", "no video stream")]:
        assert name in outcome.stderr and why in outcome.stderr, outcome.stderr
    assert "3 of 4" in outcome.stderr
    assert outcome.lines()[-1].startswith("error: 3 of 4 videos failed")


def test_disk_full_while_writing_keeps_the_previous_output(dirs, monkeypatch):
    """ENOSPC in the middle of pass 2: exit 4, the previous output is untouched, no temp file."""
    import errno

    from blurcli.media import video_io

    src, out = dirs
    previous = make_clip(out / "o.mp4", frames=2)
    before = previous.read_bytes()
    real_mux = video_io.VideoWriter._mux_video
    calls = []

    def mux(self, packet):
        calls.append(1)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_mux(self, packet)

    monkeypatch.setattr(video_io.VideoWriter, "_mux_video", mux)
    outcome = cli("video", src / "clip.mp4", out / "o.mp4")
    monkeypatch.undo()
    assert_clean_failure(outcome, 4, r"o\.mp4: cannot (write|finish writing).*No space left on device")
    assert (out / "o.mp4").read_bytes() == before
    assert leftovers(out) == [] and sorted(os.listdir(out)) == ["o.mp4"]
