"""Detector backends, registered only when their libraries are installed.

``AVAILABLE_BACKENDS`` maps a name to its class for what is installed here, so a ``--detector``
choice can list exactly what works (scenedetect's backends registry does the same). onnxruntime
is looked up without importing it, so ``import blurcli`` stays fast.
"""
from __future__ import annotations

import importlib.util

from .base import Backend, cpu_count
from .int8 import REQUIRES as _INT8_REQUIRES
from .int8 import Int8Backend
from .onnx_runtime import REQUIRES as _ONNX_REQUIRES
from .onnx_runtime import OnnxRuntimeBackend
from .opencv_dnn import OpenCVBackend


def _installed(*packages: str) -> bool:
    return all(importlib.util.find_spec(p) is not None for p in packages)


#: Installed backends by name.
AVAILABLE_BACKENDS: dict[str, type[Backend]] = {OpenCVBackend.backend_id: OpenCVBackend}
if _installed(*_INT8_REQUIRES):
    AVAILABLE_BACKENDS[Int8Backend.backend_id] = Int8Backend
if _installed(*_ONNX_REQUIRES):
    AVAILABLE_BACKENDS[OnnxRuntimeBackend.backend_id] = OnnxRuntimeBackend

#: Every backend name :func:`blurcli.detect.load_detector` knows (installed or not), ``auto`` first.
BACKEND_NAMES = ("auto", OpenCVBackend.backend_id, Int8Backend.backend_id, OnnxRuntimeBackend.backend_id)

__all__ = ["BACKEND_NAMES", "AVAILABLE_BACKENDS", "Backend", "Int8Backend", "OnnxRuntimeBackend", "OpenCVBackend", "cpu_count"]
