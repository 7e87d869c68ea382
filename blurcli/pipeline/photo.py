"""Photos: detect every face, keep enrolled people sharp, hide everyone else, write without location."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import PartialFailure
from ..faces import Faces
from ..identity.policy import sample_faces, votes_for
from ..media.image_io import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, load_picture, output_format, write_picture
from ..redact import redact
from ..settings import DetectSettings, IdentitySettings, RedactSettings
from . import known_fields
from .paths import ensure_parent, plan_jobs

log = logging.getLogger("blurcli.photo")


@dataclass(frozen=True)
class PhotoSettings:
    """Everything ``blurcli photo`` needs, built once by the CLI."""

    detect: DetectSettings = DetectSettings()
    redact: RedactSettings = RedactSettings()
    identity: IdentitySettings = IdentitySettings()
    keep_location: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass
class FaceRecord:
    """One face found in a picture, for reports. ``box`` is x0, y0, x1, y1 in upright pixels."""

    box: list[float]
    score: float
    identity: str | None
    distance: float | None
    action: str  # "kept" or "hidden"
    decided_by: str = "tool"  # "tool", or "plan" when an edited report decided


@dataclass
class FileReport:
    input: str
    output: str
    width: int | None = None
    height: int | None = None
    faces: list[FaceRecord] = field(default_factory=list)
    regions: list[dict] = field(default_factory=list)  # boxes a reviewer added, see blurcli.review.plan
    error: str | None = None
    skipped: bool = False  # done by an earlier run with the same input and settings (resume)
    audit: dict | None = None  # see blurcli.audit

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FileReport":
        """The report ``to_dict`` wrote (keys it does not know are ignored)."""
        data = known_fields(cls, data)
        data["faces"] = [FaceRecord(**known_fields(FaceRecord, f)) for f in data.get("faces", [])]
        return cls(**data)

    @classmethod
    def of(cls, src: Path, dst: Path, image: np.ndarray, faces: Faces, actions: list[str]) -> "FileReport":
        """The report of one written picture: every face, its identity and what was done."""
        report = cls(str(src), str(dst), image.shape[1], image.shape[0])
        for i, action in enumerate(actions):
            distance = float(faces.distance[i])
            report.faces.append(
                FaceRecord(
                    box=[round(float(v), 1) for v in faces.xyxy[i]],
                    score=round(float(faces.score[i]), 3),
                    identity=faces.identity[i],
                    distance=None if np.isnan(distance) else round(distance, 3),
                    action=action,
                )
            )
        return report


def identify_faces(image: np.ndarray, faces: Faces, *, encoder, matcher, identity: IdentitySettings) -> Faces:
    """Fill ``faces.identity``/``distance`` by the identity rule of every mode (a photo's face is a
    track of one frame, see :mod:`blurcli.identity.policy`); faces not worth a sample stay unknown."""
    if matcher is None or matcher.empty or not len(faces):
        return faces
    votes = votes_for(identity, matcher, still=True)
    faces.track_id = np.arange(len(faces))
    sample_faces(votes, image, faces, 0, encoder=encoder, matcher=matcher)
    for i in range(len(faces)):
        samples = votes.samples(i)
        faces.identity[i] = votes.decision(i)
        faces.distance[i] = samples[0].distance if samples else np.nan
    return faces


def redact_image(
    image: np.ndarray,
    *,
    detector,
    matcher=None,
    encoder=None,
    redact_settings: RedactSettings = RedactSettings(),
    identity_settings: IdentitySettings = IdentitySettings(),
) -> tuple[np.ndarray, Faces, list[str]]:
    """Hide every face of ``image`` that is not an enrolled person.

    Args:
        image: (h, w, 3) uint8 BGR, upright. Not modified.
        detector: a ``FaceDetector``.
        matcher: a gallery ``Matcher``, or None when nobody is enrolled (then every face is hidden).
        encoder: a ``FaceEncoder``; needed only with a non-empty matcher.

    Returns:
        (redacted copy, faces with identity filled, action per face: "kept" or "hidden").
    """
    faces, actions = decide_faces(image, detector=detector, matcher=matcher, encoder=encoder, identity_settings=identity_settings)
    keep = faces.enrolled
    out = image.copy()
    redact(out, faces.xyxy[~keep], redact_settings, keep=faces.xyxy[keep])
    return out, faces, actions


def decide_faces(
    image: np.ndarray, *, detector, matcher=None, encoder=None, identity_settings: IdentitySettings = IdentitySettings()
) -> tuple[Faces, list[str]]:
    """Find every face of ``image`` and decide it: "kept" for an enrolled person, else "hidden"
    (``blurcli photo``'s decisions, also what ``blurcli review`` shows)."""
    faces = detector.detect(image, sideways=detector.settings.sideways)
    faces = identify_faces(image, faces, encoder=encoder, matcher=matcher, identity=identity_settings)
    return faces, ["kept" if k else "hidden" for k in faces.enrolled]


class PhotoRedactor:
    """Loads the models once and redacts any number of photos with them."""

    def __init__(self, settings: PhotoSettings = PhotoSettings()):
        from ..detect import load_detector
        from ..identity.gallery import Gallery

        self.settings = settings
        self.detector = load_detector(settings.detect)
        self.matcher = Gallery.open(settings.identity.gallery).matcher(settings.identity.tolerance)
        self.encoder = None
        if not self.matcher.empty:
            from ..identity.encoder import FaceEncoder

            self.encoder = FaceEncoder()

    def redact_file(self, src: Path, dst: Path) -> FileReport:
        """Redact one photo file into ``dst`` (atomically). Raises BlurcliError subclasses."""
        output_format(dst)  # unknown extension: fail before any work
        picture = load_picture(src, max_pixels=self.settings.max_pixels)
        out, faces, actions = redact_image(
            picture.bgr,
            detector=self.detector,
            matcher=self.matcher,
            encoder=self.encoder,
            redact_settings=self.settings.redact,
            identity_settings=self.settings.identity,
        )
        ensure_parent(dst)
        write_picture(dst, picture, out, keep_location=self.settings.keep_location)
        return FileReport.of(src, dst, picture.bgr, faces, actions)


def redact_photos(
    src: Path,
    dst: Path,
    settings: PhotoSettings = PhotoSettings(),
    *,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable[[FileReport], None] | None = None,
    make_redactor: Callable[[PhotoSettings], "PhotoRedactor"] | None = None,
    jobs: int = 1,
    ray_address: str | None = None,
    force: bool = False,
    plan=None,
) -> list[FileReport]:
    """Redact one photo, or every photo under a folder (mirrored under ``dst``).

    In folder mode a bad file is reported and skipped; a PartialFailure is raised at the end
    (after every other file was written) when any file failed. A photo already done by an
    earlier run with the same input and settings is skipped (``force`` redoes it), see
    :mod:`blurcli.pipeline.resume`.

    Args:
        on_start: called once with the number of files.
        on_file: called after each file with its report (``error`` set when it failed).
        make_redactor: builds the object whose ``redact_file(src, dst)`` writes each output
            (default :class:`PhotoRedactor`; previews plug in their own, run here, never resumed).
        jobs: photos at once (processes), see :mod:`blurcli.pipeline.batch`.
        ray_address: run on this Ray cluster instead.
        plan: a :class:`~blurcli.review.plan.Plan`: render its actions instead of deciding (``--plan``).

    Raises:
        BlurcliError: file mode errors as they happen; PartialFailure in folder mode.
    """
    from .batch import Events, WorkerSpec, run_tasks, tasks_for

    jobs_list, folder_mode = plan_jobs(Path(src), Path(dst), IMAGE_SUFFIXES, "image")
    if not folder_mode:
        output_format(jobs_list[0].dst)
    preview = make_redactor is not None
    if plan is not None:
        import functools

        from ..review.plan import PhotoPlanRenderer

        make_redactor = functools.partial(PhotoPlanRenderer, plan=plan)
    spec = WorkerSpec(make_redactor or PhotoRedactor, settings, FileReport, audit=not preview)
    tasks = tasks_for([(job.src, job.dst) for job in jobs_list], Path(dst), folder_mode=folder_mode and not preview, force=force)
    if on_start:
        on_start(len(tasks))
    reports = run_tasks(
        tasks, spec, folder_mode=folder_mode, jobs=1 if preview else jobs,
        ray_address=None if preview else ray_address, events=Events(file=on_file),
    )
    failed = [r for r in reports if r.error]
    if failed:
        raise PartialFailure(f"{len(failed)} of {len(reports)} files failed; the others were written", reports)
    return reports
