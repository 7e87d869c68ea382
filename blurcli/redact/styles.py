"""How a hidden region is drawn. One class per style, registered by name.

Every style must destroy the face's detail irreversibly: a plain Gaussian blur can be partly
undone by deconvolution, so ``blur`` first throws the detail away by resampling the region to a
few pixels per face, then smooths the blocks so the result looks like a blur.
"""
from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np

from ..settings import Style

#: Samples kept across a face's width: 3 for pixelate, 2 for blur. Fewer samples leave less of a
#: face's layout (dark hair above, a lit cheek beside): on crowd pans (benchmarks/crowd.py's 4
#: photos, the same masks, scored before encoding) blur with 3 samples hid 97.1% of faces of 10 px
#: and more (10-20 px: 94.5%), with 2 samples 99.3% (98.4%); pixelate with 4 samples 96.4%, with 3
#: 98.8%. Earlier, on the shared photos, 6 samples had hidden only 89.8% (pixelate) and left dim
#: faces in the Hamilton clip at a detail correlation of 0.52-0.62 (blur).
SAMPLES_PER_FACE = 3
BLUR_SAMPLES_PER_FACE = 2
#: Small faces are hidden as if they were this big (pixels): resampling a 10 px face to 6 samples
#: would keep most of its few pixels of detail, so small faces become one soft blob instead.
MIN_FACE_PX = 48.0


class Redactor:
    """Turns a window of the frame into its hidden version (same shape, uint8)."""

    style: ClassVar[Style]
    registry: ClassVar[dict[Style, type["Redactor"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Redactor.registry[cls.style] = cls

    def hide(self, window: np.ndarray, face_size: float, *, pixel: float = 1.0, black: int = 0) -> np.ndarray:
        """The hidden version of ``window`` (BGR, or one YUV plane).

        Args:
            window: the region around one face, (h, w, 3) or (h, w).
            face_size: the face's width in the window's pixels.
            pixel: size of the window's pixels in frame pixels (0.5 for a 4:2:0 chroma plane).
            black: the value of black in this plane (16 for limited-range luma, 128 for chroma).
        """
        raise NotImplementedError


def _coarse(
    window: np.ndarray, face_size: float, interpolation: int, samples: int = SAMPLES_PER_FACE, pixel: float = 1.0
) -> np.ndarray:
    """Resample ``window`` to ``samples`` samples per face width and back up."""
    h, w = window.shape[:2]
    step = max(face_size, MIN_FACE_PX * pixel) / samples
    small = cv2.resize(window, (max(1, round(w / step)), max(1, round(h / step))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=interpolation)


def stack_blur(image: np.ndarray, k: int) -> np.ndarray:
    """``cv2.stackBlur(image, (k, k))`` for odd ``k``, the same on any number of threads.

    A stack blur of radius r is a triangle kernel, i.e. two box filters of r + 1 (anchored so that
    the pair is centred). cv2.stackBlur itself (OpenCV 5.0) computes the columns at the borders of
    its thread stripes differently, so its output depended on the thread count: a ``--jobs 2``
    worker, given one core, wrote pixels up to 5 levels off a ``--jobs 1`` run. The box pair is
    exact integer filtering per pass (at most one level from stackBlur inside the window) and
    faster (0.46 ms against 0.84 ms on a 351x347 window).
    """
    n = k // 2 + 1
    first = cv2.blur(image, (n, n), anchor=(n // 2, n // 2), borderType=cv2.BORDER_REPLICATE)
    return cv2.blur(first, (n, n), anchor=((n - 1) // 2, (n - 1) // 2), borderType=cv2.BORDER_REPLICATE)


class BlurRedactor(Redactor):
    style = Style.blur

    def hide(self, window, face_size, *, pixel=1.0, black=0):
        coarse = _coarse(window, face_size, cv2.INTER_LINEAR, BLUR_SAMPLES_PER_FACE, pixel)
        k = int(max(face_size, MIN_FACE_PX * pixel) / 3) | 1
        return stack_blur(coarse, k)


class PixelateRedactor(Redactor):
    style = Style.pixelate

    def hide(self, window, face_size, *, pixel=1.0, black=0):
        return _coarse(window, face_size, cv2.INTER_NEAREST, pixel=pixel)


class SolidRedactor(Redactor):
    style = Style.solid

    def hide(self, window, face_size, *, pixel=1.0, black=0):
        return np.full_like(window, black)


def redactor_for(style: Style | str) -> Redactor:
    return Redactor.registry[Style(style)]()
