"""Enrol a person from a photo, then hide everybody else in another photo, all in code.

Usage:
    python examples/enroll_and_redact.py PERSON.jpg PHOTO.jpg OUT.jpg --gallery GALLERY.json [--name NAME]

The gallery file holds face encodings only (mode 0600), never the photos. The models are loaded
once by ``PhotoRedactor`` and can redact any number of photos.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from blurcli.errors import BlurcliError
from blurcli.identity.enroll import enroll
from blurcli.pipeline.photo import PhotoRedactor, PhotoSettings
from blurcli.settings import IdentitySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("person", type=Path, help="a photo of the person to keep sharp (one face)")
    parser.add_argument("photo", type=Path, help="the photo to redact")
    parser.add_argument("out", type=Path, help="where the redacted photo goes")
    parser.add_argument("--gallery", type=Path, required=True, help="gallery file to create or extend")
    parser.add_argument("--name", default=None, help="the person's name (default: PERSON's file name)")
    args = parser.parse_args(argv)

    try:
        result = enroll([args.person], name=args.name, gallery_path=args.gallery)
        print(f"enrolled {result.person.name!r} ({result.person.samples} sample(s)) in {result.gallery}")

        redactor = PhotoRedactor(PhotoSettings(identity=IdentitySettings(gallery=args.gallery)))
        report = redactor.redact_file(args.photo, args.out)
    except BlurcliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for face in report.faces:
        who = f"{face.identity} (distance {face.distance})" if face.identity else "unknown"
        print(f"face at {[round(v) for v in face.box]}: {who} -> {face.action}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
