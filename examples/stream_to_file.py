"""Stream a live source with faces hidden, recorded to a local file instead of an RTMP server.

Usage:
    python examples/stream_to_file.py OUT.flv [--source FILE_OR_URL] [--seconds 5]

Without ``--source`` the input is FFmpeg's ``testsrc2`` test pattern (no camera needed); a file
source is paced in real time, like a camera. The recording is what a server would receive: H.264
at a constant frame rate with a keyframe every 2 s, and AAC audio (silence when the source has
none). To go live instead, set ``rtmp_url="rtmp://host/app/KEY"`` and leave out ``output``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from blurcli.errors import BlurcliError
from blurcli.live import SourceSpec, StreamSettings, run_stream

TEST_PATTERN = SourceSpec("testsrc2=size=640x360:rate=30", format="lavfi")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help=".flv or .mp4 recording")
    parser.add_argument("--source", default=None, help="a video file or URL (default: a test pattern)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to stream")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args(argv)

    source = SourceSpec(args.source) if args.source else TEST_PATTERN
    settings = StreamSettings(source, output=args.output, fps=args.fps, duration=args.seconds)
    try:
        stats = run_stream(settings)
    except BlurcliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C: the recording is flushed and kept
        print("stopped", file=sys.stderr)
        return 130
    print(
        f"recorded {stats.sent} frames to {args.output}: {stats.repeated} repeated, {stats.dropped} dropped, "
        f"{stats.faces_hidden} face boxes hidden, {stats.whole_hidden} frames hidden whole"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
