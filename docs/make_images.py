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
- ``review.png``: ``blurcli review`` of a 3 s pan over the ``enrolled.png`` scene (the astronaut
  enrolled), opened in headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
  selenium), with a region drawn over the camera; skipped when they are not installed.
"""
from __future__ import annotations

import argparse
import json
import os
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


def _pan_clip(path: Path, frames: int = 60, fps: int = 20) -> Path:
    """A slow pan over :func:`enrolled_scene`, 840x480 at 20 fps."""
    import av

    scene = enrolled_scene()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 840, 480, "yuv420p"
        for i in range(frames):
            x = round(i * (scene.shape[1] - 840) / (frames - 1))
            picture = np.ascontiguousarray(scene[16:496, x:x + 840])
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def review_image() -> np.ndarray | None:
    """The review page of a short clip, as a browser shows it (None without chromium/selenium)."""
    import shutil

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
    except ImportError:
        return None
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        return None
    from blurcli.detect import load_detector
    from blurcli.identity import FaceEncoder
    from blurcli.identity.enroll import enroll
    from blurcli.pipeline.photo import PhotoSettings
    from blurcli.pipeline.video import VideoSettings
    from blurcli.review import review
    from blurcli.settings import IdentitySettings

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = tmp / "astronaut.png"
        cv2.imwrite(str(photo), astronaut())
        gallery = tmp / "gallery.json"
        enroll([photo], gallery_path=gallery, detector=load_detector(), encoder=FaceEncoder(), name="astronaut")
        identity = IdentitySettings(gallery=gallery)
        clip = _pan_clip(tmp / "pan.mp4")
        here = Path.cwd()
        os.chdir(tmp)  # the page names the clip as the user gave it
        try:
            review(Path(clip.name), Path("review"), PhotoSettings(identity=identity), VideoSettings(identity=identity))
        finally:
            os.chdir(here)
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                    "--hide-scrollbars"):
            options.add_argument(arg)
        page = webdriver.Chrome(service=Service(driver), options=options)
        try:
            page.get((tmp / "review" / "index.html").as_uri())
            canvas = page.find_element(By.CSS_SELECTOR, "canvas.overlay")
            k = canvas.size["width"] / 840
            # The camera's body, at the start of the pan.
            x0, y0, x1, y1 = 262, 96, 336, 152
            ActionChains(page).move_to_element_with_offset(
                canvas, round(x0 * k - canvas.size["width"] / 2), round(y0 * k - canvas.size["height"] / 2)
            ).click_and_hold().move_by_offset(round((x1 - x0) * k), round((y1 - y0) * k)).release().perform()
            page.find_element(By.CSS_SELECTOR, "button.add-region").click()
            png = page.get_screenshot_as_png()
        finally:
            page.quit()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return image[:760]


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
    image = review_image()
    if image is None:
        print("review.png skipped: it needs selenium, chromium and chromedriver", file=sys.stderr)
    else:
        path = figures.write_png(args.out / "review.png", image, max_colours=COLOURS)
        print(f"{path}: {image.shape[1]}x{image.shape[0]}, {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
