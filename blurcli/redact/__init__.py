"""Hide faces in a frame, in place: a feathered head ellipse per face, drawn in the chosen style.

The same mask and style are drawn on a BGR picture (:func:`redact`) or straight into the Y, U and
V planes of a decoded frame (:func:`redact_planes`): blurring, resampling and blending are linear,
so doing them per plane hides the same way without turning the whole frame into BGR and back, and
every pixel outside the masks keeps its exact value.

A kept face is left whole: a hidden neighbour's head mask (1.8x its box) stops at the box of a
face that is kept (an enrolled person), except inside the hidden face's own box, which is always
covered. On a crowded selfie the kept face's detail had fallen to 0.79 under a neighbour's mask.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..settings import RedactSettings, Style
from .masks import ellipse_alpha, ellipse_window, head_ellipses
from .styles import Redactor, redactor_for

__all__ = ["redact", "redact_frame", "redact_planes", "redact_whole", "Redactor", "head_ellipses"]


def redact(
    image: np.ndarray, xyxy: np.ndarray, settings: RedactSettings = RedactSettings(), *, keep: np.ndarray | None = None
) -> None:
    """Hide every box of ``xyxy`` in ``image`` (modified in place).

    Args:
        image: (h, w, 3) uint8 BGR frame, writable.
        xyxy: (n, 4) boxes in the frame's pixels (faces to hide; enrolled faces must not be here).
        settings: style, head scale and feather.
        keep: (k, 4) boxes of kept faces: no mask reaches into them beyond the hidden face's own box.
    """
    _redact_plane(image, xyxy, settings, pixel=1.0, black=0, keep=keep)


def redact_frame(
    frame, xyxy: np.ndarray, settings: RedactSettings = RedactSettings(), *, keep: np.ndarray | None = None
) -> None:
    """Hide every box in a decoded video frame: in its YUV planes while it has them, else in its BGR image.

    Args:
        frame: a :class:`~blurcli.media.video_io.VideoFrame`.
        xyxy: (n, 4) boxes in upright pixels.
        keep: (k, 4) upright boxes of kept faces (see :func:`redact`).
    """
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    if not len(xyxy):
        return
    if frame.has_planes:
        full_range = frame.full_range
        kept = None if keep is None else frame.coded_boxes(keep)
        redact_planes(
            frame.planes(), frame.coded_boxes(xyxy), settings, full_range=full_range, keep=kept, bits=frame.bits
        )
    else:
        redact(frame.image, xyxy, settings, keep=keep)


def redact_planes(
    planes: list[np.ndarray],
    xyxy: np.ndarray,
    settings: RedactSettings,
    *,
    full_range: bool,
    keep: np.ndarray | None = None,
    bits: int = 8,
) -> None:
    """Hide every box in the Y, U and V planes of a 4:2:0 frame (modified in place).

    Args:
        planes: the (h, w) Y plane and the (h/2, w/2) U and V planes, writable views (uint8, or
            uint16 for 10 bits).
        xyxy: (n, 4) boxes in the Y plane's pixels.
        settings: style, head scale and feather.
        full_range: the planes hold full-range values (black luma is 0, else 16).
        keep: (k, 4) boxes of kept faces in the Y plane's pixels (see :func:`redact`).
        bits: bits per sample; black and grey scale with it (16 and 128 become 64 and 512).
    """
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    if not len(xyxy):
        return
    keep = None if keep is None else np.asarray(keep, np.float32).reshape(-1, 4)
    y, u, v = planes
    scale = 1 << (bits - 8)
    _redact_plane(y, xyxy, settings, pixel=1.0, black=0 if full_range else 16 * scale, keep=keep)
    for chroma in (u, v):
        _redact_plane(
            chroma, xyxy * 0.5, settings, pixel=0.5, black=128 * scale, keep=None if keep is None else keep * 0.5
        )


def _redact_plane(
    image: np.ndarray, xyxy: np.ndarray, settings: RedactSettings, *, pixel: float, black: int, keep=None
) -> None:
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    if not len(xyxy):
        return
    keep = np.zeros((0, 4), np.float32) if keep is None else np.asarray(keep, np.float32).reshape(-1, 4)
    redactor = redactor_for(settings.style)
    frame_shape = image.shape[:2]
    for box, ellipse in zip(xyxy, head_ellipses(xyxy, settings.head_scale)):
        window = ellipse_window(ellipse, settings.feather, frame_shape)
        if window is None:
            continue
        x0, y0, x1, y1 = window
        region = image[y0:y1, x0:x1]
        alpha = ellipse_alpha(region.shape[:2], ellipse, settings.feather, origin=(x0, y0))
        if len(keep):
            _spare_kept_faces(alpha, (x0, y0), box, keep)
        face_size = float(2 * ellipse[2] / settings.head_scale)
        hidden = redactor.hide(region, face_size=face_size, pixel=pixel, black=black)
        image[y0:y1, x0:x1] = _blend(region, hidden, alpha)


def _blend(region: np.ndarray, hidden: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``region`` * (1 - alpha) + ``hidden`` * alpha, in the planes' own dtype (cv2's blend is 8-bit only)."""
    if region.dtype == np.uint8:
        return cv2.blendLinear(region, hidden, 1.0 - alpha, alpha)
    mixed = cv2.blendLinear(region.astype(np.float32), hidden.astype(np.float32), 1.0 - alpha, alpha)
    return np.rint(mixed).astype(region.dtype)


def _spare_kept_faces(alpha: np.ndarray, origin: tuple[int, int], own: np.ndarray, keep: np.ndarray) -> None:
    """Zero ``alpha`` (a window at ``origin``) inside every kept box, except inside the hidden face's ``own`` box."""
    own_mask = None
    for kept in keep:
        rows, cols = _pixels_of(kept, origin, alpha.shape)
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        if own_mask is None:
            own_mask = np.zeros_like(alpha, bool)
            own_mask[_pixels_of(own, origin, alpha.shape)] = True
        patch = alpha[rows, cols]
        patch[~own_mask[rows, cols]] = 0.0


def _pixels_of(box: np.ndarray, origin: tuple[int, int], shape: tuple[int, int]) -> tuple[slice, slice]:
    """Row and column slices of a window (at ``origin``, of ``shape``) touched by ``box``, rounded outwards."""
    ox, oy = origin
    h, w = shape
    x0, y0 = max(int(np.floor(box[0])) - ox, 0), max(int(np.floor(box[1])) - oy, 0)
    x1, y1 = min(int(np.ceil(box[2])) - ox, w), min(int(np.ceil(box[3])) - oy, h)
    return slice(y0, y1), slice(x0, x1)


def redact_whole(image: np.ndarray, settings: RedactSettings = RedactSettings()) -> None:
    """Hide the entire frame in place: the fail-closed fallback when detection cannot be trusted.

    Used when detection is late, i.e. when the machine is already short of CPU, so it is a 4x3
    wash of the frame's colours (1.4 ms at 720p, against ~10 ms for a style's whole-frame blur),
    or black for ``solid``. With 4x3 samples the reference scorer finds no detail left at any
    scale (16x9 still kept 0.47 correlation over half a frame).
    """
    if settings.style == Style.solid:
        image[:] = 0
        return
    h, w = image.shape[:2]
    small = cv2.resize(image, (4, 3), interpolation=cv2.INTER_AREA)
    image[:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
