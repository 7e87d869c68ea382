"""Crowd protection harness: how many faces blurcli hides on crowd pans, beside deface, on the same files.

Builds crowd pans (``benchmarks/crowdpan.py``, DESIGN.md's recipe) over the shared WIDER photos at
720p and 1080p, redacts them with ``blurcli video``'s engine (nobody enrolled, default settings
unless flags say otherwise), and scores every frame with the reference scorer
(shared/tools/redaction.py): the share of (face, frame) pairs hidden, by face height, and the share
of masked area that covers no labelled face (WIDER leaves many background faces unlabelled, so this
over-counts false masks). The dogs photo and a clip without faces must stay untouched: the harness
also reports how many pixels changed there.

Usage:
    python benchmarks/crowd.py [--data ../shared/data] [--photos 8] [--seconds 3] [--sizes 720 1080]
                               [--deface] [--detect-every N] [--detect-size PX] [--backends int8 opencv]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from crowdpan import make_crowd_pan, masked_outside_faces, score_pan, wider_photos  # noqa: E402

from blurcli.detect.backends import BACKEND_NAMES  # noqa: E402
from blurcli.pipeline.video import VideoRedactor, VideoSettings  # noqa: E402
from blurcli.settings import DetectSettings, IdentitySettings  # noqa: E402

SIZES = {720: (1280, 720), 1080: (1920, 1080)}


def pick(photos: list[dict], count: int) -> list[dict]:
    """``count`` photos spread evenly over the list (every event, not the first few)."""
    if count >= len(photos):
        return photos
    step = len(photos) / count
    return [photos[int(i * step)] for i in range(count)]


def run_blurcli(redactor: VideoRedactor, src: Path, dst: Path):
    """Redact ``src``; returns (seconds, per-frame hidden boxes)."""
    start = time.perf_counter()
    report = redactor.redact_file(src, dst)
    seconds = time.perf_counter() - start
    print(f"  {src.name}: {report.seconds} s, detector on {report.detected_frames} of {report.frames} frames", flush=True)
    return seconds, [report.plan.boxes(i) for i in range(report.frames)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BLURCLI_TEST_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--photos", type=int, default=8, help="WIDER photos per pan (3 s each)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per photo")
    parser.add_argument("--sizes", type=int, nargs="*", default=[720, 1080], choices=sorted(SIZES))
    parser.add_argument("--deface", action="store_true", help="also run deface 1.5.0 (installed into a throwaway venv)")
    parser.add_argument("--detect-every", type=int, default=None)
    parser.add_argument("--detect-size", type=int, default=None)
    parser.add_argument("--yunet", type=float, default=None, help="YuNet threshold (0: YuNet off)")
    parser.add_argument("--backends", nargs="*", default=["auto"], choices=BACKEND_NAMES,
                        help="detector runtimes to run side by side on the same pans (default: the one blurcli picks)")
    parser.add_argument("--keep", action="store_true", help="keep the clips and outputs")
    args = parser.parse_args(argv)
    sys.path.insert(0, str((args.data / ".." / "tools").resolve()))
    import redaction

    work = Path(tempfile.mkdtemp(prefix="blurcli-crowd-"))
    photos = pick(wider_photos(args.data), args.photos)
    detect = DetectSettings()
    if args.yunet is not None:
        detect = DetectSettings(yunet=args.yunet > 0, yunet_threshold=args.yunet or detect.yunet_threshold)
    redactors = {
        backend: VideoRedactor(VideoSettings(
            detect=replace(detect, backend=backend),
            identity=IdentitySettings(gallery=work / "empty-gallery.json"),
            detect_every=args.detect_every,
            detect_max_side=args.detect_size,
        ))
        for backend in args.backends
    }
    rows = []
    for height in args.sizes:
        pan = make_crowd_pan(args.data, work / f"crowd_{height}p.mp4", photos=photos, size=SIZES[height],
                             seconds_per_photo=args.seconds)
        for backend, redactor in redactors.items():
            out = work / f"crowd_{height}p.blurcli-{backend}.mp4"
            seconds, masks = run_blurcli(redactor, pan.path, out)
            score = score_pan(pan, out, redaction)
            outside = masked_outside_faces(masks, pan)
            tool = "blurcli" if backend == "auto" else f"blurcli ({backend})"
            rows.append((tool, height, len(pan.boxes), seconds, score, outside))
            print(row_text(rows[-1]), flush=True)
        if args.deface:
            from speed import run_deface

            seconds = run_deface(pan.path, work / f"crowd_{height}p.deface.mp4")
            score = score_pan(pan, work / f"crowd_{height}p.deface.mp4", redaction)
            rows.append(("deface 1.5.0", height, len(pan.boxes), seconds, score, None))
            print(row_text(rows[-1]), flush=True)
    print()
    print(f"{len(photos)} WIDER photos, {args.seconds:g} s each: " + ", ".join(Path(p['file']).stem for p in photos))
    print("| tool | size | frames | fps | faces >= 10 px hidden | >= 40 / 20-40 / 10-20 px | masked area on no labelled face |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(row_text(row))
    if args.keep:
        print(f"\nfiles in {work}")
    return 0


def row_text(row) -> str:
    tool, height, frames, seconds, score, outside = row
    b = score.buckets

    def pct(name):
        h, t = b[name]
        return f"{100 * h / t:.1f}" if t else "-"

    big, medium, small = (pct(n) for n in ("large >=40px", "medium 20-40px", "small 10-20px"))
    pairs = sum(t for name, (_, t) in b.items() if not name.startswith("tiny"))
    masked = f"{100 * outside:.1f}%" if outside is not None else "-"
    return (f"| {tool} | {height}p | {frames} | {frames / seconds:.1f} | **{100 * score.share():.1f}%** of {pairs} "
            f"| {big} / {medium} / {small} | {masked} |")


if __name__ == "__main__":
    raise SystemExit(main())
