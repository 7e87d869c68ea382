"""Phone HDR: a 10-bit HLG HEVC clip comes out 10-bit, tagged like the input, HDR metadata kept.

The clip is what an iPhone records, made here with PyAV: HEVC Main 10 in BT.2020 with the HLG
transfer, stored sideways with a display matrix, 60 fps, two audio tracks, a timecode data track,
a mastering display and light level SEI. The picture is the shared ``two_people.jpg`` (Obama,
enrolled, left; Biden right) with a flat colour patch in one corner. The output must keep Obama
sharp, hide Biden, keep every 10-bit tag, the patch's colour, the metadata, the rotation, every
frame and both audio tracks byte for byte.
"""
from __future__ import annotations

import json
import subprocess

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from blurcli._cli import app
from blurcli.media.hdr import read_hdr
from tests.helpers import scorer
from tests.media_factory import make_clip
from tests.test_video_io import audio_hashes, video_times

runner = CliRunner()

OBAMA = [235, 29, 177, 177]  # identity/labels.json "mixed", two_people.jpg (x, y, w, h)
BIDEN = [786, 65, 169, 169]
PATCH = (slice(560, 640), slice(20, 100))  # rows, columns of the flat patch (upright)
PATCH_BGR = (40, 160, 220)
HLG = (9, 18, 9, 1)  # BT.2020 primaries, ARIB STD-B67 (HLG), BT.2020 NCL matrix, limited range
MASTERING = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
HDR_PARAMS = f"master-display={MASTERING}:max-cll=1000,400"


def blurcli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def phone_clip(data_dir, tmp_path_factory):
    """(picture, clip path, gallery path)."""
    pytest.importorskip("imageio_ffmpeg")
    import imageio_ffmpeg

    root = tmp_path_factory.mktemp("hdr")
    picture = cv2.imread(str(data_dir / "identity" / "mixed" / "two_people.jpg"))[:660]
    picture[PATCH] = PATCH_BGR
    height, width = picture.shape[:2]
    bare = make_clip(
        root / "bare.mp4", frames=60, size=(width, height), fps=60, rotation=90, audio=2, codec="libx265",
        pix_fmt="yuv420p10le", colour=HLG, encoder_params=HDR_PARAMS, image_fn=lambda i: picture,
    )
    clip = root / "phone.mov"
    subprocess.run(  # a QuickTime timecode track beside picture and sound, as phones write
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(bare), "-map", "0", "-c", "copy",
         "-timecode", "01:00:00:00", str(clip)],
        check=True, timeout=60,
    )
    with av.open(str(clip)) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "audio", "data", "video"]
    gallery = root / "gallery.json"
    obama = data_dir / "identity" / "obama"
    result = blurcli("enroll", obama / "obama.jpg", obama / "obama2.jpg", "--name", "obama", "--gallery", gallery)
    assert result.exit_code == 0, result.output
    return picture, clip, gallery


def _first(path):
    """(codec context facts, first decoded frame) of a file's video stream."""
    container = av.open(str(path))
    stream = container.streams.video[0]
    frame = next(container.decode(stream))
    context = stream.codec_context
    facts = dict(
        codec=context.name, profile=context.profile, pix_fmt=context.pix_fmt, tag=context.codec_tag,
        tags=(frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range),
        rotation=frame.rotation, rate=stream.average_rate, hdr=read_hdr(frame),
    )
    planes = [np.frombuffer(p, np.uint16).reshape(p.height, -1)[:, : p.width].astype(int) for p in frame.planes]
    image = frame.to_ndarray(format="bgr24")
    container.close()
    return facts, planes, image


def _patch_yuv(planes) -> np.ndarray:
    """Mean 10-bit Y, U, V of the flat patch (the clip is stored turned: rotation 90)."""
    y = np.rot90(planes[0], 1)  # stored -> upright for a display rotation of 90 (counter-clockwise)
    u, v = (np.rot90(p, 1) for p in planes[1:])
    rows, cols = PATCH
    half = (slice(rows.start // 2 + 2, rows.stop // 2 - 2), slice(cols.start // 2 + 2, cols.stop // 2 - 2))
    inner = (slice(rows.start + 4, rows.stop - 4), slice(cols.start + 4, cols.stop - 4))
    return np.array([y[inner].mean(), u[half].mean(), v[half].mean()])


def _upright(image: np.ndarray) -> np.ndarray:
    return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)


@pytest.mark.parametrize(
    "codec, expect",
    [("auto", ("hevc", "Main 10", "hvc1")), ("h264", ("h264", "High 10", "avc1"))],
)
def test_a_10_bit_hlg_phone_clip_comes_out_10_bit_tagged_like_the_input(phone_clip, data_dir, tmp_path, codec, expect):
    picture, clip, gallery = phone_clip
    out = tmp_path / "out.mov"
    report = tmp_path / "report.json"
    result = blurcli("video", clip, out, "--gallery", gallery, "--codec", codec, "--report", report)
    assert result.exit_code == 0, result.output

    before, before_planes, _ = _first(clip)
    after, after_planes, image = _first(out)
    assert (after["codec"], after["profile"], after["tag"]) == expect
    assert after["pix_fmt"] == before["pix_fmt"] == "yuv420p10le"
    assert after["tags"] == before["tags"] == HLG  # primaries, transfer, matrix and range agree
    assert after["rotation"] == before["rotation"] == 90 and after["rate"] == 60
    hdr = after["hdr"]
    assert hdr is not None and hdr == before["hdr"]
    assert hdr.master_display() == MASTERING and hdr.light_level == (1000, 400)

    # The 10 bits are real (not 8-bit values shifted up) and the patch keeps its colour.
    luma = after_planes[0]
    assert np.mean(luma % 4 != 0) > 0.5
    assert np.abs(_patch_yuv(after_planes) - _patch_yuv(before_planes)).max() <= 3, (
        _patch_yuv(before_planes), _patch_yuv(after_planes))

    # Every frame, both audio tracks byte for byte; the timecode track is left out on purpose.
    assert video_times(out) == video_times(clip)
    hashes = audio_hashes(clip)
    assert len(hashes) == 2 and audio_hashes(out) == hashes
    with av.open(str(out)) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "audio", "video"]

    # Obama (enrolled) stays sharp, Biden is hidden.
    redaction = scorer(data_dir)
    (_, obama), (_, biden) = redaction.score_image(
        _upright(_first(clip)[2]), _upright(image), [OBAMA, BIDEN]
    )
    assert obama > redaction.KEPT and biden < redaction.HIDDEN, (obama, biden)
    decisions = sorted((t["identity"] or "", t["action"]) for t in json.loads(report.read_text())["tracks"])
    assert decisions == [("", "hidden"), ("obama", "kept")]


def test_an_8_bit_sdr_clip_stays_8_bit_h264_unless_hevc_is_asked_for(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=8, size=(128, 96), colour=(1, 1, 1, 1))
    for codec, expect in (("auto", ("h264", "yuv420p")), ("hevc", ("hevc", "yuv420p"))):
        out = tmp_path / f"{codec}.mp4"
        result = blurcli("video", src, out, "--codec", codec)
        assert result.exit_code == 0, result.output
        with av.open(str(out)) as container:
            context = container.streams.video[0].codec_context
            frame = next(container.decode(video=0))
            assert (context.name, context.pix_fmt) == expect
            assert (frame.color_primaries, frame.color_trc, frame.colorspace) == (1, 1, 1)
        assert video_times(out) == video_times(src)


def test_an_unknown_codec_is_a_usage_error(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=4)
    result = blurcli("video", src, tmp_path / "out.mp4", "--codec", "vp9")
    assert result.exit_code == 2
    assert "unknown --codec 'vp9'" in result.output
    assert not (tmp_path / "out.mp4").exists()


def test_a_4k_portrait_phone_clip_comes_out_upright_with_every_face_hidden(data_dir, tmp_path):
    """4K HEVC stored landscape with a 90 degree display matrix, as phones record portrait video: the
    output keeps the matrix (players show it upright) and hides both faces where a player shows them."""
    from blurcli.media.video_io import VideoReader

    scene = cv2.imread(str(data_dir / "identity" / "mixed" / "two_people.jpg"))[:660]
    scale = 2160 / scene.shape[1]
    picture = np.full((3840, 2160, 3), 90, np.uint8)  # upright portrait
    band = cv2.resize(scene, (2160, round(660 * scale) // 2 * 2), interpolation=cv2.INTER_CUBIC)
    top = 1200
    picture[top : top + band.shape[0]] = band
    faces = [[round(x * scale), round(y * scale) + top, round(w * scale), round(h * scale)] for x, y, w, h in (OBAMA, BIDEN)]
    src = make_clip(tmp_path / "portrait.mp4", frames=6, size=(2160, 3840), fps=30, rotation=90, codec="libx265",
                    audio=True, image_fn=lambda i: picture)
    out = tmp_path / "out.mp4"
    result = blurcli("video", src, out)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (3840, 2160)  # stored as recorded
        assert next(container.decode(stream)).rotation == 90
    redaction = scorer(data_dir)
    with VideoReader(src) as before, VideoReader(out) as after:
        assert (after.info.width, after.info.height) == (2160, 3840)  # what a player shows
        for a, b in zip(before, after):
            scores = [c for _, c in redaction.score_image(a.image, b.image, faces)]
            assert all(c is not None and c < redaction.HIDDEN for c in scores), scores
    assert audio_hashes(out) == audio_hashes(src)
