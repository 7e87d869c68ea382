"""Regenerate the README's pictures (docs/*.png) from media anyone can reproduce.

Usage:
    python3 docs/make_images.py [--quality bench-out/quality/quality.json]

The photos are the public-domain astronaut (Eileen Collins, NASA) and the CC0 cameraman (Lav
Varshney) that ship inside the scikit-image wheel (``skimage.data``, installed with deface): no
download, no shared test media. The bar chart is data, not media: the figures of a
``benchmarks/quality.py`` run, read from its ``quality.json`` when given, else the figures below.

- ``styles.png``: nobody enrolled, so the astronaut is hidden; the three ``--style`` values side by side.
- ``enrolled.png``: the astronaut enrolled from her photo; in a picture of her (mirrored and
  smaller, so not the same pixels) beside the cameraman, she stays sharp and he is hidden.
- ``hidden_by_size.png``: share of faces hidden by face height, blurcli beside deface 1.5.0.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import figures  # noqa: E402

from blurcli.settings import Style  # noqa: E402

#: ``python3 benchmarks/quality.py`` on ../shared/data/detect: (hidden, total) per face height.
MEASURED = {
    "blurcli": {"tiny <10px": [176, 334], "small 10-20px": [463, 578], "medium 20-40px": [339, 371], "large >=40px": [352, 361]},
    "deface": {"tiny <10px": [56, 334], "small 10-20px": [351, 578], "medium 20-40px": [335, 371], "large >=40px": [352, 361]},
}
#: Palette size of the written PNGs: keeps each picture well under 200 KB.
COLOURS = 256


def astronaut() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def cameraman() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)


def styles_image(detector) -> np.ndarray:
    """Nobody enrolled: the boxed original, then blur, pixelate and solid."""
    from blurcli.pipeline.photo import redact_image
    from blurcli.preview import render_photo_preview

    image = astronaut()
    _, faces, actions = redact_image(image, detector=detector)
    return render_photo_preview(image, faces, actions, list(Style), max_side=300)


def enrolled_scene() -> np.ndarray:
    """The cameraman beside a mirrored, 80% copy of the astronaut on a grey background."""
    her = cv2.resize(cv2.flip(astronaut(), 1), (410, 410), interpolation=cv2.INTER_AREA)
    scene = np.full((512, 512 + 430, 3), 128, np.uint8)
    scene[:, :512] = cameraman()
    scene[51:461, 522:932] = her
    return scene


def enrolled_image(detector) -> np.ndarray:
    """The astronaut enrolled from her photo: kept sharp; the cameraman hidden."""
    from blurcli.identity import FaceEncoder, Gallery
    from blurcli.identity.enroll import enroll
    from blurcli.pipeline.photo import redact_image
    from blurcli.preview import render_photo_preview

    encoder = FaceEncoder()
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "astronaut.png"
        cv2.imwrite(str(photo), astronaut())
        gallery = Path(tmp) / "gallery.json"
        enroll([photo], gallery_path=gallery, detector=detector, encoder=encoder)
        matcher = Gallery.open(gallery).matcher()
    scene = enrolled_scene()
    _, faces, actions = redact_image(scene, detector=detector, matcher=matcher, encoder=encoder)
    if sorted(actions) != ["hidden", "kept"]:
        raise SystemExit(f"unexpected decisions {actions}: the README picture would be wrong")
    return render_photo_preview(scene, faces, actions, [Style.blur], max_side=560)


def chart_image(quality: Path | None) -> np.ndarray:
    if quality is not None:
        summary = json.loads(quality.read_text())
        blurcli, deface = summary["blurcli"]["buckets"], summary["deface"]["buckets"]
    else:
        blurcli, deface = MEASURED["blurcli"], MEASURED["deface"]
    note = "110 photos of the shared detection set (WIDER FACE val + dlib VOC); python3 benchmarks/quality.py"
    return figures.bar_chart({"blurcli": blurcli, "deface 1.5.0": deface}, note=note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=Path, default=None, help="quality.json written by benchmarks/quality.py")
    parser.add_argument("--out", type=Path, default=DOCS, help="where the pictures go (default: docs/)")
    args = parser.parse_args(argv)
    from blurcli.detect import load_detector

    detector = load_detector()
    for name, image in (
        ("styles.png", styles_image(detector)),
        ("enrolled.png", enrolled_image(detector)),
        ("hidden_by_size.png", chart_image(args.quality)),
    ):
        path = figures.write_png(args.out / name, image, max_colours=COLOURS)
        print(f"{path}: {image.shape[1]}x{image.shape[0]}, {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
