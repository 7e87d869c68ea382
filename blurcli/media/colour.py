"""Colour between PyAV frames and BGR arrays: the one place YUV becomes BGR and back, in every mode.

cv2.cvtColor on the raw I420 planes is ~10x faster than PyAV's ``to_ndarray(format="bgr24")``
(0.7 ms against 10.6 ms per 1080p frame, see DESIGN.md). Both directions use OpenCV's BT.601
limited-range matrix, so YUV -> BGR -> YUV returns the input's YUV values and the output keeps the
input's colour tags (a BT.709 clip stays BT.709 on screen).

Full-range 4:2:0 (``yuvj420p``: MJPEG webcams, some phones) takes the same fast path: its planes
are mapped to limited range by a lookup table before cv2's conversion and back after it, so a
full-range source keeps its levels (Y 38 stays 38 within 1) instead of being read as limited range
and stretched (38 -> 26, 234 -> 254: the bug the live path had). Files keep the source's range;
a live stream is always sent limited range (what ingest servers and players expect), which shows
the same picture.

10-bit 4:2:0 (``yuv420p10le``: phone HDR, HLG or PQ) is never reduced to 8 bits on its way to a
file: pass 2 redacts its own 10-bit planes and the output carries the input's tags. Only the
detector's copy is 8-bit BGR, made by swscale with the input's own matrix (BT.2020), and a frame
that had to become BGR goes back through swscale with that same matrix, so both paths agree.
"""
from __future__ import annotations

from dataclasses import dataclass

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation

LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG
FULL_RANGE = 2  # AVCOL_RANGE_JPEG
_UNSPECIFIED = 2  # AVCOL_SPC / AVCOL_PRI / AVCOL_TRC _UNSPECIFIED
BT601 = 6  # AVCOL_SPC_SMPTE170M (and PRI/TRC), the matrix of cv2's YUV conversions
_PADDING = 64  # AV_INPUT_BUFFER_PADDING_SIZE
#: 4:2:0 8-bit formats the fast path reads (yuvj420p is yuv420p in full range).
_FAST_FORMATS = ("yuv420p", "yuvj420p")
#: Planar 4:2:0 formats whose planes pass 2 redacts in place, by bit depth.
PLANE_FORMATS = {8: "yuv420p", 10: "yuv420p10le"}
#: Matrices swscale can convert with (AVColorSpace values): BT.709, FCC, BT.470BG, BT.601,
#: SMPTE 240M, BT.2020 non-constant luminance.
_SWSCALE_MATRICES = (1, 4, 5, 6, 7, 9)
#: swscale flags that make YUV -> BGR -> YUV return the planes (10-bit luma within 2 of 1023):
#: its default (bilinear, fast rounding) darkened 10-bit luma by 4.6 steps on average.
_TO_BGR = Interpolation.POINT | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_FROM_BGR = Interpolation.POINT | Interpolation.ACCURATE_RND


def _lut(scale: float, offset: float, centre: float) -> np.ndarray:
    values = np.round((np.arange(256, dtype=np.float64) - centre) * scale + offset)
    return np.clip(values, 0, 255).astype(np.uint8)


#: Full range -> limited range (luma 0-255 -> 16-235, chroma 0-255 -> 16-240 around 128), and back.
_Y_TO_LIMITED = _lut(219 / 255, 16, 0)
_C_TO_LIMITED = _lut(224 / 255, 128, 128)
_Y_TO_FULL = _lut(255 / 219, 0, 16)
_C_TO_FULL = _lut(255 / 224, 128, 128)


@dataclass(frozen=True)
class ColorTags:
    """Colour description and bit depth of the output picture (FFmpeg enum values).

    AVColorRange, AVColorSpace, AVColorPrimaries, AVColorTransferCharacteristic and 8 or 10 bits
    per sample; the defaults (limited range, rest unspecified, 8 bits) describe what
    :func:`bgr_to_frame` produces.
    """

    range: int = LIMITED_RANGE
    space: int = _UNSPECIFIED
    primaries: int = _UNSPECIFIED
    trc: int = _UNSPECIFIED
    bits: int = 8

    @property
    def pix_fmt(self) -> str:
        """The encoder's pixel format: 4:2:0 at this depth."""
        return PLANE_FORMATS[self.bits]

    def eight_bit(self) -> "ColorTags":
        """Tags for an 8-bit re-encode of BGR taken from these (previews): cv2's BT.601 matrix."""
        if self.bits == 8:
            return self
        return ColorTags(LIMITED_RANGE, BT601, self.primaries, self.trc, 8)

    @property
    def full_range(self) -> bool:
        return self.range == FULL_RANGE


#: What a live stream is tagged with: BT.601 limited range, cv2's own conversion.
STREAM_TAGS = ColorTags(LIMITED_RANGE, BT601, BT601, BT601)


def is_full_range(frame: av.VideoFrame) -> bool:
    """True for full-range frames: tagged so, or a ``yuvj`` format (full range by definition)."""
    return frame.color_range == FULL_RANGE or frame.format.name.startswith("yuvj")


def _fast(frame: av.VideoFrame) -> bool:
    return frame.format.name in _FAST_FORMATS and not (frame.width | frame.height) & 1


def bit_depth(frame: av.VideoFrame) -> int:
    """8 or 10: the depth a file made from ``frame``'s stream keeps (12-bit sources get 10)."""
    return 10 if max(component.bits for component in frame.format.components) > 8 else 8


def has_planes(frame: av.VideoFrame) -> bool:
    """True when pass 2 can redact ``frame``'s own planes: 4:2:0, 8 or 10 bits, even size."""
    return frame.format.name in PLANE_FORMATS.values() and not (frame.width | frame.height) & 1


def output_color(frame: av.VideoFrame) -> ColorTags:
    """Tags that make our re-encode of ``frame``'s stream look like the input in a player.

    On the fast path YUV -> BGR -> YUV uses the same matrix both ways, so the YUV values (and the
    range) come back and the input's tags stay right. On the swscale path the BGR is true colour
    decoded with the input's own matrix, and we re-encode it with BT.601 limited range, so that is
    what gets tagged. A deeper source keeps 10 bits: its planes are redacted as they are (tags
    unchanged), and a frame that became BGR is converted back with the input's matrix where
    swscale has it.
    """
    rng = FULL_RANGE if is_full_range(frame) else LIMITED_RANGE
    primaries, trc = int(frame.color_primaries), int(frame.color_trc)
    if bit_depth(frame) > 8:
        space = int(frame.colorspace)
        return ColorTags(rng, space if space in _SWSCALE_MATRICES else BT601, primaries, trc, 10)
    if _fast(frame):
        return ColorTags(rng, int(frame.colorspace), primaries, trc)
    return ColorTags(LIMITED_RANGE, BT601, primaries, trc)


def frame_to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """Convert a decoded frame to a writable (h, w, 3) uint8 BGR array (stored orientation).

    The fast path handles 8-bit 4:2:0 with even sizes, limited or full range (nearly every
    H.264/HEVC file and MJPEG webcam): PyAV's ``to_ndarray()`` packs the three planes (line padding
    dropped) as one (h*3/2, w) I420 array for cv2. Anything else (10 bit, 4:2:2, odd sizes, RGB
    codecs) goes through PyAV/swscale, told the source's range.
    """
    if not _fast(frame):
        full = {"src_color_range": FULL_RANGE} if is_full_range(frame) else {}
        return np.ascontiguousarray(frame.to_ndarray(format="bgr24", interpolation=_TO_BGR, **full))
    i420 = frame.to_ndarray()
    if is_full_range(frame):
        _map_planes(i420, frame.height, _Y_TO_LIMITED, _C_TO_LIMITED)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)


def bgr_to_frame(image: np.ndarray, tags: ColorTags = ColorTags()) -> av.VideoFrame:
    """Convert an even-sized (h, w, 3) uint8 BGR array to a 4:2:0 frame in ``tags``' range and depth.

    ``from_numpy_buffer`` wraps the I420 array without a copy (2.4 ms saved per 1080p frame), but
    PyAV 18.1 computes the height wrongly when it is not a multiple of 4, so those sizes copy.
    10-bit output goes through swscale with ``tags``' matrix, the inverse of :func:`frame_to_bgr`.
    """
    if tags.bits > 8:
        space = tags.space if tags.space in _SWSCALE_MATRICES else BT601
        frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(
            format=tags.pix_fmt, dst_colorspace=space, dst_color_range=tags.range, interpolation=_FROM_BGR
        )
        frame.color_range = tags.range
        return frame
    height, width = image.shape[:2]
    size = height * width * 3 // 2
    # Trailing padding like FFmpeg's own buffers, for SIMD code that reads past the last row.
    i420 = np.empty(size + _PADDING, np.uint8)[:size].reshape(height * 3 // 2, width)
    cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420, dst=i420)
    if tags.full_range:
        _map_planes(i420, height, _Y_TO_FULL, _C_TO_FULL)
    if height % 4 == 0:
        frame = av.VideoFrame.from_numpy_buffer(i420, format="yuv420p")
    else:
        frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
    frame.color_range = tags.range
    return frame


def _map_planes(i420: np.ndarray, height: int, luma: np.ndarray, chroma: np.ndarray) -> None:
    """Apply a range lookup table to a packed (h*3/2, w) I420 array in place."""
    y, uv = i420[:height], i420[height:]
    cv2.LUT(y, luma, dst=y)
    cv2.LUT(uv, chroma, dst=uv)
