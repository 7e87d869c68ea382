"""Turn detected faces into dlib's 128-d encodings, the numbers a gallery is matched against.

dlib's encoder expects a face chip aligned by its own 5-point landmark model, and that model was
trained on dlib's square HOG boxes, not on CenterFace's taller brow-to-chin boxes. On the shared
identity photos the starting box (CenterFace's, a square around it, a HOG-like square, dlib's own
HOG box) hardly changed the same/different-person separation (AUC 0.9999 for all), but it did
change how far an encoding moves when the detector's box jitters, as it does from frame to frame.
So the landmarks are fitted twice: first on a square around the detector's box, then on the square
dlib's HOG detector would have drawn around those landmarks. With boxes shifted and scaled by up
to 10% (20 photos), that cut the largest encoding change from 0.21 to 0.09 (mean 0.043 -> 0.037),
against a match tolerance of ~0.45.
"""
from __future__ import annotations

import logging
import threading

import cv2
import numpy as np

from .. import models
from ..errors import ModelError

log = logging.getLogger("blurcli.encoder")

#: Length of one encoding.
DIMENSIONS = 128

# Where dlib's HOG detector puts its square box relative to the two eye centres of the 5-point
# model, in units of the eye distance (median over 89 faces of the shared identity photos).
_HOG_CENTRE_BELOW_EYES = 0.52
_HOG_SIDE = 2.42
#: Eye distances (px) below this mean the first landmark fit failed; the refit is skipped.
_MIN_EYE_DISTANCE = 2.0


class FaceEncoder:
    """dlib's ResNet face encoder (the model behind face_recognition, 99.38% on LFW).

    The dlib models are loaded on the first :meth:`encode` call, not at construction or import.
    One instance may be shared between threads; calls are serialised (dlib's network keeps
    per-call state).

    Args:
        num_jitters: how many randomly jittered copies of each face chip to encode and average.
            1 (no jitter) is what the tolerance was calibrated with; 10 made no measurable
            difference to the separation on the shared photos and costs 10x.

    Example:
        >>> encoder = FaceEncoder()
        >>> encoder.encode(image_bgr, faces.xyxy).shape  # doctest: +SKIP
        (2, 128)
    """

    def __init__(self, *, num_jitters: int = 1):
        if num_jitters < 1:
            raise ValueError(f"num_jitters must be >= 1, got {num_jitters}")
        self.num_jitters = int(num_jitters)
        self._lock = threading.Lock()
        self._dlib = None
        self._predictor = None
        self._network = None

    def _load(self) -> None:
        if self._network is not None:
            return
        try:
            import dlib
        except ImportError as exc:
            raise ModelError(
                "dlib is not installed; install the prebuilt wheel with: pip install dlib-bin==20.0.1.post1"
            ) from exc
        landmarks_path, encoder_path = models.dlib_landmarks_5(), models.dlib_face_encoder()
        try:
            predictor = dlib.shape_predictor(str(landmarks_path))
            network = dlib.face_recognition_model_v1(str(encoder_path))
        except RuntimeError as exc:
            raise ModelError(f"cannot load the dlib face models ({exc}); reinstall face_recognition_models==0.3.0") from exc
        self._dlib, self._predictor, self._network = dlib, predictor, network
        log.debug("dlib face encoder loaded from %s", encoder_path.parent)

    def encode(self, image_bgr: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """Encode the faces at ``xyxy`` in one picture.

        Args:
            image_bgr: (h, w, 3) uint8 BGR picture (grey (h, w) and BGRA are accepted too).
            xyxy: (n, 4) face boxes in the picture's pixels, as the detector gave them; boxes may
                reach outside the picture (a face cut by the edge).

        Returns:
            (n, 128) float32 encodings. A row is NaN where no face chip could be taken (an empty
            or non-finite box, or one wholly outside the picture); NaN never matches anyone.

        Raises:
            ModelError: dlib or its model files are missing or damaged.
            ValueError: ``xyxy`` is not (n, 4) or the picture is not 8-bit.
        """
        boxes = np.asarray(xyxy, dtype=np.float64)
        if boxes.size == 0:
            return np.zeros((0, DIMENSIONS), np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (n, 4), got {boxes.shape}")
        rgb = _to_rgb(image_bgr)
        out = np.full((len(boxes), DIMENSIONS), np.nan, np.float32)
        height, width = rgb.shape[:2]
        with self._lock:
            self._load()
            shapes, rows = [], []
            for i, box in enumerate(boxes):
                start = _start_square(box, width, height)
                if start is None:
                    continue
                shapes.append(self._landmarks(rgb, start))
                rows.append(i)
            if not rows:
                return out
            dlib = self._dlib
            found = dlib.full_object_detections()
            for shape in shapes:
                found.append(shape)
            encodings = self._network.compute_face_descriptor(rgb, found, self.num_jitters)
        out[rows] = np.asarray([np.asarray(e) for e in encodings], np.float32)
        return out

    def _landmarks(self, rgb: np.ndarray, square: tuple[float, float, float, float]):
        """5-point landmarks fitted on ``square``, then refitted on the HOG-style square they imply."""
        shape = self._predictor(rgb, self._rect(square))
        points = np.array([(shape.part(k).x, shape.part(k).y) for k in range(5)], np.float64)
        eye_a, eye_b = points[0:2].mean(axis=0), points[2:4].mean(axis=0)
        eye_distance = float(np.linalg.norm(eye_a - eye_b))
        if not np.isfinite(eye_distance) or eye_distance < _MIN_EYE_DISTANCE:
            return shape
        centre = (eye_a + eye_b) / 2
        cx, cy = centre[0], centre[1] + _HOG_CENTRE_BELOW_EYES * eye_distance
        half = _HOG_SIDE * eye_distance / 2
        return self._predictor(rgb, self._rect((cx - half, cy - half, cx + half, cy + half)))

    def _rect(self, box: tuple[float, float, float, float]):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        return self._dlib.rectangle(x0, y0, x1, y1)


def _start_square(box: np.ndarray, width: int, height: int) -> tuple[float, float, float, float] | None:
    """A square of the box's longer side around its centre, or None for an unusable box."""
    if not np.all(np.isfinite(box)):
        return None
    x0, y0, x1, y1 = min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])
    side = max(x1 - x0, y1 - y0)
    if side < 1 or x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        return None
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """A C-contiguous (h, w, 3) uint8 RGB copy for dlib."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"the picture must be 8-bit (uint8), got {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB))
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGB))
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    raise ValueError(f"expected an (h, w, 3) picture, got shape {image.shape}")
