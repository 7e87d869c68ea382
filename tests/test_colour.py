"""Levels: a full-range or limited-range source keeps its levels in video files and in streams.

A grey card with a dark and a light patch (no face, so nothing is redacted) goes through
``blurcli video`` and ``blurcli stream``. Files keep the source's range and its exact Y values
(within 2 after re-encoding); a stream is sent limited range, so its Y values are the source's
levels mapped to 16-235, which a player shows as the same picture. Before the one colour module,
the stream read a full-range webcam as limited range and stretched 38/234 to 26/254.
"""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from blurcli._cli import app
from blurcli.media import colour

runner = CliRunner()

W, H, FPS = 320, 240, 30
DARK, LIGHT = 38, 234


def blurcli(*args):
    return runner.invoke(app, [str(a) for a in args])


def _card(fmt: str, dark: int, light: int) -> np.ndarray:
    """(H*3/2, W) I420 planes: left half Y=dark, right half Y=light, neutral chroma."""
    planes = np.full((H * 3 // 2, W), 128, np.uint8)
    planes[:H, : W // 2] = dark
    planes[:H, W // 2 :] = light
    return planes


def _clip(path, codec: str, fmt: str, full: bool, dark: int, light: int, seconds: float = 2.0):
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, fmt
        stream.codec_context.color_range = colour.FULL_RANGE if full else colour.LIMITED_RANGE
        if codec == "mjpeg":
            stream.codec_context.qmax = 2
        else:
            stream.options = {"crf": "4", "preset": "veryfast"}
        for i in range(int(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(_card(fmt, dark, light), format=fmt)
            frame.color_range = stream.codec_context.color_range
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _levels(path) -> tuple[list[tuple[float, float]], bool]:
    """Per frame the mean Y of the two patches (centres only), and whether the stream says full range."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        levels, full = [], False
        for frame in container.decode(stream):
            y = frame.to_ndarray()[:H] if frame.format.name in ("yuv420p", "yuvj420p") else None
            assert y is not None, frame.format.name
            full = colour.is_full_range(frame)
            levels.append((float(y[40:200, 40:120].mean()), float(y[40:200, 200:280].mean())))
    return levels, full


def _limited(v: float) -> float:
    return 16 + v * 219 / 255


SOURCES = {
    "full-range MJPEG (webcam)": ("clip.mkv", "mjpeg", "yuvj420p", True, DARK, LIGHT),
    "full-range H.264 (phone)": ("clip.mp4", "libx264", "yuv420p", True, DARK, LIGHT),
    "limited-range H.264": ("clip.mp4", "libx264", "yuv420p", False, 16, 235),
}


@pytest.mark.parametrize("name", SOURCES)
def test_a_video_keeps_the_sources_range_and_levels(tmp_path, name):
    filename, codec, fmt, full, dark, light = SOURCES[name]
    src = _clip(tmp_path / filename, codec, fmt, full, dark, light)
    (src_dark, src_light), src_full = _levels(src)[0][0], _levels(src)[1]
    assert src_full == full
    out = tmp_path / "out.mp4"
    result = blurcli("video", src, out, "--gallery", tmp_path / "none.json")
    assert result.exit_code == 0, result.output
    levels, out_full = _levels(out)
    assert out_full == full, "the output's range tag differs from the input's"
    assert len(levels) == 2 * FPS
    for d, l in levels:
        assert abs(d - src_dark) <= 2 and abs(l - src_light) <= 2, (d, l, src_dark, src_light)


@pytest.mark.parametrize("name", SOURCES)
def test_a_stream_shows_the_sources_levels(tmp_path, name):
    filename, codec, fmt, full, dark, light = SOURCES[name]
    src = _clip(tmp_path / filename, codec, fmt, full, dark, light, seconds=3.0)
    (src_dark, src_light), _ = _levels(src)[0][0], None
    out = tmp_path / "live.mp4"
    # --fail-open: a frame the detector has not reached in time keeps its picture instead of being
    # hidden whole (there is no face to hide); this test is about levels, not about a busy CPU.
    result = blurcli(
        "stream", src, "--output", out, "--duration", 2, "--no-status", "--fail-open", "--gallery", tmp_path / "none.json"
    )
    assert result.exit_code == 0, result.output
    levels, out_full = _levels(out)
    assert not out_full, "streams are sent limited range"
    want = (_limited(src_dark), _limited(src_light)) if full else (src_dark, src_light)
    shown = levels[len(levels) // 2 :]  # past the start, where frames may be hidden whole
    assert len(shown) >= 20
    for d, l in shown:
        assert abs(d - want[0]) <= 2 and abs(l - want[1]) <= 2, (d, l, want)


def test_fast_conversion_matches_swscale_for_both_ranges():
    for fmt, full in (("yuvj420p", True), ("yuv420p", False)):
        planes = _card(fmt, DARK, LIGHT)
        planes[H:] = np.random.default_rng(0).integers(100, 156, planes[H:].shape)  # some colour
        frame = av.VideoFrame.from_ndarray(planes, format=fmt)
        if full:
            frame.color_range = colour.FULL_RANGE
        fast = colour.frame_to_bgr(frame).astype(int)
        reference = frame.to_ndarray(format="bgr24", **({"src_color_range": 2} if full else {})).astype(int)
        assert np.abs(fast - reference).max() <= 3, fmt
        # YUV -> BGR -> YUV gives the grey card's planes back (colours near the gamut's edge clip).
        card = _card(fmt, DARK, LIGHT)
        grey = av.VideoFrame.from_ndarray(card, format=fmt)
        tags = colour.ColorTags(range=colour.FULL_RANGE if full else colour.LIMITED_RANGE)
        back = colour.bgr_to_frame(colour.frame_to_bgr(grey), tags).to_ndarray()
        assert np.abs(back.astype(int) - card).max() <= 1, fmt


def test_a_10_bit_frame_that_becomes_bgr_goes_back_with_its_own_matrix():
    """A 10-bit frame that had to become BGR (previews, odd sizes) is written back through swscale
    with the input's BT.2020 matrix: the planes return within 8-bit quantisation (4 of 1023), where
    a BT.601 matrix would shift colours by tens of steps (and swscale's default flags darkened luma
    by 4.6 steps)."""
    rng = np.random.default_rng(1)
    y = rng.integers(300, 700, (48, 64), dtype=np.uint16)
    uv = rng.integers(420, 600, (2, 24, 32), dtype=np.uint16)
    frame = av.VideoFrame(64, 48, "yuv420p10le")
    for plane, values in zip(frame.planes, (y, *uv)):
        view = np.frombuffer(plane, np.uint16).reshape(plane.height, -1)
        view[:, : plane.width] = values
    frame.colorspace, frame.color_primaries, frame.color_trc, frame.color_range = 9, 9, 18, colour.LIMITED_RANGE
    tags = colour.output_color(frame)
    assert (tags.bits, tags.pix_fmt, tags.space, tags.trc) == (10, "yuv420p10le", 9, 18)
    back = colour.bgr_to_frame(colour.frame_to_bgr(frame), tags)
    assert back.format.name == "yuv420p10le"
    got = [np.frombuffer(p, np.uint16).reshape(p.height, -1)[:, : p.width].astype(int) for p in back.planes]
    assert np.abs(got[0] - y).max() <= 4 and abs((got[0] - y).mean()) < 0.5
    assert max(np.abs(g - v).mean() for g, v in zip(got[1:], uv)) <= 1
    assert colour.output_color(frame).eight_bit() == colour.ColorTags(colour.LIMITED_RANGE, colour.BT601, 9, 18, 8)
