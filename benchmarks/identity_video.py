"""Is the enrolled person kept in video and in live, frame by frame, and is nobody else?

The shared Hamilton clip with Lin-Manuel Miranda enrolled from his one photo (the shared identity
scenario). His close-up runs from frame 82 to 210 (``videos.json``: 4-7.5 s); in each of those frames
the reference is the largest face CenterFace finds at full resolution.

* ``blurcli video``: kept when his face keeps its detail in the output (reference scorer, > 0.8);
  every other reference face of the clip must be hidden (< 0.5).
* ``blurcli stream`` (the clip as a live source, recorded): kept when the frame left the look-ahead
  with a kept box on his face; a stranger is kept when a kept box lies on any other reference face.

Usage:
    python benchmarks/identity_video.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blurcli.detect import load_detector  # noqa: E402
from blurcli.faces import iou_matrix  # noqa: E402
from blurcli.identity.enroll import enroll  # noqa: E402
from blurcli.live import LiveStream, SourceSpec, StreamSettings, build_privacy  # noqa: E402
from blurcli.pipeline.video import VideoSettings, redact_video  # noqa: E402
from blurcli.settings import DetectSettings, IdentitySettings  # noqa: E402

CLOSE_UP = range(82, 211)


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def reference(frames: list[np.ndarray]) -> list[tuple[np.ndarray, int]]:
    """Per frame: (n, 4) reference boxes and the row of the enrolled face (-1 outside the close-up)."""
    detector = load_detector(DetectSettings(threshold=0.5, upscale_small=False))
    out = []
    for i, image in enumerate(frames):
        faces = detector.detect(image, max_side=4096)
        faces = faces[faces.height >= 10]
        him = int(np.argmax(faces.height)) if i in CLOSE_UP and len(faces) else -1
        out.append((faces.xyxy, him))
    return out


def _on(boxes: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    if not len(boxes) or not len(xyxy):
        return np.zeros(len(xyxy), bool)
    return iou_matrix(xyxy, np.asarray(boxes, np.float32)).max(axis=1) >= 0.3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BLURCLI_TEST_DATA", ROOT.parent / "shared" / "data")))
    args = parser.parse_args(argv)
    sys.path.insert(0, str((args.data / ".." / "tools").resolve()))
    import redaction

    work = Path(tempfile.mkdtemp(prefix="blurcli-identity-"))
    clip = args.data / "video" / "short_hamilton_clip.mp4"
    gallery = work / "gallery.json"
    enroll([args.data / "identity" / "lin_manuel_miranda" / "lin-manuel-miranda.png"], name="lin", gallery_path=gallery)
    identity = IdentitySettings(gallery=gallery)
    source = _frames(clip)
    truth = reference(source)

    # Video.
    out = work / "video.mp4"
    redact_video(clip, out, VideoSettings(identity=identity))
    kept = total = strangers = stranger_kept = 0
    for src, dst, (xyxy, him) in zip(source, _frames(out), truth):
        boxes = [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in xyxy.tolist()]
        for j, (_, corr) in enumerate(redaction.score_image(src, dst, boxes)):
            if j == him:
                total += 1
                kept += corr is not None and corr > redaction.KEPT
            else:
                strangers += 1
                stranger_kept += corr is not None and corr > redaction.KEPT
    print(f"video: enrolled face kept in {kept} of {total} frames ({100 * kept / total:.1f}%); "
          f"{stranger_kept} of {strangers} other faces kept")

    # Live: the clip as a real-time source, recorded.
    settings = StreamSettings(SourceSpec(str(clip)), output=work / "live.mp4", identity=identity)
    privacy = build_privacy(settings, 29.97)
    releases = {}
    try:
        LiveStream(settings, privacy=privacy, trace=lambda tick, release, repeated: releases.setdefault(
            release.frame.index, release) if release is not None else None).run()
    finally:
        privacy.close()
    kept = total = strangers = stranger_kept = 0
    for index, release in releases.items():
        if index >= len(truth):
            continue
        xyxy, him = truth[index]
        on_kept = _on(release.keep, xyxy) & ~release.whole
        for j in range(len(xyxy)):
            if j == him:
                total += 1
                kept += bool(on_kept[j])
            else:
                strangers += 1
                stranger_kept += bool(on_kept[j])
                if on_kept[j]:
                    print(f"  live frame {index}: kept box {np.round(release.keep).tolist()} on reference face "
                          f"{np.round(xyxy[j]).tolist()} (enrolled face: {np.round(xyxy[him]).tolist() if him >= 0 else None})")
    print(f"live: enrolled face kept in {kept} of {total} close-up frames sent ({100 * kept / max(total, 1):.1f}%); "
          f"{stranger_kept} of {strangers} other faces kept")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
