"""Face detection: CenterFace through cv2.dnn or onnxruntime, multi-scale, self-checked at load.

Example:
    >>> from blurcli.detect import load_detector
    >>> faces = load_detector().detect(image_bgr)       # doctest: +SKIP
    >>> faces.xyxy, faces.score, faces.landmarks        # doctest: +SKIP
"""
from __future__ import annotations

import functools
import logging
import threading

from ..errors import ModelError
from ..settings import DetectSettings
from .backends import AVAILABLE_BACKENDS, Backend
from .detector import FaceDetector, MultiScalePlan
from .selfcheck import self_check, self_check_second

__all__ = ["AVAILABLE_BACKENDS", "FaceDetector", "MultiScalePlan", "auto_backend", "load_detector", "self_check"]

log = logging.getLogger("blurcli.detect")

_backends: dict[str, Backend] = {}
_detectors: dict[tuple, FaceDetector] = {}
_lock = threading.Lock()


@functools.cache
def auto_backend() -> str:
    """The backend ``auto`` picks: onnxruntime when it can use a CUDA GPU, else cv2.dnn.

    On a CPU, cv2.dnn (OpenCV 5) runs the float network faster than onnxruntime does. The int8
    network (:mod:`.backends.int8`) runs twice as fast again but is never picked by itself: it
    scores some lone small faces under the threshold that the float network finds (a 16 px face:
    0.12-0.21 against 0.29-0.34), and a face missed is the failure this tool must not have.
    """
    if "onnxruntime" in AVAILABLE_BACKENDS:
        from .backends.onnx_runtime import providers

        if "CUDAExecutionProvider" in providers():
            return "onnxruntime"
    return "opencv"


def load_detector(settings: DetectSettings | None = None, *, backend: str | None = None) -> FaceDetector:
    """The face detector for ``settings``; the network is loaded and self-checked once per process.

    Args:
        settings: detection settings (default ``DetectSettings()``).
        backend: ``"opencv"``, ``"int8"``, ``"onnxruntime"`` or ``"auto"``; default ``settings.backend``.

    Returns:
        A ready FaceDetector; the same object for equal settings and backend.

    Raises:
        ModelError: the backend is not installed, the weights are missing, or the self-check failed.
    """
    settings = settings or DetectSettings()
    name = backend or settings.backend
    if name == "auto":
        name = auto_backend()
    with _lock:
        detector = _detectors.get((settings, name))
        if detector is None:
            second = _yunet(settings.yunet_threshold) if settings.yunet else None
            detector = FaceDetector(_backend(name), settings, second=second)
            _detectors[(settings, name)] = detector
    return detector


_yunets: dict[float, "YuNet"] = {}


def _yunet(threshold: float):
    """The loaded, self-checked YuNet for ``threshold`` (call with ``_lock`` held)."""
    from .yunet import YuNet

    detector = _yunets.get(threshold)
    if detector is None:
        detector = YuNet(threshold)
        self_check_second(detector)
        _yunets[threshold] = detector
    return detector


def _backend(name: str) -> Backend:
    """The loaded, self-checked network for ``name`` (call with ``_lock`` held)."""
    backend = _backends.get(name)
    if backend is None:
        cls = AVAILABLE_BACKENDS.get(name)
        if cls is None:
            hint = {
                "onnxruntime": " (pip install 'blurcli[onnx]')",
                "int8": " (pip install 'blurcli[int8]', then python tools/quantize_centerface.py)",
            }.get(name, "")
            installed = ", ".join(AVAILABLE_BACKENDS)
            raise ModelError(f"face detector backend {name!r} is not installed{hint}; available: {installed}")
        backend = cls(cls.model())
        self_check(backend)
        log.debug("face detector ready: centerface/%s/%s", backend.backend_id, backend.device)
        _backends[name] = backend
    return backend
