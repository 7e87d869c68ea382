"""Hide faces in a frame, in place: a feathered head ellipse per face, drawn in the chosen style."""
from __future__ import annotations

import cv2
import numpy as np

from ..settings import RedactSettings, Style
from .masks import ellipse_alpha, ellipse_window, head_ellipses
from .styles import Redactor, redactor_for

__all__ = ["redact", "redact_whole", "Redactor", "head_ellipses"]


def redact(image: np.ndarray, xyxy: np.ndarray, settings: RedactSettings = RedactSettings()) -> None:
    """Hide every box of ``xyxy`` in ``image`` (modified in place).

    Args:
        image: (h, w, 3) uint8 BGR frame, writable.
        xyxy: (n, 4) boxes in the frame's pixels (faces to hide; enrolled faces must not be here).
        settings: style, head scale and feather.
    """
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    if not len(xyxy):
        return
    redactor = redactor_for(settings.style)
    frame_shape = image.shape[:2]
    for ellipse in head_ellipses(xyxy, settings.head_scale):
        window = ellipse_window(ellipse, settings.feather, frame_shape)
        if window is None:
            continue
        x0, y0, x1, y1 = window
        region = image[y0:y1, x0:x1]
        alpha = ellipse_alpha(region.shape[:2], ellipse, settings.feather, origin=(x0, y0))
        hidden = redactor.hide(region, face_size=float(2 * ellipse[2] / settings.head_scale))
        image[y0:y1, x0:x1] = cv2.blendLinear(region, hidden, 1.0 - alpha, alpha)


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
