"""Is the enrolled person kept in video and in live, frame by frame, and is nobody else?

The shared Hamilton clip with Lin-Manuel Miranda enrolled from his one photo (the shared identity
scenario). His close-up runs from frame 82 to 210 (``videos.json``: 4-7.5 s); in each of those frames
the reference is the largest face CenterFace finds at full resolution.

* ``blurcli video``: kept when his face keeps its detail in the output (reference scorer, > 0.8);
  every other reference face of the clip must be hidden (< 0.5).
* ``blurcli stream`` (the clip as a live source, recorded): kept when the frame left the look-ahead
  with a kept box on his face; a stranger is kept when a kept box lies on any other reference face.

``--enrol video`` enrols him instead from a 1.6 s clip of the start of his close-up (frames 82-130,
cut from the clip as a selfie video would be: ``blurcli enroll clip.mp4`` takes up to 8 varied
frames of it); ``--enrol both`` measures the photo and the video one after the other. Kept shares
are given over the whole close-up and over its held-out part (frames 131-210, which the video
enrolment never saw).

Usage:
    python benchmarks/identity_video.py [--data ../shared/data] [--enrol photo|video|both]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blurcli.detect import load_detector  # noqa: E402
from blurcli.faces import iou_matrix  # noqa: E402
from blurcli.identity.enroll import enroll  # noqa: E402
from blurcli.live import SourceSpec, StreamSettings  # noqa: E402
from blurcli.live.runner import sent_frames  # noqa: E402
from blurcli.pipeline.video import VideoSettings, redact_video  # noqa: E402
from blurcli.settings import DetectSettings, IdentitySettings  # noqa: E402

CLOSE_UP = range(82, 211)
#: Frames cut out as the enrolment video with ``--enrol video``; the rest of the close-up is held out.
ENROL_FRAMES = range(82, 131)
HELD_OUT = range(131, 211)


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def reference(frames: list[np.ndarray]) -> list[tuple[np.ndarray, int]]:
    """Per frame: (n, 4) reference boxes and the row of the enrolled face (-1 outside the close-up)."""
    detector = load_detector(DetectSettings(threshold=0.5, upscale_small=False, backend="opencv"))  # the float network
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


def cut(frames: list[np.ndarray], indices: range, dst: Path, fps: float = 29.97) -> Path:
    """``frames[indices]`` as an H.264 clip (the enrolment video)."""
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001), options={"crf": "18"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for i, index in enumerate(indices):
            frame = av.VideoFrame.from_ndarray(frames[index], format="bgr24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return dst


def _share(kept: dict[int, bool], frames) -> str:
    got = [kept[i] for i in frames if i in kept]
    return f"{sum(got)} of {len(got)} ({100 * sum(got) / max(len(got), 1):.1f}%)"


def measure(args, redaction, work: Path, how: str, source, truth) -> None:
    clip = args.data / "video" / "short_hamilton_clip.mp4"
    gallery = work / f"gallery-{how}.json"
    if how == "photo":
        enroll([args.data / "identity" / "lin_manuel_miranda" / "lin-manuel-miranda.png"], name="lin", gallery_path=gallery)
    else:
        result = enroll([cut(source, ENROL_FRAMES, work / "selfie.mp4")], name="lin", gallery_path=gallery)
        print(f"enrolled from video: {len(result.photos)} samples (frames at {[p.at_s for p in result.photos]} s)")
    identity = IdentitySettings(gallery=gallery)

    # Video.
    out = work / f"video-{how}.mp4"
    redact_video(clip, out, VideoSettings(identity=identity))
    kept: dict[int, bool] = {}
    strangers = stranger_kept = 0
    for i, (src, dst, (xyxy, him)) in enumerate(zip(source, _frames(out), truth)):
        boxes = [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in xyxy.tolist()]
        for j, (_, corr) in enumerate(redaction.score_image(src, dst, boxes)):
            if j == him:
                kept[i] = corr is not None and corr > redaction.KEPT
            else:
                strangers += 1
                if corr is not None and corr > redaction.KEPT:
                    stranger_kept += 1
                    print(f"  video frame {i}: reference face {np.round(xyxy[j]).tolist()} kept")
    print(f"[{how}] video: enrolled face kept in {_share(kept, CLOSE_UP)} close-up frames, "
          f"{_share(kept, HELD_OUT)} held-out; {stranger_kept} of {strangers} other faces kept")

    # Live: the clip as a real-time source, recorded.
    settings = StreamSettings(SourceSpec(str(clip)), output=work / f"live-{how}.mp4", identity=identity)
    releases = sent_frames(settings)
    kept = {}
    strangers = stranger_kept = 0
    for index, release in releases.items():
        if index >= len(truth):
            continue
        xyxy, him = truth[index]
        on_kept = _on(release.keep, xyxy) & ~release.whole
        for j in range(len(xyxy)):
            if j == him:
                kept[index] = bool(on_kept[j])
            else:
                strangers += 1
                stranger_kept += bool(on_kept[j])
                if on_kept[j]:
                    print(f"  live frame {index}: kept box {np.round(release.keep).tolist()} on reference face "
                          f"{np.round(xyxy[j]).tolist()} (enrolled face: {np.round(xyxy[him]).tolist() if him >= 0 else None})")
    print(f"[{how}] live: enrolled face kept in {_share(kept, CLOSE_UP)} close-up frames sent, "
          f"{_share(kept, HELD_OUT)} held-out; {stranger_kept} of {strangers} other faces kept")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BLURCLI_TEST_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--enrol", choices=("photo", "video", "both"), default="photo")
    args = parser.parse_args(argv)
    sys.path.insert(0, str((args.data / ".." / "tools").resolve()))
    import redaction

    work = Path(tempfile.mkdtemp(prefix="blurcli-identity-"))
    source = _frames(args.data / "video" / "short_hamilton_clip.mp4")
    truth = reference(source)
    for how in (("photo", "video") if args.enrol == "both" else (args.enrol,)):
        measure(args, redaction, work, how, source, truth)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
