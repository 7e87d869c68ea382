"""Side-by-side previews: see what blurcli decides and what each style looks like before committing.

A photo preview is one image: the original with every face boxed (green: an enrolled person, kept;
red: hidden) and labelled, next to the redacted result in the chosen style (or in several styles).
A video preview is a short clip of the first seconds: the boxed original on the left, the redacted
frames on the right, decided as ``blurcli video`` decides (same tracker, same identity vote), from
those seconds only: a face seen later in the file may be decided with more evidence by the full run.

Previews are for checking, not for sharing: they show the original, unblurred faces beside the
result. Large pictures are scaled down and clips carry no audio; every preview is written
atomically, like every other output.
"""
from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from .errors import InputError, UsageError
from .faces import Faces
from .redact import redact
from .settings import RedactSettings, Style

log = logging.getLogger("blurcli.preview")

#: Box colours (BGR) by decision.
KEPT_BGR = (60, 190, 60)
HIDDEN_BGR = (40, 40, 225)
#: Longest side of each panel of a photo preview, and width of each half of a video preview (px).
PHOTO_PANEL_SIDE = 1280
VIDEO_PANEL_WIDTH = 960

_FONT = cv2.FONT_HERSHEY_SIMPLEX


# ---------------------------------------------------------------- drawing (pure functions)


def _fit(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Scale ``image`` down so its longest side is at most ``max_side``; returns (image, scale)."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, thickness: int) -> None:
    """Text with a dark outline so it reads on any background."""
    cv2.putText(image, text, org, _FONT, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, org, _FONT, scale, colour, thickness, cv2.LINE_AA)


def draw_decisions(
    image: np.ndarray,
    xyxy: np.ndarray,
    kept: np.ndarray,
    labels: Sequence[str] | None = None,
    *,
    scale: float = 1.0,
) -> np.ndarray:
    """A copy of ``image`` with one box per face: green where kept, red where hidden.

    Args:
        image: (h, w, 3) uint8 BGR.
        xyxy: (n, 4) boxes in the pixels of the image before ``scale`` was applied.
        kept: (n,) bool, True for faces left sharp (enrolled people).
        labels: (n,) text drawn above each box (skipped for boxes too small to carry it).
        scale: factor from box coordinates to ``image`` pixels (previews are scaled down).

    Returns:
        (h, w, 3) uint8 BGR copy.
    """
    out = image.copy()
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4) * scale
    kept = np.asarray(kept, bool).reshape(-1)
    side = max(image.shape[:2])
    thickness = max(2, round(side / 400))
    font_scale = max(0.45, side / 1300)
    for i, (x0, y0, x1, y1) in enumerate(xyxy):
        colour = KEPT_BGR if kept[i] else HIDDEN_BGR
        p0 = (int(math.floor(x0)), int(math.floor(y0)))
        p1 = (int(math.ceil(x1)), int(math.ceil(y1)))
        cv2.rectangle(out, p0, p1, colour, thickness, cv2.LINE_AA)
        if labels is not None and labels[i] and (y1 - y0) >= 16:
            _label(out, labels[i], p0, font_scale, colour)
    return out


def _label(image: np.ndarray, text: str, corner: tuple[int, int], scale: float, colour) -> None:
    """White text on a filled tag of the box's colour, just above the box's top-left corner."""
    (w, h), base = cv2.getTextSize(text, _FONT, scale, 1)
    x0 = min(max(corner[0], 0), max(image.shape[1] - w - 4, 0))
    y1 = corner[1] if corner[1] - h - base - 4 >= 0 else corner[1] + h + base + 4
    cv2.rectangle(image, (x0, y1 - h - base - 4), (x0 + w + 4, y1), colour, -1)
    cv2.putText(image, text, (x0 + 2, y1 - base - 2), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def face_labels(faces: Faces, actions: Sequence[str]) -> list[str]:
    """One short label per face: the enrolled name and distance when kept, else "hidden"."""
    labels = []
    for i, action in enumerate(actions):
        if action == "kept":
            distance = float(faces.distance[i])
            labels.append(f"{faces.identity[i]}" + ("" if math.isnan(distance) else f" {distance:.2f}"))
        else:
            labels.append("hidden")
    return labels


def titled(image: np.ndarray, title: str) -> np.ndarray:
    """``image`` under a black title bar."""
    h, w = image.shape[:2]
    bar = max(22, round(0.045 * max(h, w)))
    font_scale = bar / 40
    out = np.zeros((h + bar, w, 3), np.uint8)
    out[bar:] = image
    cv2.putText(out, title, (max(4, bar // 4), round(bar * 0.72)), _FONT, font_scale, (255, 255, 255),
                max(1, round(bar / 22)), cv2.LINE_AA)
    return out


def side_by_side(panels: Sequence[np.ndarray], gap: int = 6) -> np.ndarray:
    """Panels left to right, top-aligned, on a dark background, ``gap`` pixels apart."""
    height = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    out = np.full((height, width, 3), 32, np.uint8)
    x = 0
    for panel in panels:
        out[: panel.shape[0], x : x + panel.shape[1]] = panel
        x += panel.shape[1] + gap
    return out


def render_photo_preview(
    image: np.ndarray,
    faces: Faces,
    actions: Sequence[str],
    styles: Sequence[Style],
    redact_settings: RedactSettings = RedactSettings(),
    *,
    max_side: int = PHOTO_PANEL_SIDE,
) -> np.ndarray:
    """The preview picture of one photo whose faces were already found and decided.

    Args:
        image: (h, w, 3) uint8 BGR, upright, as read (not modified).
        faces: every face found in ``image``, identity filled.
        actions: per face "kept" or "hidden".
        styles: one result panel per style, in this order.
        redact_settings: head scale and feather of the masks (its style is replaced by each of ``styles``).
        max_side: longest side of each panel, in pixels.

    Returns:
        (H, W, 3) uint8 BGR: the boxed original, then one redacted panel per style.
    """
    hidden = np.array([a == "hidden" for a in actions], bool).reshape(-1)
    kept = ~hidden
    small, scale = _fit(image, max_side)
    n_kept, n_hidden = int(kept.sum()), int(hidden.sum())
    panels = [
        titled(
            draw_decisions(small, faces.xyxy, kept, face_labels(faces, actions), scale=scale),
            f"original: {n_hidden} hidden, {n_kept} kept",
        )
    ]
    for style in styles:
        out = image.copy()
        redact(out, faces.xyxy[hidden], replace(redact_settings, style=Style(style)), keep=faces.xyxy[kept])
        panels.append(titled(_fit(out, max_side)[0], f"--style {Style(style).value}"))
    return side_by_side(panels)


# ---------------------------------------------------------------- photos


def _write_preview(dst: Path, bgr: np.ndarray) -> None:
    """Write a preview atomically, in the format its extension names, with no metadata."""
    from .media.image_io import Picture, write_picture

    write_picture(dst, Picture(bgr=bgr), bgr)


class PhotoPreviewer:
    """Writes preview images with the same models and decisions as :class:`~blurcli.pipeline.photo.PhotoRedactor`.

    Args:
        settings: a ``PhotoSettings`` (detector, style, gallery, tolerance, pixel limit).
        styles: the result panels; default only ``settings.redact.style``.
        redactor: a ready ``PhotoRedactor`` to borrow the models from (default: a new one).
    """

    def __init__(self, settings=None, *, styles: Iterable[Style | str] | None = None, redactor=None):
        from .pipeline.photo import PhotoRedactor, PhotoSettings

        self.settings = settings if settings is not None else PhotoSettings()
        self.styles = [Style(s) for s in styles] if styles is not None else [self.settings.redact.style]
        if not self.styles:
            raise UsageError("a preview needs at least one style")
        self.redactor = redactor if redactor is not None else PhotoRedactor(self.settings)

    def redact_file(self, src: Path, dst: Path):
        """Write the preview of photo ``src`` to ``dst``; returns its ``FileReport``.

        Raises:
            UsageError: unknown output extension.
            InputError: the photo cannot be read.
            OutputError: the preview cannot be written.
        """
        from .media.image_io import load_picture, output_format
        from .pipeline.paths import ensure_parent
        from .pipeline.photo import FileReport, redact_image

        src, dst = Path(src), Path(dst)
        output_format(dst)
        r = self.redactor
        picture = load_picture(src, max_pixels=self.settings.max_pixels)
        _, faces, actions = redact_image(
            picture.bgr, detector=r.detector, matcher=r.matcher, encoder=r.encoder,
            redact_settings=self.settings.redact, identity_settings=self.settings.identity,
        )
        preview = render_photo_preview(picture.bgr, faces, actions, self.styles, self.settings.redact)
        ensure_parent(dst)
        _write_preview(dst, preview)
        log.debug("%s: preview of %d face(s) written to %s", src, len(faces), dst)
        return FileReport.of(src, dst, picture.bgr, faces, actions)


def photo_preview(src: Path | str, dst: Path | str, settings=None, *, styles: Iterable[Style | str] | None = None):
    """Write a side-by-side preview of what ``blurcli photo`` would do to one photo.

    Example:
        >>> from blurcli.preview import photo_preview
        >>> photo_preview("party.jpg", "party-preview.png", styles=["blur", "pixelate", "solid"])  # doctest: +SKIP

    Args:
        src: the photo.
        dst: the preview image (.png, .jpg, .webp ...); never the input.
        settings: a ``PhotoSettings`` (default: the defaults of ``blurcli photo``).
        styles: styles to show side by side; default only the settings' style.

    Returns:
        The ``FileReport``: every face found, its identity and whether it was kept or hidden.

    Raises:
        UsageError, InputError, OutputError, ModelError, GalleryError.
    """
    from .media.image_io import IMAGE_SUFFIXES
    from .pipeline.paths import plan_jobs

    jobs, folder_mode = plan_jobs(Path(src), Path(dst), IMAGE_SUFFIXES, "image")
    if folder_mode:
        raise UsageError(f"{src} is a folder; use preview_photos() (or blurcli photo DIR OUTDIR --preview)")
    return PhotoPreviewer(settings, styles=styles).redact_file(jobs[0].src, jobs[0].dst)


def preview_photos(
    src: Path | str,
    dst: Path | str,
    settings=None,
    *,
    styles: Iterable[Style | str] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable | None = None,
) -> list:
    """Like :func:`blurcli.pipeline.photo.redact_photos`, but each output is a preview image.

    A folder is mirrored under ``dst`` with the same relative names; a bad file is reported and
    skipped, and PartialFailure is raised at the end when any file failed.

    Raises:
        BlurcliError: file mode errors as they happen; PartialFailure in folder mode.
    """
    from .pipeline.photo import PhotoSettings, redact_photos

    return redact_photos(
        Path(src), Path(dst), settings if settings is not None else PhotoSettings(),
        on_start=on_start, on_file=on_file,
        make_redactor=lambda s: PhotoPreviewer(s, styles=styles),
    )


# ---------------------------------------------------------------- videos


def _kept_boxes(tracks, frames: int, pad: int) -> list[list[np.ndarray]]:
    """Per frame, the boxes of kept tracks: each detection's box held until the track's next one,
    and the last one for ``pad`` more frames (as long as a hidden track stays masked)."""
    per_frame: list[list[np.ndarray]] = [[] for _ in range(frames)]
    for track in tracks:
        if track.action != "kept" or not track.boxes:
            continue
        rows = sorted(track.boxes, key=lambda row: row[0])
        for k, row in enumerate(rows):
            start = int(row[0])
            end = int(rows[k + 1][0]) if k + 1 < len(rows) else int(row[0]) + pad + 1
            for f in range(start, min(end, frames)):
                per_frame[f].append(np.asarray(row[1:5], np.float32))
    return per_frame


def video_preview(
    src: Path | str,
    dst: Path | str,
    settings=None,
    *,
    seconds: float = 3.0,
    progress: Callable[[str, int, "int | None"], None] | None = None,
    redactor=None,
):
    """Write a short side-by-side clip of the first ``seconds`` of a video: boxed original | redacted.

    Faces are found, tracked and decided exactly as ``blurcli video`` does it (the same
    ``VideoRedactor`` passes, run over the first seconds only). Each half is scaled to at most
    960 px wide; the clip has no audio and keeps the frames' timestamps.

    Example:
        >>> from blurcli.preview import video_preview
        >>> video_preview("talk.mp4", "talk-preview.mp4", seconds=5)  # doctest: +SKIP

    Args:
        src: the video.
        dst: the preview clip (.mp4, .m4v, .mov or .mkv); never the input.
        settings: a ``VideoSettings`` (default: the defaults of ``blurcli video``).
        seconds: how much of the start of the video to show.
        progress: ``progress(stage, frames_done, frames_total)``, stage "analysing" then "writing".
        redactor: a ready ``VideoRedactor`` (tests inject fakes; default one built from ``settings``).

    Returns:
        The ``VideoReport`` of the previewed frames (tracks, identities, actions).

    Raises:
        UsageError: ``dst`` is the input, an unknown extension, or ``seconds`` <= 0.
        InputError: the video cannot be read.
        OutputError: the preview cannot be written.
    """
    from .media.video_io import VIDEO_EXTENSIONS, VideoReader, VideoWriter, output_format
    from .pipeline.paths import ensure_parent, plan_jobs
    from .pipeline.video import VideoRedactor, VideoReport, VideoSettings, first_frames, queue_depth

    if not seconds > 0:
        raise UsageError(f"the preview length must be more than 0 seconds, got {seconds}")
    jobs, folder_mode = plan_jobs(Path(src), Path(dst), VIDEO_EXTENSIONS, "video")
    if folder_mode:
        raise UsageError(f"{src} is a folder; a video preview is made from one video")
    src, dst = jobs[0].src, jobs[0].dst
    output_format(dst)
    redactor = redactor if redactor is not None else VideoRedactor(settings if settings is not None else VideoSettings())
    settings = redactor.settings

    # The passes of ``blurcli video``, over the first seconds only.
    analysis = redactor.analyse(src, progress, seconds=seconds)
    info, fps = analysis.info, analysis.fps
    plan, tracks = redactor.plan(analysis)
    kept = _kept_boxes(tracks, analysis.frames, max(1, round(settings.pad_s * fps)))

    # Pass 2 composes boxed original | redacted, each half scaled to VIDEO_PANEL_WIDTH at most.
    scale = min(1.0, VIDEO_PANEL_WIDTH / info.width)
    half_w, half_h = max(2, round(info.width * scale)), max(2, round(info.height * scale))
    gap = 4
    out_info = replace(info, width=2 * half_w + gap, height=half_h, coded_width=2 * half_w + gap,
                       coded_height=half_h, rotation=0, frame_count=analysis.frames, audio_streams=0,
                       color=info.color.eight_bit(), hdr=None)
    style = settings.redact.style.value
    ensure_parent(dst)
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(VideoReader(src, threads=settings.threads))
        writer = stack.enter_context(
            VideoWriter(dst, out_info, audio_from=None, crf=min(settings.crf, 23), preset=settings.preset,
                        threads=settings.threads)
        )
        frames = first_frames(reader, seconds, fps)
        redacted = redactor.redacted(frames, src, plan, analysis.frames, originals=True, depth=queue_depth(reader.info))
        for frame, original in stack.enter_context(contextlib.closing(redacted)):
            hide = plan.boxes(frame.index)
            keep = np.array(kept[frame.index], np.float32).reshape(-1, 4)
            small = cv2.resize(original, (half_w, half_h), interpolation=cv2.INTER_AREA)
            boxes = np.concatenate([keep, hide]) if len(keep) or len(hide) else np.zeros((0, 4), np.float32)
            left = draw_decisions(small, boxes, np.arange(len(boxes)) < len(keep), scale=scale)
            right = cv2.resize(frame.image, (half_w, half_h), interpolation=cv2.INTER_AREA)
            _text(left, "original", (6, 20), 0.55, (255, 255, 255), 1)
            _text(right, f"--style {style}", (6, 20), 0.55, (255, 255, 255), 1)
            frame.image = side_by_side([left, right], gap=gap)
            writer.write(frame)
            if progress:
                progress("writing", frame.index + 1, analysis.frames)
    log.debug("%s: preview of the first %d frames written to %s", src, analysis.frames, dst)
    return VideoReport.of(src, dst, analysis, tracks)
