"""Crowd pans: the hard case for video protection, built from the shared WIDER photos (DESIGN.md recipe).

A crowd pan is a slow pan and zoom over a crowd photo: the crop window shrinks from 80% to 74% of
the photo's width while it moves across the photo in ``seconds_per_photo`` seconds, scaled to the
output size (16:9); photos follow each other with hard cuts. The ground truth of every frame is the
photo's labelled boxes moved and scaled with the window (faces flagged ``invalid`` and boxes that
leave the window are dropped).

Used by ``benchmarks/crowd.py`` (the harness behind the README's crowd figures) and by the tests,
which build short pans in ``tmp_path``. Nothing here is written into the repository.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

#: Crop window width at the start and end of each photo's pan, as a share of the photo's width.
ZOOM_FROM, ZOOM_TO = 0.80, 0.74


@dataclass
class CrowdPan:
    """A made clip and its ground truth.

    Attributes:
        path: the clip (H.264, yuv420p, constant ``fps``).
        size: (width, height) of the clip.
        fps: frames per second.
        boxes: per frame, an (n, 4) float32 array of ground-truth faces [x, y, w, h] in clip pixels.
        photos: the WIDER photos used, in order.
        cuts: first frame of each photo's pan.
    """

    path: Path
    size: tuple[int, int]
    fps: int
    boxes: list[np.ndarray] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)


def wider_photos(data: Path, *, min_faces: int = 8, min_px: float = 10.0, scale: float = 1.5) -> list[dict]:
    """WIDER entries of ``data/detect/annotations.json`` with at least ``min_faces`` valid faces of
    ``min_px`` or more once scaled by ``scale`` (about what a 720p pan makes of a 1024 px photo)."""
    entries = json.loads((Path(data) / "detect" / "annotations.json").read_text())
    chosen = []
    for entry in entries:
        if "wider" not in entry["file"]:
            continue
        valid = [b for b, bad in zip(entry["boxes"], _invalid(entry)) if not bad and b[2] > 0 and b[3] > 0]
        if sum(b[3] * scale >= min_px for b in valid) >= min_faces:
            chosen.append(entry)
    return chosen


def _invalid(entry: dict) -> list[bool]:
    flags = entry.get("invalid") or entry.get("ignore") or [0] * len(entry["boxes"])
    return [bool(f) for f in flags]


def _window(photo_w: int, photo_h: int, t: float, aspect: float) -> tuple[float, float, float, float]:
    """Crop window (x, y, w, h) at pan progress ``t`` in [0, 1]: zooming in while moving across."""
    width = photo_w * (ZOOM_FROM + (ZOOM_TO - ZOOM_FROM) * t)
    height = width / aspect
    if height > photo_h:  # a tall crop window would leave the photo: fit the height instead
        height = photo_h * (ZOOM_FROM + (ZOOM_TO - ZOOM_FROM) * t)
        width = height * aspect
    x = (photo_w - width) * t
    y = (photo_h - height) * (0.3 + 0.4 * t)
    return x, y, width, height


def make_crowd_pan(
    data: Path,
    dst: Path,
    *,
    photos: list[dict],
    size: tuple[int, int] = (1280, 720),
    fps: int = 30,
    seconds_per_photo: float = 3.0,
    crf: int = 18,
) -> CrowdPan:
    """Write a crowd pan over ``photos`` (entries of :func:`wider_photos`) to ``dst``.

    Returns:
        The clip and its per-frame ground truth.
    """
    out_w, out_h = size
    aspect = out_w / out_h
    pan = CrowdPan(Path(dst), size, fps)
    per_photo = max(1, round(seconds_per_photo * fps))
    with av.open(str(dst), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        index = 0
        for entry in photos:
            image = cv2.imread(str(Path(data) / "detect" / entry["file"]))
            if image is None:
                raise FileNotFoundError(entry["file"])
            ph, pw = image.shape[:2]
            boxes = np.asarray(
                [b for b, bad in zip(entry["boxes"], _invalid(entry)) if not bad and b[2] > 0 and b[3] > 0], np.float32
            ).reshape(-1, 4)
            pan.photos.append(entry["file"])
            pan.cuts.append(index)
            for k in range(per_photo):
                x, y, w, h = _window(pw, ph, k / max(1, per_photo - 1), aspect)
                sx, sy = out_w / w, out_h / h
                matrix = np.float32([[sx, 0, -x * sx], [0, sy, -y * sy]])
                frame = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR)
                moved = np.stack(
                    [(boxes[:, 0] - x) * sx, (boxes[:, 1] - y) * sy, boxes[:, 2] * sx, boxes[:, 3] * sy], axis=1
                )
                inside = (moved[:, 0] >= 0) & (moved[:, 1] >= 0)
                inside &= (moved[:, 0] + moved[:, 2] <= out_w) & (moved[:, 1] + moved[:, 3] <= out_h)
                pan.boxes.append(moved[inside])
                video_frame = av.VideoFrame.from_ndarray(frame, format="bgr24")
                video_frame.pts = index
                for packet in stream.encode(video_frame):
                    container.mux(packet)
                index += 1
        for packet in stream.encode():
            container.mux(packet)
    return pan


def grey_frames(path: Path):
    """Yield the decoded frames of ``path`` as grey (h, w) uint8 arrays."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield cv2.cvtColor(frame.to_ndarray(format="bgr24"), cv2.COLOR_BGR2GRAY)


@dataclass
class PanScore:
    """Per-face-per-frame protection of a redacted crowd pan.

    Attributes:
        buckets: bucket name -> [hidden, total] over every (face, frame) pair (reference scorer).
        frames: frames compared.
    """

    buckets: dict[str, list[int]]
    frames: int

    def share(self, min_px: float = 10.0) -> float:
        """Share of faces of ``min_px`` or more hidden, over all frames."""
        hidden = total = 0
        for name, (h, t) in self.buckets.items():
            if not name.startswith("tiny") or min_px < 10:
                hidden, total = hidden + h, total + t
        return hidden / total if total else 1.0


def score_pan(pan: CrowdPan, output: Path, scorer) -> PanScore:
    """Score ``output`` (a redacted copy of ``pan.path``) with the reference scorer, frame by frame.

    A frame missing from the output, or of another size, hides nothing.
    """
    buckets = {name: [0, 0] for *_, name in scorer.BUCKETS}
    frames = 0
    for i, (src, out) in enumerate(zip(grey_frames(pan.path), _padded(grey_frames(output), len(pan.boxes)))):
        frames += 1
        boxes = pan.boxes[i].tolist()
        if out is not None and out.shape[0] >= src.shape[0] and out.shape[1] >= src.shape[1]:
            out = out[: src.shape[0], : src.shape[1]]  # deface pads to a multiple of 16
            results = scorer.score_image(src, out, boxes)
        else:
            results = [(b[3], None) for b in boxes]
        for height, corr in results:
            bucket = buckets[scorer.bucket_of(height)]
            bucket[1] += 1
            bucket[0] += corr is not None and corr < scorer.HIDDEN
    return PanScore(buckets, frames)


def _padded(frames, count: int):
    """``frames`` followed by None up to ``count`` items (a short output scores as unhidden)."""
    n = 0
    for frame in frames:
        n += 1
        yield frame
    for _ in range(count - n):
        yield None


def masked_outside_faces(mask_boxes_per_frame, pan: CrowdPan, head_scale: float = 1.8) -> float:
    """Share of masked area that covers no labelled face (each face grown to its head, ``head_scale``).

    Args:
        mask_boxes_per_frame: per frame, the (n, 4) xyxy boxes blurcli hid (from its mask plan).
    """
    w, h = pan.size
    masked = outside = 0
    for i, boxes in enumerate(mask_boxes_per_frame):
        if i >= len(pan.boxes):
            break
        mask = np.zeros((h, w), np.uint8)
        for x0, y0, x1, y1 in np.asarray(boxes, np.float32).reshape(-1, 4):
            _ellipse(mask, (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 * head_scale, (y1 - y0) / 2 * head_scale)
        faces = np.zeros((h, w), np.uint8)
        for x, y, bw, bh in pan.boxes[i]:
            _ellipse(faces, x + bw / 2, y + bh / 2, bw / 2 * head_scale, bh / 2 * head_scale)
        m = mask > 0
        masked += int(m.sum())
        outside += int((m & (faces == 0)).sum())
    return outside / masked if masked else 0.0


def _ellipse(canvas: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> None:
    cv2.ellipse(canvas, (int(round(cx)), int(round(cy))), (max(1, int(round(ax))), max(1, int(round(ay)))), 0, 0, 360, 255, -1)
