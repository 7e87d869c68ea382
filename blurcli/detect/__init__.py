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

__all__ = [
    "AVAILABLE_BACKENDS", "FaceDetector", "MultiScalePlan", "auto_backend", "load_detector", "load_fast_detector", "self_check",
]

log = logging.getLogger("blurcli.detect")

_backends: dict[str, Backend] = {}
_detectors: dict[tuple, FaceDetector] = {}  # (settings, backend name, plan) -> detector
_lock = threading.Lock()


@functools.cache
def auto_backend() -> str:
    """The backend ``auto`` picks: onnxruntime when it can use a CUDA GPU, else cv2.dnn.

    On a CPU, cv2.dnn (OpenCV 5) runs the float network faster than onnxruntime does. The int8
    network (:mod:`.backends.int8`) runs 2.5-3x faster again but is never picked by itself: it
    scores some lone small faces under the threshold that the float network finds (a 16 px face:
    0.12-0.21 against 0.29-0.34), and a face missed is the failure this tool must not have. A
    video runs it only between float passes (:func:`load_fast_detector`).
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
    return _detector(settings, name, MultiScalePlan())


#: Heat threshold of the fast network's small-face tiles. The int8 rounding lowers weak faces'
#: scores (a lone 16 px face: 0.12-0.21 where the float network gives 0.29-0.34), and the tiles
#: run only where the base pass found faces under 40 px (a crowd), never on a picture without
#: them (the dogs photo), so they may look lower than the base pass's 0.2. On the 8-photo 720p
#: crowd pan (benchmarks/crowd.py) int8 tiles hid 96.36% of faces >= 10 px at 0.2 (a parade's one
#: 10-20 px face lost in every frame: float tiles 96.37%), 96.63% at 0.15 and 96.66% at 0.12, with
#: 45.8, 47.7 and 49.5% of the masked area on no labelled face (float tiles at 0.2: 42.1%).
FAST_TILE_THRESHOLD = 0.15


def load_fast_detector(settings: DetectSettings | None = None) -> FaceDetector:
    """The detector a video runs between its proof passes (:class:`blurcli.pipeline.video.Analyser`).

    On a CPU with ``backend="auto"`` it is the int8 network (:mod:`.backends.int8`, 2.5-3x faster
    than cv2.dnn's float one), its small-face tiles at :data:`FAST_TILE_THRESHOLD`; wherever
    ``auto`` picks a GPU, or a backend is named, or the int8 network cannot be built, it is
    :func:`load_detector`'s own.
    """
    settings = settings or DetectSettings()
    if settings.backend != "auto" or auto_backend() != "opencv" or "int8" not in AVAILABLE_BACKENDS:
        return load_detector(settings)
    try:
        return _detector(settings, "int8", MultiScalePlan(threshold=FAST_TILE_THRESHOLD))
    except ModelError as exc:  # e.g. no writable cache to build it in: slower, never less private
        log.warning("%s; using the float face detector for every pass", exc)
        return load_detector(settings)


def _detector(settings: DetectSettings, name: str, plan: MultiScalePlan) -> FaceDetector:
    """The one FaceDetector for these settings, backend and plan (built on first use)."""
    with _lock:
        detector = _detectors.get((settings, name, plan))
        if detector is None:
            second = _yunet(settings.yunet_threshold) if settings.yunet else None
            detector = FaceDetector(_backend(name), settings, plan, second=second)
            _detectors[(settings, name, plan)] = detector
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
                "onnxruntime": " (pip install onnx onnxruntime)",
                "int8": " (pip install onnx onnxruntime)",
            }.get(name, "")
            installed = ", ".join(AVAILABLE_BACKENDS)
            raise ModelError(f"face detector backend {name!r} is not installed{hint}; available: {installed}")
        backend = cls(cls.model())
        self_check(backend)
        log.debug("face detector ready: centerface/%s/%s", backend.backend_id, backend.device)
        _backends[name] = backend
    return backend
