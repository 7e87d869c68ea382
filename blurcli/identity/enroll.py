"""Learn a person from photos (or short videos): exactly one clear face per photo, or it is refused.

A video gives several samples, chosen by :mod:`blurcli.identity.video_samples` under the same rules.

Which face is being enrolled must never be a guess (face_recognition's CLI silently keeps the
first of several faces): a wrong face enrolled is a stranger kept sharp. The rules:

- The enrolled face is the largest face the detector is confident about (score >= MIN_SCORE),
  at least MIN_FACE_PX tall: smaller faces give encodings too unreliable to be a reference.
- Any other face counts as a second face, whatever its score, unless it is background: shorter
  than BACKGROUND_RATIO (1/4) of the main face, i.e. someone about four times further from the
  camera. A box that mostly overlaps the main face is the same face found twice, not a second one.
- With ``largest=True`` other faces are ignored and the largest confident one is enrolled.

Either every photo is enrolled or none is: refusals are collected and reported together.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import EnrolmentError, UsageError
from ..faces import Faces
from ..settings import DEFAULT_TOLERANCE
from .encoder import FaceEncoder
from .gallery import Gallery, Person, check_name
from .matcher import Matcher
from .video_samples import camera_frames, is_video, samples_from_frames, video_samples

log = logging.getLogger("blurcli.enroll")

#: Smallest enrolled face (detector box height, px). Below ~60 px dlib's encodings of the same
#: person spread out (measured: median same-person distance 0.41 at 60 px, 0.45 at 40 px).
MIN_FACE_PX = 60
#: Detector confidence the enrolled face needs; weaker detections are no reference.
MIN_SCORE = 0.5
#: Other faces shorter than this fraction of the main face are background, not a second person.
BACKGROUND_RATIO = 0.25
#: A box whose area lies this much inside the main face's box is the same face.
SAME_FACE_OVERLAP = 0.5
#: A new photo further than this from every other photo of the person is probably someone else
#: (dlib's own same-person limit); it is enrolled, with a warning.
UNLIKE_DISTANCE = 0.6


class SeveralFaces(EnrolmentError):
    """A picture shows more than one person (which one to enrol is never a guess)."""


@dataclass(frozen=True)
class EnrolledPhoto:
    """One accepted photo.

    Attributes:
        photo: the photo as given.
        box: (x0, y0, x1, y1) of the enrolled face in the upright photo's pixels.
        face_px: the face's height in pixels.
        ignored_faces: other faces in the photo that were not enrolled (background, or --largest).
    """

    photo: Path
    box: tuple[float, float, float, float]
    face_px: int
    ignored_faces: int
    at_s: float | None = None  # the frame's time, for a sample taken from a video


@dataclass(frozen=True)
class EnrolmentResult:
    """What ``enroll`` did.

    Attributes:
        person: the person as saved (samples counts every photo ever enrolled for them).
        gallery: the gallery file written.
        photos: the photos enrolled now, in the order given.
        created: True when the person is new.
        warnings: doubts worth showing the user (already logged as warnings too).
    """

    person: Person
    gallery: Path
    photos: tuple[EnrolledPhoto, ...]
    created: bool
    warnings: tuple[str, ...]


def enroll(
    photos: Iterable[Path | str],
    *,
    name: str | None = None,
    gallery_path: Path | str | None = None,
    largest: bool = False,
    max_pixels: int | None = None,
    detector=None,
    encoder: FaceEncoder | None = None,
    camera=None,
    seconds: float = 10.0,
) -> EnrolmentResult:
    """Add one person's face from each photo to the gallery.

    Args:
        photos: one or more photo (or short video) files of the same person.
        name: who they are; default the first photo's file name without extension (me.jpg -> "me").
            An existing name gets the new samples added.
        gallery_path: the gallery file (None: ``$BLURCLI_GALLERY`` or the user data folder).
        largest: enrol the largest face of photos that show several people.
        max_pixels: refuse photos with more pixels than this (default: the image reader's limit).
        detector: a FaceDetector (default ``blurcli.detect.load_detector()``).
        encoder: a FaceEncoder (default a new one).
        camera: a live source (``SourceSpec``, e.g. ``SourceSpec.camera(0)``) to enrol from as
            well, read for ``seconds``, under the rules of a video.

    Returns:
        What was enrolled.

    Raises:
        UsageError: no photos given.
        InputError: a photo cannot be read.
        EnrolmentError: a photo has no usable face or several faces (nothing is saved then).
        GalleryError: the gallery cannot be read or written, or the name is not valid.
    """
    paths = _unique([Path(p) for p in photos])
    if not paths and camera is None:
        raise UsageError("give at least one photo or video to enroll, or --device N")
    if name is None and not paths:
        raise UsageError("give --name: who is in front of the camera")
    name = check_name(name if name is not None else paths[0].stem)
    gallery = Gallery.open(gallery_path)  # a damaged gallery fails before minutes of work
    detector = detector if detector is not None else _default_detector()
    encoder = encoder if encoder is not None else FaceEncoder()

    from ..media.image_io import read_image

    accepted: list[EnrolledPhoto] = []
    encodings: list[np.ndarray] = []
    refusals: list[str] = []
    for path in paths + ([camera] if camera is not None else []):
        if path is camera or is_video(path):
            try:
                if path is camera:
                    frames, found = samples_from_frames(
                        camera_frames(camera, seconds), camera.describe(), detector=detector, encoder=encoder, largest=largest
                    )
                    path = Path(camera.url)
                else:
                    frames, found = video_samples(path, detector=detector, encoder=encoder, largest=largest)
            except EnrolmentError as exc:
                refusals.append(str(exc))
                continue
            for (at, box, face_px, ignored), encoding in zip(frames, found):
                accepted.append(EnrolledPhoto(path, box, face_px, ignored, at))
                encodings.append(encoding)
            log.info("%s: %d sample(s) from frames at %s s", path, len(frames), ", ".join(f"{f[0]:g}" for f in frames))
            continue
        image = read_image(path) if max_pixels is None else read_image(path, max_pixels=max_pixels)
        faces = detector.detect(image, upscale_small=False)  # enrolment needs no tiny faces
        try:
            index, ignored = choose_face(faces, largest=largest)
        except EnrolmentError as exc:
            refusals.append(f"{path}: {exc}")
            continue
        encoding = encoder.encode(image, faces.xyxy[index : index + 1])[0]
        if not np.isfinite(encoding).all():
            refusals.append(f"{path}: the face could not be encoded; use a sharper, front-facing photo")
            continue
        box = tuple(round(float(v), 1) for v in faces.xyxy[index])
        accepted.append(EnrolledPhoto(path, box, int(round(float(faces.height[index]))), ignored))
        encodings.append(encoding)
        if ignored:
            log.info("%s: enrolled the face at %s, ignored %d other face(s)", path, box, ignored)

    if refusals:
        raise EnrolmentError(
            ("nothing was enrolled; " if len(paths) > 1 else "")
            + "; ".join(refusals)
        )

    new = np.stack(encodings)
    warnings = _doubts(gallery, name, new, accepted)
    for message in warnings:
        log.warning("%s", message)
    created = name not in gallery
    gallery.add(name, new)
    gallery.save()
    person = next(p for p in gallery.people() if p.name == name)
    return EnrolmentResult(person, gallery.path, tuple(accepted), created, tuple(warnings))


def choose_face(faces: Faces, *, largest: bool = False) -> tuple[int, int]:
    """Pick the face to enrol from one photo's detections.

    Args:
        faces: every face the detector found in the photo.
        largest: take the largest confident face even when others are present.

    Returns:
        (index of the face to enrol, number of other faces ignored).

    Raises:
        EnrolmentError: no confident face, the face is too small, or several faces (without largest).
    """
    if not len(faces):
        raise EnrolmentError("no face found; use a photo where the face is clearly visible")
    heights = faces.height
    confident = np.flatnonzero(faces.score >= MIN_SCORE)
    if not len(confident):
        raise EnrolmentError(
            f"no clear face found (only {len(faces)} uncertain detection(s)); "
            "use a sharp, well-lit photo of the face looking at the camera"
        )
    main = int(confident[np.argmax(heights[confident])])
    height = float(heights[main])
    if height < MIN_FACE_PX:
        raise EnrolmentError(
            f"the face is only {height:.0f} px tall, too small to recognise reliably; "
            f"use a photo where the face is at least {MIN_FACE_PX} px tall"
        )
    others = [i for i in range(len(faces)) if i != main and not _same_face(faces.xyxy[main], faces.xyxy[i])]
    competing = [i for i in others if heights[i] >= BACKGROUND_RATIO * height]
    if competing and not largest:
        raise SeveralFaces(
            f"{len(competing) + 1} faces found; use a photo of this person alone, "
            "or pass --largest to enrol the largest face"
        )
    return main, len(others)


def _same_face(main: np.ndarray, other: np.ndarray) -> bool:
    """True when most of ``other``'s box lies inside ``main``'s (one face detected twice)."""
    lt = np.maximum(main[:2], other[:2])
    rb = np.minimum(main[2:], other[2:])
    inter = float(np.clip(rb - lt, 0, None).prod())
    area = float(np.clip(other[2:] - other[:2], 0, None).prod())
    return area > 0 and inter / area >= SAME_FACE_OVERLAP


def _doubts(gallery: Gallery, name: str, new: np.ndarray, photos: list[EnrolledPhoto]) -> list[str]:
    """Warnings for photos that look like someone else, or unlike the rest of this person's photos."""
    doubts = []
    existing = gallery.encodings(name) if name in gallery else np.zeros((0, new.shape[1]), np.float32)
    others = [p.name for p in gallery.people() if p.name != name]
    if others:
        matcher = Matcher(others, [gallery.encodings(o) for o in others], DEFAULT_TOLERANCE)
        names, distances = matcher.match(new)
        for photo, who, distance in zip(photos, names, distances):
            if who is not None:
                doubts.append(
                    f"{photo.photo} looks like {who!r}, who is already enrolled (distance {distance:.2f}); "
                    f"check that it really shows {name!r}"
                )
    for i, photo in enumerate(photos):
        reference = np.concatenate([existing, np.delete(new, i, axis=0)])
        if not len(reference):
            continue
        nearest = float(np.linalg.norm(reference - new[i], axis=1).min())
        if nearest > UNLIKE_DISTANCE:
            doubts.append(
                f"{photo.photo} does not look like the other photos of {name!r} (distance {nearest:.2f} > "
                f"{UNLIKE_DISTANCE}); if it shows someone else, run: blurcli forget {name!r} and enroll again"
            )
    return doubts


def _unique(paths: list[Path]) -> list[Path]:
    seen, out = set(), []
    for path in paths:
        key = path.resolve() if path.exists() else path
        if key in seen:
            log.warning("%s was given twice; enrolled once", path)
            continue
        seen.add(key)
        out.append(path)
    return out


def _default_detector():
    from ..detect import load_detector

    return load_detector()
