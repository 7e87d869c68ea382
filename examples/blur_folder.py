"""Blur every face in a folder of photos with a custom style: big pixel blocks over a wider head mask.

Usage:
    python examples/blur_folder.py IN_DIR OUT_DIR [--gallery GALLERY.json]

The folder is walked recursively and mirrored under OUT_DIR with the same relative names; a file
that cannot be read is reported and skipped (the others are still written). Enrolled people in
GALLERY (default: your usual gallery) stay sharp.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from blurcli.errors import BlurcliError, PartialFailure
from blurcli.pipeline.photo import PhotoSettings, redact_photos
from blurcli.settings import IdentitySettings, RedactSettings, Style


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="folder of photos")
    parser.add_argument("dst", type=Path, help="output folder")
    parser.add_argument("--gallery", type=Path, default=None, help="gallery of enrolled people")
    args = parser.parse_args(argv)

    settings = PhotoSettings(
        # pixelate instead of the default blur, and a mask 1.8x the detector's box (default 1.5x)
        redact=RedactSettings(style=Style.pixelate, head_scale=1.8),
        identity=IdentitySettings(gallery=args.gallery),
    )

    def show(report) -> None:
        if report.error:
            print(f"skipped {report.input}: {report.error}")
            return
        hidden = sum(face.action == "hidden" for face in report.faces)
        kept = len(report.faces) - hidden
        print(f"{report.output}: {hidden} face(s) hidden, {kept} kept")

    try:
        reports = redact_photos(args.src, args.dst, settings, on_file=show)
    except PartialFailure as exc:
        print(f"done with errors: {exc}", file=sys.stderr)
        return exc.exit_code
    except BlurcliError as exc:  # bad arguments, unreadable input, missing models...
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"{len(reports)} photo(s) written to {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
