"""Frozen settings objects: the CLI builds one and hands it to the library, which never parses flags."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class Style(str, enum.Enum):
    """How a hidden face is drawn."""

    blur = "blur"
    pixelate = "pixelate"
    solid = "solid"


#: Largest dlib encoding distance still accepted as the enrolled person. face_recognition's 0.6
#: is too loose for a privacy tool: on the shared photos (benchmarks/quality_identity.py) the two
#: closest different people measured 0.514, and detector-box jitter moves an encoding by up to
#: ~0.09, while 86% of same-person pairs are <= 0.45 (94% <= 0.50).
DEFAULT_TOLERANCE = 0.45


@dataclass(frozen=True)
class DetectSettings:
    """What the face detector looks for.

    Attributes:
        threshold: CenterFace heat-map score above which a face is reported. Low on purpose:
            a false mask costs a little picture, a missed face costs someone's privacy. 0.2 keeps
            the dogs photo clean (a dog's face scores 0.157) and hides 92.5% of faces >= 10 px on
            the shared set; 0.3 hides 88.1%.
        max_side: longest side, in pixels, of the picture handed to the detector at scale 1.
        upscale_small: also run the detector on 2x-upscaled overlapping tiles (faces < 20 px) and
            on a half-size copy (large blurred faces).
        yunet: also run YuNet (:mod:`blurcli.detect.yunet`) and hide the union of both detectors.
            Off by default: measured on the shared WIDER photos, YuNet adds faces only below a
            score of ~0.8 (union with CenterFace at 1280 px: 84.8% of faces >= 10 px found alone,
            91.5% with YuNet at 0.3, 86.5% at 0.6, 84.8% at 0.8), and it scores the dogs photo's
            dogs 0.77 and 0.65, so the union cannot help without masking animals. On crowd pans at
            0.8 it changed nothing (97.3% / 97.1%, benchmarks/crowd.py).
        yunet_threshold: YuNet score above which a face is reported.
        yunet_max_side: longest side of the picture YuNet sees (it is cheap: full 1080p frames).
        sideways: photos are also searched turned 90 and 270 degrees (faces lying sideways: a
            turned photo without EXIF, people lying down), see :meth:`FaceDetector.detect`.
        backend: which runtime runs CenterFace: ``"auto"`` (see :func:`blurcli.detect.auto_backend`),
            ``"int8"``, ``"opencv"`` or ``"onnxruntime"``; the benchmarks compare them with it.
    """

    threshold: float = 0.2
    max_side: int = 1280
    upscale_small: bool = True
    yunet: bool = False
    yunet_threshold: float = 0.8
    yunet_max_side: int = 1920
    sideways: bool = True
    backend: str = "auto"


@dataclass(frozen=True)
class RedactSettings:
    """How faces are hidden.

    Attributes:
        style: blur, pixelate or solid.
        head_scale: mask ellipse size relative to the detection box, so hair, ears and
            chin are covered too (the detector's box is brows to chin). 1.8 covers the corners of
            the face box, which otherwise keep enough detail to identify (>= 10 px faces hidden:
            92.6% at 1.5, 94.0% at 1.8 on the shared set).
        feather: fraction of the mask's radius over which it fades into the picture.
    """

    style: Style = Style.blur
    head_scale: float = 1.8
    feather: float = 0.15


@dataclass(frozen=True)
class IdentitySettings:
    """Who is kept sharp.

    Attributes:
        gallery: path of the gallery file (None: the user's data directory, or BLURCLI_GALLERY).
        tolerance: largest encoding distance accepted as an enrolled person.
        min_face_px: faces smaller than this are never recognised (too few pixels to be sure) and stay hidden.
    """

    gallery: Path | None = None
    tolerance: float = DEFAULT_TOLERANCE
    min_face_px: int = 40
