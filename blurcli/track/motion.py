"""Camera motion: how far the whole picture moved since the last frame, so tracks live in scene coordinates.

When the camera pans, every face moves with the picture. Measured in frame pixels, a face in a
crowd pan moves several of its own sizes between two detections, and the tracker can no longer
tell which detection continues which track. Measured in *scene* coordinates (frame pixels minus
the picture's accumulated shift), the same faces stand almost still: the tracker links them over
longer gaps, interpolation between two detections follows the pan instead of cutting across it,
and the detector may run less often.

The shift is the dominant translation between consecutive frames, found by phase correlation of
small grey copies (about 0.5 ms per frame at 320x180). A weak correlation peak (a cut, a flash,
a picture without texture) counts as no motion, so a doubtful estimate never moves a track.
"""
from __future__ import annotations

import cv2
import numpy as np

#: Width of the grey copy the shift is measured on (its height follows the frame's aspect).
WIDTH = 320
#: Phase-correlation peaks below this are not trusted (no motion is assumed).
MIN_RESPONSE = 0.2


class CameraMotion:
    """Accumulated picture shift per frame.

    Example:
        >>> motion = CameraMotion()
        >>> offset = motion.update(frame_bgr)          # (2,) scene -> frame offset of this frame
        >>> scene_xyxy = shift_boxes(xyxy, -offset)    # frame pixels -> scene coordinates
    """

    def __init__(self) -> None:
        self.offset = np.zeros(2, np.float64)
        self._previous: np.ndarray | None = None
        self._window: np.ndarray | None = None
        self._scale = 1.0

    def update(self, image: np.ndarray, *, cut: bool = False) -> np.ndarray:
        """Measure this frame's shift from the previous one and return the accumulated offset.

        Args:
            image: (h, w, 3) uint8 BGR frame, in presentation order.
            cut: this frame starts a new shot (no shift is measured across a cut).

        Returns:
            (2,) float64 x, y: a point at scene coordinate s is at frame pixel s + offset.
        """
        grey = self._small(image)
        if self._previous is not None and not cut and grey.shape == self._previous.shape:
            (dx, dy), response = cv2.phaseCorrelate(self._previous, grey, self._window)
            if response >= MIN_RESPONSE and np.isfinite(dx) and np.isfinite(dy):
                self.offset = self.offset + np.array([dx, dy]) / self._scale
        self._previous = grey
        return self.offset.copy()

    def _small(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        self._scale = min(1.0, WIDTH / w)
        size = (max(8, round(w * self._scale)), max(8, round(h * self._scale)))
        step = max(1, int(1 / self._scale) // 2)
        small = cv2.resize(image[::step, ::step], size, interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        if self._window is None or self._window.shape != grey.shape:
            self._window = cv2.createHanningWindow(size, cv2.CV_32F)
        return grey


def shift_boxes(xyxy: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(n, 4) boxes moved by ``offset`` (x, y); ``offset`` may be (2,) or (n, 2) per box."""
    offset = np.asarray(offset, np.float32)
    return np.asarray(xyxy, np.float32) + np.concatenate([offset, offset], axis=-1)


#: Template matches below this normalised correlation are not trusted (the face's speed stays unknown).
MIN_MATCH = 0.6
#: Faces smaller than this (pixels) are not matched: their speed stays unknown, so the cadence
#: still looks at them again 2 frames on. That look is also a second chance at a face the detector
#: finds only now and then, which small faces are: on the 8-photo 1080p crowd pan matching faces
#: from 12 px hid 96.49% (300 detections), from 16 px 96.49%, from 24 px 96.81% (316), never
#: matching 96.75% (340), at the same 15.0 frames a second.
MIN_MATCH_PX = 24


def face_shifts(before: np.ndarray, after: np.ndarray, xyxy: np.ndarray, *, reach: float = 1.25) -> np.ndarray:
    """How far each face moved between two consecutive frames, without running the detector.

    Each face box of ``before`` is looked for in ``after`` by normalised cross-correlation, up to
    ``reach`` of its size away (the tracker's own linking distance). The cadence uses this instead
    of a second detection to learn a new face's speed (:class:`blurcli.track.DetectionCadence`).

    Args:
        before, after: (h, w, 3) uint8 BGR frames of the same size.
        xyxy: (n, 4) face boxes in ``before``'s pixels.

    Returns:
        (n, 2) float32 shift (dx, dy) in frame pixels; NaN where the face is too small, too flat
        or too near the edge to be matched, or no match is clear.
    """
    boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
    out = np.full((len(boxes), 2), np.nan, np.float32)
    h, w = before.shape[:2]
    for i, (x0, y0, x1, y1) in enumerate(np.round(boxes).astype(int)):
        size = max(x1 - x0, y1 - y0)
        if min(x1 - x0, y1 - y0) < MIN_MATCH_PX or x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            continue
        m = int(np.ceil(reach * size))
        sx0, sy0, sx1, sy1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
        template = cv2.cvtColor(before[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        if float(template.std()) < 4.0:
            continue
        search = cv2.cvtColor(after[sy0:sy1, sx0:sx1], cv2.COLOR_BGR2GRAY)
        scores = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if best >= MIN_MATCH and np.isfinite(best):
            out[i] = (sx0 + bx - x0, sy0 + by - y0)
    return out
