"""``blurcli review``'s analysis: every file's report without writing an output, and the pictures its page shows.

A video goes through pass 1 and the decisions of ``blurcli video`` (the same
:class:`~blurcli.pipeline.video.VideoRedactor`), a photo through the detection and identity rule
of ``blurcli photo``, so the report is exactly what those commands would do; its audit record
names the input by sha256, so the reviewed report is a plan for that file only
(:mod:`blurcli.review.plan`). Nothing is redacted here.

For the page, the file is decoded once more (decoding is cheap next to detection) to cut a few
thumbnails along each track's life and a still every second, on which the reviewer draws the
regions the detector missed. They show faces unblurred, so they are written private: folders
0700, files 0600.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .. import audit
from ..errors import BlurcliError, InputError, OutputError, PartialFailure, UsageError
from ..secrets import mask_secrets

log = logging.getLogger("blurcli.review")

#: Thumbnails per face track, spread over its detections (first and last included).
THUMBS_PER_TRACK = 5
#: Height of a thumbnail (pixels).
THUMB_HEIGHT = 96
#: A thumbnail shows the face box grown by this factor (some of the head and its surroundings).
THUMB_CONTEXT = 1.5
#: One still for drawing regions every this many seconds, at most MAX_STILLS per video.
STILL_EVERY_S = 1.0
MAX_STILLS = 240
#: Longest side of a still (pixels).
STILL_SIDE = 960
JPEG_QUALITY = 85

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


@dataclass
class Reviewed:
    """One reviewed file: its report (``to_dict`` is the plan), and what the page shows of it.

    ``view``: ``{"kind": "video"|"photo", "stills": [{"frame", "src", "boxes": [[id, x0, y0, x1, y1]]}],
    "thumbs": {id: [{"frame", "src"}]}}``, paths relative to the review folder."""

    report: object
    view: dict = field(default_factory=dict)


#: What a review folder holds; an existing folder with anything else is not taken over.
REVIEW_NAMES = frozenset({"report.json", "index.html", "media"})


def check_review_dir(path: Path) -> None:
    """Refuse a folder that holds other things than an earlier review: it is made private and
    written into, which must not happen to a home folder or a folder of photos.

    Raises:
        UsageError: ``path`` is a file, or a folder with other files in it.
    """
    if path.is_file():
        raise UsageError(f"{path} is a file; the review needs a folder of its own")
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if p.name not in REVIEW_NAMES and not p.name.startswith("."))
        if others:
            shown = ", ".join(others[:3]) + (" ..." if len(others) > 3 else "")
            raise UsageError(f"{path} already holds other files ({shown}); give the review a folder of its own")


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) and make it 0700 whatever the umask."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        os.chmod(path, PRIVATE_DIR)
    except FileExistsError:
        raise UsageError(f"{path} is a file; the review needs a folder") from None
    except OSError as exc:
        raise OutputError(f"cannot make the folder {path}: {exc.strerror or exc}") from None


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a 0600 file (never readable by others, even for a moment)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), PRIVATE_FILE)
            fh.write(data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR picture
        raise OutputError("could not encode a thumbnail")
    return data.tobytes()


def _thumb(image: np.ndarray, box) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(12.0, max(x1 - x0, y1 - y0) * THUMB_CONTEXT / 2)
    a, b = int(max(0, cx - half)), int(max(0, cy - half))
    c, d = int(min(w, cx + half)), int(min(h, cy + half))
    crop = image[b:max(d, b + 1), a:max(c, a + 1)]
    scale = THUMB_HEIGHT / max(1, crop.shape[0])
    return cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), THUMB_HEIGHT), interpolation=cv2.INTER_AREA)


def _still(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = min(1.0, STILL_SIDE / max(h, w))
    if scale >= 1.0:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def still_frames(frames: int, fps: float) -> list[int]:
    """The frames stills are cut at: one every :data:`STILL_EVERY_S`, the last frame too, at most MAX_STILLS."""
    step = max(1, round(STILL_EVERY_S * fps))
    picked = list(range(0, frames, step))
    if picked[-1] != frames - 1:
        picked.append(frames - 1)
    if len(picked) > MAX_STILLS:
        picked = sorted({int(round(v)) for v in np.linspace(0, frames - 1, MAX_STILLS)})
    return picked


def _box_at(rows: list, frame: int) -> list[float] | None:
    """A track's box at ``frame`` between its detections (display only: the page's overlay)."""
    at = [row[0] for row in rows]
    if not rows or frame < at[0] or frame > at[-1]:
        return None
    return [round(float(np.interp(frame, at, [row[k] for row in rows])), 1) for k in range(1, 5)]


class Reviewer:
    """Loads the models once (those a kind of file needs, when it first comes) and reviews files.

    Args:
        photo_settings, video_settings: as ``blurcli photo`` and ``blurcli video`` would use them.
        media: the folder thumbnails and stills go in (created private).
    """

    def __init__(self, photo_settings, video_settings, media: Path) -> None:
        self.photo_settings = photo_settings
        self.video_settings = video_settings
        self.media = media
        self._photo = None
        self._video = None
        self._count = 0

    def review(self, src: Path, progress: Callable | None = None) -> Reviewed:
        """Analyse one file. Raises BlurcliError subclasses (the file is unreadable, ...)."""
        from ..media.image_io import IMAGE_SUFFIXES

        self._count += 1
        if src.suffix.lower() in IMAGE_SUFFIXES:
            return self._review_photo(src)
        return self._review_video(src, progress)

    def _name(self, what: str) -> tuple[Path, str]:
        name = f"f{self._count:04d}-{what}.jpg"
        return self.media / name, f"{self.media.name}/{name}"

    def _review_photo(self, src: Path) -> Reviewed:
        from ..media.image_io import load_picture
        from ..pipeline.photo import FileReport, PhotoRedactor, decide_faces

        if self._photo is None:
            self._photo = PhotoRedactor(self.photo_settings)
        redactor, settings = self._photo, self.photo_settings
        picture = load_picture(src, max_pixels=settings.max_pixels)
        image = picture.bgr
        faces, actions = decide_faces(
            image, detector=redactor.detector, matcher=redactor.matcher, encoder=redactor.encoder,
            identity_settings=settings.identity,
        )
        report = FileReport.of(src, Path(""), image, faces, actions)
        report.output = None
        report.audit = audit.expected_of(redactor, settings, src)
        path, rel = self._name("still")
        write_private(path, _jpeg(_still(image)))
        view = {"kind": "photo", "stills": [{"frame": 0, "src": rel, "boxes": [
            [i, *face.box] for i, face in enumerate(report.faces)]}], "thumbs": {}}
        for i, face in enumerate(report.faces):
            path, rel = self._name(f"face{i}")
            write_private(path, _jpeg(_thumb(image, face.box)))
            view["thumbs"][i] = [{"frame": 0, "src": rel}]
        return Reviewed(report, view)

    def _review_video(self, src: Path, progress) -> Reviewed:
        from ..media.video_io import VideoReader
        from ..pipeline.video import VideoRedactor, VideoReport

        if self._video is None:
            self._video = VideoRedactor(self.video_settings)
        redactor = self._video
        analysis = redactor.analyse(src, progress)
        _, tracks = redactor.plan(analysis)
        report = VideoReport.of(src, None, analysis, tracks)
        report.audit = audit.expected_of(redactor, redactor.settings, src)

        # What to cut: thumbnails along each track, stills every second.
        wanted: dict[int, list[tuple[str, object]]] = {}
        for track in tracks:
            rows = track.boxes
            for k in sorted({int(round(v)) for v in np.linspace(0, len(rows) - 1, min(THUMBS_PER_TRACK, len(rows)))}):
                wanted.setdefault(int(rows[k][0]), []).append(("thumb", (track.track_id, rows[k])))
        stills = still_frames(analysis.frames, analysis.fps)
        for frame in stills:
            wanted.setdefault(frame, []).append(("still", None))
        view = {"kind": "video", "stills": [], "thumbs": {t.track_id: [] for t in tracks}}
        last = max(wanted)
        with VideoReader(src, threads=redactor.settings.threads) as reader:
            for index, frame in enumerate(reader):
                if index > last:
                    break
                todo = wanted.get(index)
                if not todo:
                    continue
                image = frame.image
                for what, item in todo:
                    if what == "thumb":
                        track_id, row = item
                        path, rel = self._name(f"t{track_id}-{index}")
                        write_private(path, _jpeg(_thumb(image, row[1:5])))
                        view["thumbs"][track_id].append({"frame": index, "src": rel})
                    else:
                        path, rel = self._name(f"s{index}")
                        write_private(path, _jpeg(_still(image)))
                        boxes = [[t.track_id, *box] for t in tracks if (box := _box_at(t.boxes, index)) is not None]
                        view["stills"].append({"frame": index, "src": rel, "boxes": boxes})
                if progress:
                    progress("thumbnails", index + 1, last + 1)
        return Reviewed(report, view)


def review_files(
    src: Path,
    out_dir: Path,
    photo_settings,
    video_settings,
    *,
    on_start: Callable[[list[Path]], None] | None = None,
    on_file: Callable[[object], None] | None = None,
    progress: Callable[[Path, str, int, "int | None"], None] | None = None,
) -> tuple[list[Reviewed], bool]:
    """Review a photo, a video, or every photo and video under a folder, into ``out_dir``.

    Args:
        on_start: called with the files to review, before the models load.
        on_file: called with each file's report as it is done.
        progress: ``progress(src, stage, done, total)`` through each video's frames.

    In folder mode a bad file becomes a report with ``error`` set (no card on the page) and the
    others go on, as in ``blurcli photo``/``video``.

    Returns:
        (the reviewed files in input order, folder mode)

    Raises:
        InputError: ``src`` is missing, not a photo or video, or a folder without any.
        UsageError: ``out_dir`` is a file.
        BlurcliError: a single file's error.
    """
    from ..media.image_io import IMAGE_SUFFIXES
    from ..media.video_io import VIDEO_EXTENSIONS

    suffixes = IMAGE_SUFFIXES | VIDEO_EXTENSIONS
    src, out_dir = Path(src), Path(out_dir)
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    folder_mode = src.is_dir()
    if folder_mode:
        inside = out_dir.resolve()
        files = sorted(
            p for p in src.rglob("*")
            if p.is_file() and p.suffix.lower() in suffixes and not p.resolve().is_relative_to(inside)
        )
        if not files:
            raise InputError(f"{src}: holds no photo or video ({' '.join(sorted(suffixes))})")
    else:
        if src.suffix.lower() not in suffixes:
            raise InputError(f"{src}: not a photo or video by its extension (expected one of: {' '.join(sorted(suffixes))})")
        files = [src]
    check_review_dir(out_dir)
    make_private_dir(out_dir)
    media = out_dir / "media"
    make_private_dir(media)
    for old in media.glob("f*.jpg"):  # an earlier review's pictures: this review writes its own
        old.unlink(missing_ok=True)
    if on_start:
        on_start(files)
    reviewer = Reviewer(photo_settings, video_settings, media)
    results = []
    for path in files:
        try:
            item = reviewer.review(path, None if progress is None else (lambda s, d, t, p=path: progress(p, s, d, t)))
        except BlurcliError as exc:
            if not folder_mode or isinstance(exc, PartialFailure):
                raise
            message = mask_secrets(str(exc))
            log.warning("skipped %s", message if str(path) in message else f"{path}: {message}")
            from ..pipeline.photo import FileReport
            from ..pipeline.video import VideoReport

            kind = FileReport if path.suffix.lower() in IMAGE_SUFFIXES else VideoReport
            item = Reviewed(kind(str(path), None, error=message), {})
        results.append(item)
        if on_file:
            on_file(item.report)
    return results, folder_mode
