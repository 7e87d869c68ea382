"""Enrolment samples from a short video of one person: varied good frames, or a refusal.

A selfie clip shows the face front, turned, near and far; a few of those frames make a stronger
reference than one photo. The rules are those of a photo (:func:`blurcli.identity.enroll.choose_face`)
applied to frames sampled every :data:`STEP_S`, plus one for videos: every usable frame must show
the same person (within :data:`~blurcli.identity.enroll.UNLIKE_DISTANCE` of the clip's medoid), so
a clip where someone else appears alone, or a second person in any sampled frame, is refused as a
whole. Of the usable frames, :data:`MAX_SAMPLES` are kept by farthest-point selection in encoding
space: the clearest face first, then each time the frame least like those already taken, which
picks the turned and the far faces rather than ten copies of the same pose. A camera
(``blurcli enroll --device 0 --seconds 10``) is read the same way, as its pictures come.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EnrolmentError

#: Seconds between the frames looked at.
STEP_S = 0.25
#: Longest stretch of a video read for enrolment (a selfie clip is a few seconds).
MAX_SECONDS = 60.0
#: Samples kept from one video.
MAX_SAMPLES = 8


def video_samples(path: Path, *, detector, encoder, largest: bool = False, seconds: float | None = None):
    """(frames, encodings) to enrol from the video file ``path``; see :func:`samples_from_frames`.

    Raises:
        InputError: the video cannot be read.
        EnrolmentError: no usable face in any frame, two people in a frame, or two people across frames.
    """
    return samples_from_frames(
        file_frames(path, min(seconds or MAX_SECONDS, MAX_SECONDS)), str(path),
        detector=detector, encoder=encoder, largest=largest,
    )


def file_frames(path: Path, seconds: float):
    """(time s, BGR image) of a video file, one every :data:`STEP_S`, for its first ``seconds``."""
    from ..media.video_io import VideoReader

    with VideoReader(path) as reader:
        fps = float(reader.info.average_rate or 30)
        step = max(1, int(round(STEP_S * fps)))
        for index, frame in enumerate(reader):
            if index / fps > seconds:
                break
            if index % step == 0:
                yield index / fps, frame.image


def camera_frames(spec, seconds: float, *, now=None):
    """(time s, BGR image) from a live source (``--device``), one every :data:`STEP_S` for
    ``seconds`` of its pictures, read as they come (the person turns their head meanwhile).

    Raises:
        InputError: the camera cannot be opened or read.
    """
    import av

    from ..errors import InputError
    from ..live.capture import open_source, to_bgr

    container = open_source(spec)
    try:
        stream = container.streams.video[0] if container.streams.video else None
        if stream is None:
            raise InputError(f"{spec.describe()} has no video")
        first = next_at = None
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else 0.0
                first = t if first is None else first
                if t - first > seconds:
                    break
                if next_at is None or t - first >= next_at:
                    next_at = (t - first) + STEP_S
                    yield t - first, to_bgr(frame)
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"reading {spec.describe()} failed: {exc}") from None
    finally:
        container.close()


def samples_from_frames(frames, name: str, *, detector, encoder, largest: bool = False):
    """(frames, encodings) to enrol from ``frames`` ((time s, BGR image) pairs of one person):
    each frame as (time s, box, face px, ignored faces).

    Raises:
        EnrolmentError: no usable face in any frame, two people in a frame, or two people across frames.
    """
    from .enroll import UNLIKE_DISTANCE, SeveralFaces, choose_face

    found: list[tuple[float, tuple, int, int]] = []
    encodings: list[np.ndarray] = []
    clarity: list[float] = []  # score x height: the first sample is the clearest, nearest face
    refusals: list[str] = []
    for at, image in frames:
        faces = detector.detect(image, upscale_small=False)
        try:
            main, ignored = choose_face(faces, largest=largest)
        except SeveralFaces as exc:  # a second person: the whole video is refused
            raise EnrolmentError(f"{name}: at {at:.1f} s {exc}") from None
        except EnrolmentError as exc:  # no usable face in this frame: the next one may have it
            refusals.append(str(exc))
            continue
        encoding = encoder.encode(image, faces.xyxy[main : main + 1])[0]
        if not np.isfinite(encoding).all():
            continue
        box = tuple(round(float(v), 1) for v in faces.xyxy[main])
        found.append((round(at, 2), box, int(round(float(faces.height[main]))), ignored))
        encodings.append(encoding)
        clarity.append(float(faces.score[main]) * float(faces.height[main]))
    if not found:
        reason = refusals[0] if refusals else "it holds no video frames"
        raise EnrolmentError(f"{name}: no frame could be enrolled ({reason})")
    stack = np.stack(encodings)
    distances = np.linalg.norm(stack[:, None] - stack[None], axis=2)
    medoid = int(np.argmin(distances.sum(axis=1)))
    strangers = np.flatnonzero(distances[medoid] > UNLIKE_DISTANCE)
    if len(strangers):
        at = found[int(strangers[0])][0]
        raise EnrolmentError(
            f"{name}: the face at {at:.1f} s is not the person in the rest of the video (distance "
            f"{distances[medoid, strangers[0]]:.2f}); use a video of this person alone"
        )
    chosen = [int(np.argmax(clarity))]
    while len(chosen) < min(MAX_SAMPLES, len(found)):
        nearest = distances[:, chosen].min(axis=1)
        nearest[chosen] = -1.0
        chosen.append(int(np.argmax(nearest)))
    chosen.sort()
    return [found[i] for i in chosen], stack[chosen]


def is_video(path: Path) -> bool:
    from ..media.video_io import VIDEO_EXTENSIONS

    return Path(path).suffix.lower() in VIDEO_EXTENSIONS

