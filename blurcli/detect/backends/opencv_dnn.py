"""CenterFace through OpenCV's DNN module (the default CPU path).

OpenCV 4.x imports the network without complaint and then returns thousands of garbage boxes,
so anything older than 5 is refused here, before the self-check would catch it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ...errors import ModelError
from ..centerface import OUTPUT_NAMES
from .base import Backend, cpu_count

log = logging.getLogger("blurcli.detect.opencv")

MIN_OPENCV_MAJOR = 5


def opencv_major() -> int:
    return int(cv2.__version__.split(".")[0])


class OpenCVBackend(Backend):
    """cv2.dnn on the CPU, with all cores."""

    backend_id = "opencv"

    def __init__(self, model: Path, threads: int | None = None) -> None:
        super().__init__()
        if opencv_major() < MIN_OPENCV_MAJOR:
            raise ModelError(
                f"OpenCV {cv2.__version__} is installed, but its DNN module returns garbage for CenterFace "
                f"before version {MIN_OPENCV_MAJOR}; install 'opencv-python>=5,<6' (and no opencv-python-headless)"
            )
        cv2.setNumThreads(threads or cpu_count())
        try:
            self._net = cv2.dnn.readNetFromONNX(str(model))
        except cv2.error as exc:
            raise ModelError(f"OpenCV cannot load the face detector {model}: {exc}") from exc
        log.debug("CenterFace on cv2.dnn %s, %d threads", cv2.__version__, cv2.getNumThreads())

    def _forward(self, blob: np.ndarray):
        self._net.setInput(blob)
        return tuple(self._net.forward(list(OUTPUT_NAMES)))
