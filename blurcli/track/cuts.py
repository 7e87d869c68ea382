"""Shot-cut detection from tiny thumbnails.

A track must never run across a cut: the box of the enrolled person in one shot overlaps a
stranger's in the next (short_hamilton_clip.mp4 frame 210 -> 211), and the kept decision would
follow the box. So the tracker is reset at every cut. A false cut only splits a track (its two
halves are identified separately), a missed one can leak an identity, hence a low threshold.
"""
from __future__ import annotations

import cv2
import numpy as np

#: Mean absolute difference (0-255, BGR) between consecutive 64x36 thumbnails above which a frame
#: starts a new shot. Measured on ../shared/data/video: cuts 27.5-31, motion within a shot <= 13.5.
CUT_THRESHOLD = 18.0

_THUMB = (64, 36)


def thumbnail(image: np.ndarray) -> np.ndarray:
    """(36, 64, 3) float32 thumbnail, each pixel the mean of >= 64 samples (noise and fine texture
    average out); strided first so that a 1080p frame costs a fraction of a full-area resize."""
    h, w = image.shape[:2]
    step = max(1, min(h // (_THUMB[1] * 8), w // (_THUMB[0] * 8)))
    small = image[::step, ::step] if step > 1 else image
    return cv2.resize(small, _THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


class CutDetector:
    """Says whether each frame starts a new shot.

    Attributes:
        change: mean absolute thumbnail difference of the last frame to the one before (0-255).
    """

    def __init__(self, threshold: float = CUT_THRESHOLD) -> None:
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        self._previous: np.ndarray | None = None
        self.change = 0.0

    def update(self, image: np.ndarray) -> bool:
        """Args:
            image: (h, w, 3) uint8 BGR frame, in presentation order.

        Returns:
            True when this frame starts a new shot (the first frame does not count).
        """
        thumb = thumbnail(image)
        previous, self._previous = self._previous, thumb
        if previous is None:
            self.change = 0.0
            return False
        self.change = float(np.abs(thumb - previous).mean())
        return self.change > self.threshold
