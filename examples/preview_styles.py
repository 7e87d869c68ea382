"""Write a side-by-side preview of a photo in every style: original (boxed) | blur | pixelate | solid.

Usage:
    python examples/preview_styles.py PHOTO.jpg PREVIEW.png [--gallery GALLERY.json]

Boxes are green for enrolled people (kept sharp) and red for everyone else (hidden). The same
picture, in one style, is what ``blurcli photo PHOTO PREVIEW.png --preview`` writes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from blurcli.errors import BlurcliError
from blurcli.pipeline.photo import PhotoSettings
from blurcli.preview import photo_preview
from blurcli.settings import IdentitySettings, Style


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("preview", type=Path)
    parser.add_argument("--gallery", type=Path, default=None)
    args = parser.parse_args(argv)

    settings = PhotoSettings(identity=IdentitySettings(gallery=args.gallery))
    try:
        report = photo_preview(args.photo, args.preview, settings, styles=list(Style))
    except BlurcliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    kept = sum(face.action == "kept" for face in report.faces)
    print(f"{args.preview}: {len(report.faces)} face(s), {kept} kept, {len(report.faces) - kept} hidden")
    return 0


if __name__ == "__main__":
    sys.exit(main())
