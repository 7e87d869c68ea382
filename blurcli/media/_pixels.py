"""Picture geometry between stored frames and upright arrays: display rotation and even sizes.

Colour conversion lives in :mod:`blurcli.media.colour`.
"""
from __future__ import annotations

import cv2
import numpy as np

#: cv2 rotation turning the stored (coded) picture upright, by display rotation in
#: counter-clockwise degrees (PyAV ``VideoFrame.rotation`` / FFmpeg display matrix).
_TO_UPRIGHT = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
#: The inverse: upright picture -> stored picture.
_TO_CODED = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def normalise_rotation(degrees: float) -> int:
    """Round a display-matrix angle (any sign) to 0, 90, 180 or 270 counter-clockwise degrees."""
    return int(round(degrees / 90.0)) % 4 * 90


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored picture upright (as players show it).

    Args:
        image: (h, w, 3) picture as stored in the stream.
        rotation: display rotation, 0/90/180/270 counter-clockwise degrees.

    Returns:
        The upright picture; (w, h, 3) for 90/270. The input itself when rotation is 0.
    """
    return cv2.rotate(image, _TO_UPRIGHT[rotation]) if rotation else image


def coded(image: np.ndarray, rotation: int) -> np.ndarray:
    """Inverse of :func:`upright`: turn an upright picture back to the stored orientation."""
    return cv2.rotate(image, _TO_CODED[rotation]) if rotation else image


def coded_boxes(xyxy: np.ndarray, rotation: int, coded_width: int, coded_height: int) -> np.ndarray:
    """Boxes in the upright picture turned into the stored picture's coordinates (see :func:`coded`).

    Args:
        xyxy: (n, 4) x0, y0, x1, y1 in upright pixels.
        rotation: display rotation, 0/90/180/270 counter-clockwise degrees.
        coded_width, coded_height: size of the stored picture.
    """
    b = np.asarray(xyxy, np.float32).reshape(-1, 4)
    if not rotation:
        return b
    x0, y0, x1, y1 = b.T
    if rotation == 180:
        out = [coded_width - x1, coded_height - y1, coded_width - x0, coded_height - y0]
    elif rotation == 90:  # the upright picture is the stored one turned counter-clockwise
        out = [coded_width - y1, x0, coded_width - y0, x1]
    else:  # 270
        out = [y0, coded_height - x1, y1, coded_height - x0]
    return np.stack(out, axis=1).astype(np.float32)


def pad_to_even(image: np.ndarray) -> np.ndarray:
    """Repeat the last column/row once where a side is odd (4:2:0 H.264 needs even sides).

    Padding instead of cropping keeps every source pixel (a face at the edge stays exactly as
    redacted); the output is then 1 px wider/taller than the input on that side.
    """
    height, width = image.shape[:2]
    pad_bottom, pad_right = height & 1, width & 1
    if not (pad_bottom or pad_right):
        return image
    return cv2.copyMakeBorder(image, 0, pad_bottom, 0, pad_right, cv2.BORDER_REPLICATE)
