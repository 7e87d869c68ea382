"""Which codec for 10-bit phone clips: HEVC Main 10 against H.264 High 10, beside their own transcode.

A 10-bit HLG portrait clip like an iPhone's (benchmarks/speed.py ``make_phone_clip``) is redacted by
``blurcli video`` with ``--codec hevc`` (the default for 10-bit input) and ``--codec h264``, and
transcoded by plain PyAV with the same encoder, depth, crf and preset, one after the other in this
run. blurcli runs in a fresh child per clip (models loaded before the clock starts), so its peak
resident memory is its own.

Usage:
    python benchmarks/hdr.py [--data ../shared/data] [--size 1080x1920] [--seconds 3]
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

from blurcli.pipeline.video import VideoSettings  # noqa: E402
from blurcli.settings import IdentitySettings  # noqa: E402
from speed import frame_count, make_phone_clip, run_blurcli  # noqa: E402
from transcode_baseline import transcode  # noqa: E402

ENCODERS = {"hevc": "libx265", "h264": "libx264"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BLURCLI_TEST_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--size", default="1080x1920", help="upright WxH of the made portrait clip")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="blurcli-hdr-"))
    clip = make_phone_clip(args.data / "video" / "facenet_video.mp4", work / f"hlg_{args.size}.mp4", args.seconds,
                           upright_size=(width, height), hlg=True)
    frames = frame_count(clip)
    base = VideoSettings(identity=IdentitySettings(gallery=work / "empty-gallery.json"))
    print(f"{clip.name}: {frames} frames, 10-bit HLG HEVC, portrait {width}x{height}\n")
    print("| codec | blurcli fps | transcode fps | blurcli / transcode | output MB | blurcli peak RSS |")
    print("|---|---|---|---|---|---|")
    for codec, encoder in ENCODERS.items():
        out = work / f"blurcli_{codec}.mp4"
        seconds, rss = run_blurcli(clip, out, replace(base, codec=codec))
        start = time.perf_counter()
        transcode(clip, work / f"transcode_{codec}.mp4", base.crf, base.preset, encoder=encoder, pix_fmt="yuv420p10le")
        t_transcode = time.perf_counter() - start
        print(f"| {codec} | {frames / seconds:.1f} | {frames / t_transcode:.1f} | {t_transcode / seconds:.2f} "
              f"| {out.stat().st_size / 1e6:.1f} | {rss / 1024:.2f} GB |", flush=True)
    print(f"\noutputs in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
