"""The video encoder set-up of every output: files, previews, recordings and live streams.

One function so that the codec, pixel format, time base, colour tags, HDR metadata and thread
count are set the same way everywhere; a mode only says what differs (quality by CRF for files, a
bitrate cap, fixed keyframes and no B-frames for live).

Codecs: ``h264`` (libx264: 8-bit High, or High 10 for a 10-bit source) and ``hevc`` (libx265:
Main or Main 10). A 10-bit source defaults to HEVC Main 10, which phones (where such clips come
from) decode in hardware; H.264 High 10 encodes faster but most phones and browsers cannot play
it. An 8-bit source defaults to H.264, the fastest and the most widely played.
"""
from __future__ import annotations

from fractions import Fraction

import av

from .colour import ColorTags
from .hdr import HdrMetadata

#: x264/x265 presets, fastest first (``--preset`` choices; both encoders use the same names).
X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)
#: ``--codec`` choices and their encoders.
ENCODERS = {"h264": "libx264", "hevc": "libx265"}
#: Pictures above this many pixels (beyond 1080p) get a short encoder look-ahead: x265 holds about
#: 0.1 GB per look-ahead frame of 10-bit 4K. Plain 4K 10-bit transcodes at preset veryfast on 2
#: cores: x265 (look-ahead 15, 4 B-frames) peaked at 2.2 GB at 3.3 fps, with 3 and 1 at 1.3 GB and
#: 4.1 fps; x264 (look-ahead 10) at 1.33 GB and 7.5 fps, with 5 at 1.10 GB and 9.6 fps.
LARGE_PICTURE = 1920 * 1088
LARGE_PARAMS = {"libx265": {"rc-lookahead": "3", "bframes": "1"}, "libx264": {"rc-lookahead": "5"}}


def default_codec(colour: ColorTags) -> str:
    """HEVC for a 10-bit source (Main 10 plays on phones), H.264 for 8 bits."""
    return "hevc" if colour.bits > 8 else "h264"


def add_video_stream(
    container: av.container.OutputContainer,
    *,
    width: int,
    height: int,
    rate: Fraction | int,
    time_base: Fraction,
    colour: ColorTags,
    options: dict[str, str],
    codec: str = "h264",
    threads: int = 0,
    bit_rate: int | None = None,
    keyint: int | None = None,
    hdr: HdrMetadata | None = None,
) -> av.video.stream.VideoStream:
    """Add a 4:2:0 stream (8 or 10 bits, per ``colour.bits``) to ``container``.

    Args:
        width, height: coded size (even).
        rate: nominal frame rate.
        time_base: the stream's and the encoder's time base (every pts is in it).
        colour: depth, range, matrix, primaries and transfer written into the stream's VUI.
        options: encoder options (``crf``/``preset`` for files; preset, tune, x264-params,
            maxrate and bufsize for live).
        codec: a key of :data:`ENCODERS`.
        threads: encoder threads, 0 = automatic.
        bit_rate: target bitrate in bit/s (live), None for quality-based files.
        keyint: a keyframe exactly every ``keyint`` frames and no B-frames (live), None for the
            encoder's choice.
        hdr: mastering display and light level to write as SEI, None for none.
    """
    encoder = ENCODERS[codec]
    options = dict(options)
    params = {"log-level": "error"} if encoder == "libx265" else {}
    if keyint is None and width * height > LARGE_PICTURE:  # files; live has no look-ahead (zerolatency)
        params.update(LARGE_PARAMS[encoder])
    if hdr is not None:
        params.update(hdr.encoder_params(encoder))
    if params:
        key = "x265-params" if encoder == "libx265" else "x264-params"
        given = options.get(key)
        options[key] = ":".join(([given] if given else []) + [f"{k}={v}" for k, v in params.items()])
    stream = container.add_stream(encoder, rate=rate, options=options)
    stream.width, stream.height = width, height
    stream.pix_fmt = colour.pix_fmt
    stream.time_base = time_base
    context = stream.codec_context
    context.time_base = time_base
    context.thread_count = threads
    if encoder == "libx265" and container.format.name.split(",")[0] in ("mp4", "mov"):
        context.codec_tag = "hvc1"  # Apple players (QuickTime, iOS Photos) refuse HEVC tagged hev1
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
