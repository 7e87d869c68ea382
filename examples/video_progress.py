"""Hide faces in a video and show progress from a callback (here: a line every 10%).

Usage:
    python examples/video_progress.py IN.mp4 OUT.mp4 [--style blur|pixelate|solid]

``redact_video`` runs two passes (analyse: detect, track and decide every face track; write: hide
and encode) and calls ``progress(stage, frames_done, frames_total)`` after every frame of each.
The audio is copied untouched and every frame keeps its timestamp.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from blurcli.errors import BlurcliError
from blurcli.pipeline.video import VideoSettings, redact_video
from blurcli.settings import RedactSettings, Style


class PercentPrinter:
    """A progress callback that prints each stage at 0%, 10%, ... 100%."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.started = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not total:  # the container did not say how many frames it holds
            if done % 100 == 0:
                print(f"{stage}: {done} frames", flush=True)
            return
        percent = 100 * done // total
        step = percent - percent % 10
        if step > self.last.get(stage, -1):
            self.last[stage] = step
            fps = done / max(time.perf_counter() - self.started, 1e-6)
            print(f"{stage}: {step:3d}% ({done}/{total} frames, {fps:.0f} fps so far)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--style", type=Style, choices=list(Style), default=Style.blur)
    args = parser.parse_args(argv)

    settings = VideoSettings(redact=RedactSettings(style=args.style))
    try:
        report = redact_video(args.src, args.dst, settings, progress=PercentPrinter())
    except BlurcliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # the output is written under a temporary name: nothing is left behind
        print("interrupted", file=sys.stderr)
        return 130
    print(f"{report.output}: {report.frames} frames, {report.hidden} face track(s) hidden, {report.kept} kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
