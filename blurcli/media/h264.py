"""The H.264 encoder set-up of every output: files, previews, recordings and live streams.

One function so that the pixel format, time base, colour tags and thread count are set the same
way everywhere; a mode only says what differs (quality by CRF for files, a bitrate cap, fixed
keyframes and no B-frames for live).
"""
from __future__ import annotations

from fractions import Fraction

import av

from .colour import ColorTags

#: libx264 presets, fastest first (``--preset`` choices).
X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)


def add_h264_stream(
    container: av.container.OutputContainer,
    *,
    width: int,
    height: int,
    rate: Fraction | int,
    time_base: Fraction,
    colour: ColorTags,
    options: dict[str, str],
    threads: int = 0,
    bit_rate: int | None = None,
    keyint: int | None = None,
) -> av.video.stream.VideoStream:
    """Add a libx264 4:2:0 8-bit stream to ``container``.

    Args:
        width, height: coded size (even).
        rate: nominal frame rate.
        time_base: the stream's and the encoder's time base (every pts is in it).
        colour: range, matrix, primaries and transfer written into the stream's VUI.
        options: libx264 options (``crf``/``preset`` for files; preset, tune, x264-params,
            maxrate and bufsize for live).
        threads: encoder threads, 0 = automatic.
        bit_rate: target bitrate in bit/s (live), None for quality-based files.
        keyint: a keyframe exactly every ``keyint`` frames and no B-frames (live), None for the
            encoder's choice.
    """
    stream = container.add_stream("libx264", rate=rate, options=options)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    stream.time_base = time_base
    context = stream.codec_context
    context.time_base = time_base
    context.thread_count = threads
    if bit_rate is not None:
        stream.bit_rate = bit_rate
    if keyint is not None:
        context.gop_size = keyint
        context.max_b_frames = 0
    context.color_range = colour.range
    context.colorspace = colour.space
    context.color_primaries = colour.primaries
    context.color_trc = colour.trc
    return stream
