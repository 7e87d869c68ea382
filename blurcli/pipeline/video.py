"""Videos: two passes, so that every track's decision holds for its whole life.

Pass 1 decodes the file, detects faces on every Nth frame (N follows the picture, see
:mod:`blurcli.track.cadence`), tracks them in scene coordinates (the camera's pan taken out, see
:mod:`blurcli.track.motion`), resets the tracker at shot cuts, and samples face encodings along
each track for the identity vote (:mod:`blurcli.identity.policy`). Nothing is written.

Between the passes every track gets its decision (an enrolled name, or unknown) and one box per
frame: interpolated between its detections, padded before its first and after its last one.

Pass 2 decodes the file again, hides the boxes of every track that is not an enrolled person in
the decoded YUV planes (no BGR round trip), and writes the frames with their original timestamps
and the audio copied. A file that fails to decode fails in pass 1, before any output exists; an
interrupted pass 2 leaves no output.

With nobody enrolled no decision waits for the end of the file, and the same stages run in one
decode, the writing a fixed look-ahead behind the detector (:mod:`blurcli.pipeline.one_pass`).
"""
from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import InputError, PartialFailure, UsageError
from ..faces import Faces
from ..redact import redact_frame
from ..settings import DetectSettings, IdentitySettings, RedactSettings
from ..identity.policy import IdentityVotes, sample_faces, votes_for
from ..track import CutDetector, DetectionCadence, FaceTracker
from ..track.motion import CameraMotion, face_shifts, shift_boxes
from ..track.plan import MaskPlan, TrackLog, track_boxes
from . import known_fields
from .paths import check_not_input, ensure_parent

log = logging.getLogger("blurcli.video")

#: progress(stage, frames_done, frames_total_or_None); stage is "analysing" or "writing".
Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class VideoSettings:
    """Everything ``blurcli video`` needs, built once by the CLI.

    Attributes:
        detect: detector threshold (its max_side and small-face pass are not used for video).
        redact: how hidden faces are drawn.
        identity: gallery, tolerance and smallest recognisable face.
        crf: x264 constant rate factor of the output (lower is better and bigger).
        preset: x264/x265 preset (speed against file size).
        codec: "h264" or "hevc"; None = HEVC Main 10 for a 10-bit input, H.264 for 8 bits (see
            :mod:`blurcli.media.codec`).
        detect_every: run the detector on every Nth frame; None = auto (every 1-4 frames at 25-30
            fps: at every cut, soon after a new face, and every frame while faces move fast).
        detect_max_side: longest side of the copy the detector sees; None = auto, see
            :func:`auto_detect_side` (auto also runs the small-face tiles, see :class:`Analyser`).
        pad_s: how long a track is still hidden before its first and after its last detection.
        threads: decoder/encoder threads (0 = FFmpeg's choice).
    """

    detect: DetectSettings = DetectSettings()
    redact: RedactSettings = RedactSettings()
    identity: IdentitySettings = IdentitySettings()
    crf: int = 20
    preset: str = "veryfast"
    codec: str | None = None
    detect_every: int | None = None
    detect_max_side: int | None = None
    pad_s: float = 0.5
    threads: int = 0


@dataclass
class TrackReport:
    """One face track in a report.

    Attributes:
        track_id: the tracker's id, unique within the file.
        first_frame, last_frame: first and last frame the face was detected in.
        hidden_from, hidden_to: frames the track was masked in (padding included), None if kept.
        boxes: one row per detection: [frame, x0, y0, x1, y1, score] in upright source pixels.
        samples: identity samples: {"frame", "name", "distance"}.
        identity: the enrolled name the vote decided, or None.
        action: "kept" or "hidden".
    """

    track_id: int
    first_frame: int
    last_frame: int
    hidden_from: int | None
    hidden_to: int | None
    boxes: list[list[float]]
    samples: list[dict]
    identity: str | None
    action: str
    decided_by: str = "tool"  # "tool", or "plan" when an edited report decided


@dataclass
class VideoReport:
    """What ``redact_video`` did to one file.

    ``detected_frames`` counts the frames the detector ran on, ``full_size_detections`` those of
    them it saw at the full detection size (the others at the cheap 640 px copy, see
    :class:`Analyser`), ``proof_detections`` those the float network ran on (the others ran the
    fast one), ``small_face_passes`` those that also ran the small-face tiles. ``camera``
    holds the camera's pan per frame, so that an edited report (``--plan``) interpolates and pads
    each track in scene coordinates exactly as this run did."""

    input: str
    output: str
    width: int = 0
    height: int = 0
    frames: int = 0
    fps: float = 0.0
    detected_frames: int = 0
    full_size_detections: int = 0
    proof_detections: int = 0
    small_face_passes: int = 0
    cuts: list[int] = field(default_factory=list)
    tracks: list[TrackReport] = field(default_factory=list)
    regions: list[dict] = field(default_factory=list)  # boxes a reviewer added, see blurcli.review.plan
    camera: list[list[float]] = field(default_factory=list)  # scene -> frame offset [dx, dy] of every frame
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    skipped: bool = False  # done by an earlier run with the same input and settings (resume)
    audit: dict | None = None  # see blurcli.audit

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, src: Path, dst: Path | None, analysis: "Analysis", tracks: list[TrackReport]) -> "VideoReport":
        """The report of pass 1's ``analysis`` and its decided ``tracks`` (``dst`` None: nothing written)."""
        return cls(
            input=str(src), output=None if dst is None else str(dst), width=analysis.info.width,
            height=analysis.info.height, frames=analysis.frames, fps=round(analysis.fps, 6),
            detected_frames=analysis.detected_frames, full_size_detections=analysis.full_size_detections,
            proof_detections=analysis.proof_detections, small_face_passes=analysis.small_face_passes,
            cuts=analysis.cuts, tracks=tracks, camera=camera_record(analysis.offsets),
        )

    @classmethod
    def from_dict(cls, data: dict) -> "VideoReport":
        """The report ``to_dict`` wrote (keys it does not know are ignored)."""
        data = known_fields(cls, data)
        data["tracks"] = [TrackReport(**known_fields(TrackReport, t)) for t in data.get("tracks", [])]
        return cls(**data)

    @property
    def hidden(self) -> int:
        return sum(t.action == "hidden" for t in self.tracks)

    @property
    def kept(self) -> int:
        return sum(t.action == "kept" for t in self.tracks)


@dataclass
class Analysis:
    """Pass 1's result: the tracks, their identity votes and the shot cuts."""

    info: object  # blurcli.media.video_io.VideoInfo
    frames: int
    fps: float
    detected_frames: int
    cuts: list[int]
    logs: dict[int, TrackLog]
    votes: IdentityVotes
    offsets: np.ndarray | None = None  # (frames, 2) camera offset per frame; track logs are in scene coordinates
    full_size_detections: int = 0  # detector runs on the full-size copy (the others on the cheap one)
    small_face_passes: int = 0  # of those, the ones that also ran the small-face tiles
    proof_detections: int = 0  # detector runs on the float network (the others on the fast one)


#: Bytes of decoded frames one prefetch queue may hold: 8 frames up to 1080p, 3 of a 10-bit 4K
#: picture (25 MB each), where two queues of 8 had added 0.4 GB to the peak.
QUEUE_BYTES = 80 * 1024 * 1024


def frame_bytes(info) -> int:
    """Bytes of one decoded 4:2:0 frame of ``info`` (two a sample above 8 bits)."""
    sample = 2 if info.color.bits > 8 else 1
    return info.coded_width * info.coded_height * 3 // 2 * sample


def queue_depth(info) -> int:
    """How many frames of ``info``'s size a prefetch queue holds (2 to 8)."""
    return max(2, min(8, QUEUE_BYTES // max(frame_bytes(info), 1)))


def _prefetch(items: Iterable, depth: int = 8) -> Iterator:
    """Iterate ``items`` in a worker thread, ``depth`` ahead (decoding goes on while a face is
    encoded or detected); errors are re-raised here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((end, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put((end, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator: run its cleanup (an inner _prefetch stops) here
                close()

    worker = threading.Thread(target=work, name="blurcli-decode", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if item is end:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def first_frames(reader, seconds: float, fps: float) -> Iterator:
    """The reader's frames of the first ``seconds`` (by timestamp; by count for frames without one)."""
    limit = max(1, round(seconds * fps))
    start = None
    for frame in reader:
        if math.isnan(frame.time):
            if frame.index >= limit:
                return
        else:
            start = frame.time if start is None else start
            if frame.index > 0 and frame.time - start >= seconds - 1e-6:
                return
        yield frame


#: Longest side of the detection copy in auto mode for frames larger than 1280 px.
LARGE_FRAME_DETECT_SIDE = 960


def auto_detect_side(info) -> int:
    """Detector input size for a video: the frame itself up to 1280 px, 960 px above.

    Crowds are where faces are small, and CenterFace needs faces of ~10 px in its input. On crowd
    pans over the shared WIDER photos (benchmarks/crowd.py, 4 photos, nobody enrolled) a 720p
    frame seen at 640 px hid 87.9% of the faces of 10 px and more (10-20 px: 74.0%), seen whole
    97.3% (93.0%), at about half the speed (30.7 -> 16.4 fps). A 1080p frame seen at 960 px hid
    93.1% (18.0 fps), at 1280 px 93.6% (12.9 fps), whole 92.4% (6.8 fps): CenterFace does not
    gain from more pixels there (its large faces suffer), so 1080p and up keep 960.
    """
    longest = max(info.width, info.height) if info is not None else 0
    if not longest:
        return LARGE_FRAME_DETECT_SIDE
    return longest if longest <= 1280 else LARGE_FRAME_DETECT_SIDE


#: Longest side of the cheap detection copy used between full-size passes when every face is large.
COARSE_DETECT_SIDE = 640
#: A face that would be this small (pixels) in the cheap copy keeps the detector on full-size
#: passes: CenterFace starts to miss faces below it (48 px of a 720p frame, 72 px of a 1080p one).
SMALL_IN_COARSE_PX = 24
#: Longest time between two proof passes: the float network at the full detection size (below the
#: 0.5 s padding, so a small or weak face that appears between two of them is still masked from its
#: first frame: its track is padded back to there). Between them the fast network runs
#: (:func:`blurcli.detect.load_fast_detector`: int8 on a CPU, 2.5-3x cheaper), at full size while
#: small faces are about, else on the 640 px copy. The int8 rounding costs a weak face some score
#: (a lone 16 px face: 0.12-0.21 against 0.29-0.34); the proof passes find it, and its track's
#: padding covers it from one to the next (``tests/test_video_pipeline.py``, the small newcomer).
FINE_EVERY_S = 0.4
#: Longest time between two small-face passes (2x-upscaled tiles where the base pass found faces
#: under 40 px in its input, :meth:`FaceDetector.add_small`, on the fast network), run on a
#: full-size detection at the start of every shot and then at most this often. A face only the
#: tiles find is hidden from ``pad_s`` (0.5 s) before to 0.5 s after each pass that finds it, so it
#: stays covered from one pass to the next. On the 8-photo crowd pans (benchmarks/crowd.py, 2
#: cores, the float network throughout) faces >= 10 px hidden
#: went from 94.9 to 96.4% at 720p (10-20 px: 94.1 -> 98.0%) and from 86.9 to 95.3% at 1080p
#: (55.1 -> 90.0%), at 9.5 instead of 12.7 and 11.6 instead of 16.0 frames a second. Every tile
#: about every 0.25 s gave 96.3% at 720p and 96.1% at 1080p at half the frame rate.
SMALL_PASS_EVERY_S = 0.5


class Analyser:
    """Pass 1, one frame at a time: cuts, detection cadence, tracking and identity samples.

    A proof pass (the float network at the full detection size, :func:`auto_detect_side`) runs at
    the start of every shot and at least every 0.4 s (:data:`FINE_EVERY_S`); the detections in
    between run the fast network (int8 on a CPU), at full size while small faces are about (any
    face that would be under 24 px in a 640 px copy), else, in auto size, on a 640 px copy, 3-4x
    cheaper again. A small face that appears between two proof passes is found by
    the next one, within 0.4 s, and its track is padded 0.5 s back, so it is hidden from its first
    frame (``tests/test_video_pipeline.py``). Also in auto size, the first full-size detection of
    a shot and then one every :data:`SMALL_PASS_EVERY_S` run the small-face tiles where the base pass
    found faces under 40 px (crowds), which find the 10-20 px faces the one pass misses; the tiles
    run on the fast network, at a lower threshold (:data:`blurcli.detect.FAST_TILE_THRESHOLD`).

    Args:
        redactor: supplies the detector, encoder, matcher and settings.
        fps: the video's frame rate (durations in the tracker and the vote are in seconds).
    """

    def __init__(self, redactor: "VideoRedactor", *, fps: float, info=None) -> None:
        settings = redactor.settings
        self.redactor = redactor
        self.info = info
        self.fps = fps
        self.tracker = FaceTracker(fps=fps)
        self.recognise = not redactor.decides_at_once
        self.cadence = DetectionCadence(
            fps=fps, every=settings.detect_every, min_interval=1 if self.recognise else 2
        )
        self.cuts = CutDetector()
        self.motion = CameraMotion()
        self._offsets = np.zeros((256, 2), np.float32)  # per frame, grown by doubling (see result)
        self.votes = votes_for(settings.identity, redactor.matcher, fps=fps)
        self.detect_side = settings.detect_max_side or auto_detect_side(info)
        # Auto size: full-size passes while small faces are about, a cheap copy between them otherwise.
        self.adaptive = settings.detect_max_side is None and self.detect_side > COARSE_DETECT_SIDE
        self.fine_every = max(1, int(FINE_EVERY_S * fps))
        longest = max(info.width, info.height) if info is not None else COARSE_DETECT_SIDE
        self.small_px = SMALL_IN_COARSE_PX * max(longest, COARSE_DETECT_SIDE) / COARSE_DETECT_SIDE
        self._last_fine: int | None = None
        # Small-face passes run in auto size only (--detect-size fixes what the detector sees).
        self.small_passes_on = settings.detect_max_side is None
        self.small_every = max(1, int(round(SMALL_PASS_EVERY_S * fps)))
        self._last_small: int | None = None
        self.small_passes = 0
        self._small_faces = True
        self.fine_detections = 0
        self.proof_detections = 0
        self._new_faces: tuple | None = None  # (frame, image, track ids, boxes, offset), see _measure_new_faces
        self.logs: dict[int, TrackLog] = {}
        self.new_tracks: list[int] = []  # track ids in the order their logs began
        self.cut_frames: list[int] = []
        self.shot_start = 0
        self.detected = 0
        self.frames = 0

    def step(self, index: int, image: np.ndarray) -> None:
        """Process frame ``index`` ((h, w, 3) uint8 BGR, upright); frames must come in order."""
        self.frames = index + 1
        cut = self.cuts.update(image)
        if cut:
            self.tracker.reset()
            self.cadence.reset()
            self.cut_frames.append(index)
            self.shot_start = index
            self._small_faces = True
            self._last_small = None
            self._last_fine = None
        offset = self.motion.update(image, cut=cut)
        if index >= len(self._offsets):
            self._offsets = np.concatenate([self._offsets, np.zeros_like(self._offsets)])
        self._offsets[index] = offset
        if not self.cadence.should_detect(index, cut=cut, change=self.cuts.change):
            self.tracker.update(None, index)
            self._measure_new_faces(index, image, offset)
            return
        self.detected += 1
        proof = self._last_fine is None or index - self._last_fine >= self.fine_every
        fine = not self.adaptive or self._small_faces or proof
        tiles = fine and self.small_passes_on and (self._last_small is None or index - self._last_small >= self.small_every)
        side = self.detect_side if fine else COARSE_DETECT_SIDE
        detector = self.redactor.detector if proof else self.redactor.fast_detector
        faces = detector.detect(image, max_side=side, upscale_small=False)
        if tiles:
            grown = self.redactor.fast_detector.add_small(image, faces, max_side=side)
            self.small_passes += grown is not faces  # the same object: no face was small, no tile ran
            self._last_small, faces = index, grown
        if proof:
            self._last_fine = index
            self.proof_detections += 1
        if fine:
            self.fine_detections += 1
            self._small_faces = bool((faces.height <= self.small_px).any())
        elif (faces.height <= self.small_px).any():
            self._small_faces = True  # a small face even the cheap copy sees: look at full size next
        # Tracks live in scene coordinates (see blurcli.track.motion): a pan does not break them.
        scene = Faces(shift_boxes(faces.xyxy, -offset), faces.score, faces.landmarks - offset.astype(np.float32))
        tracks = self.tracker.update(scene, index)
        self.cadence.observe(tracks, index)
        seen = tracks[tracks.data["detected"]]
        self._keep_new_faces(index, image, seen, offset)
        for track_id in seen.track_id[seen.data["jumped"]].tolist():
            self.votes.recheck(track_id)
        for i, track_id in enumerate(seen.track_id.tolist()):
            if track_id not in self.logs:
                self.logs[track_id] = TrackLog(track_id, self.shot_start)
                self.new_tracks.append(track_id)
            self.logs[track_id].add(index, seen.xyxy[i], seen.score[i])
        if self.recognise:
            seen.xyxy = shift_boxes(seen.xyxy, offset)  # back to this frame's pixels
            seen.landmarks = seen.landmarks + offset.astype(np.float32)
            sample_faces(self.votes, image, seen, index, encoder=self.redactor.encoder, matcher=self.redactor.matcher)

    def _keep_new_faces(self, index: int, image: np.ndarray, seen: Faces, offset: np.ndarray) -> None:
        """Keep the faces this detection saw first, to measure their speed on the next frame."""
        new = np.isin(seen.track_id, self.cadence.unmeasured)
        self._new_faces = None
        if new.any():
            self._new_faces = (index, image, seen.track_id[new], shift_boxes(seen.xyxy[new], offset), offset)

    def _measure_new_faces(self, index: int, image: np.ndarray, offset: np.ndarray) -> None:
        """The speed of the faces the last detection saw first, by template matching them on the
        frame after it (:func:`blurcli.track.motion.face_shifts`, well under a millisecond a
        face), so the cadence need not run the detector again to learn it."""
        if self._new_faces is None or self._new_faces[0] != index - 1:
            self._new_faces = None
            return
        _, before, track_ids, boxes, before_offset = self._new_faces
        self._new_faces = None
        shifts = face_shifts(before, image, boxes) - (offset - before_offset).astype(np.float32)  # scene motion
        sizes = ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2
        speeds = np.linalg.norm(shifts, axis=1) / np.maximum(sizes, 1.0)
        self.cadence.measured(dict(zip(track_ids.tolist(), speeds.tolist())))

    def result(self, logs: dict[int, TrackLog] | None = None) -> Analysis:
        """What was seen so far; ``logs``: only these tracks (a one-pass video's recent ones)."""
        return Analysis(
            self.info, self.frames, self.fps, self.detected, self.cut_frames, self.logs if logs is None else logs,
            self.votes, self._offsets[: self.frames], self.fine_detections, self.small_passes, self.proof_detections,
        )


def _to_frame(boxes: np.ndarray, frames, offsets: np.ndarray | None) -> np.ndarray:
    """Scene-coordinate boxes of the given frames back in each frame's pixels."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if offsets is None or not len(boxes):
        return boxes
    return shift_boxes(boxes, offsets[np.asarray(frames, np.intp)])


def pad_frames(pad_s: float, fps: float) -> int:
    """``pad_s`` in frames (at least one)."""
    return max(1, int(round(pad_s * fps)))


def mask_plan(
    analysis: Analysis, actions: dict[int, str], *, pad_s: float, within: tuple[int, int] | None = None
) -> tuple[MaskPlan, dict[int, tuple[int, int] | None]]:
    """The boxes of every frame from each track's action, the one rule of the tool's run and of a plan's.

    A hidden track is covered from ``pad_s`` before its first to ``pad_s`` after its last detection
    (never across a cut), interpolated and padded in scene coordinates; a kept track's own boxes
    are marked kept, so that no neighbour's mask reaches into them.

    Args:
        analysis: the tracks (scene coordinates), cuts, frame count, fps and camera offsets.
        actions: "hidden" or "kept" per track id of ``analysis.logs``.
        within: (first, last) frame: only the tracks that can reach these frames are planned (a
            one-pass video plans a block at a time, :mod:`blurcli.pipeline.one_pass`).

    Returns:
        The mask plan, and per planned track the (first, last) frame it is hidden in, or None when kept.
    """
    pad = pad_frames(pad_s, analysis.fps)
    shot_ends = sorted(analysis.cuts) + [analysis.frames]
    plan = MaskPlan()
    hidden: dict[int, tuple[int, int] | None] = {}
    for track_id in sorted(analysis.logs):
        track = analysis.logs[track_id]
        if within is not None and (track.first - pad > within[1] or track.last + pad < within[0]):
            continue
        shot_end = next((end for end in shot_ends if end > track.shot_start), analysis.frames)
        if actions[track_id] == "hidden":
            frames, boxes = track_boxes(track, pad=pad, shot_end=shot_end)
            plan.add(frames, _to_frame(boxes, frames, analysis.offsets))
            hidden[track_id] = (int(frames[0]), int(frames[-1]))
        else:
            frames, boxes = track_boxes(track, pad=0, shot_end=shot_end)
            plan.add_kept(frames, _to_frame(boxes, frames, analysis.offsets))
            hidden[track_id] = None
    return plan, hidden


def camera_record(offsets: np.ndarray | None) -> list[list[float]]:
    """The camera offsets of a report: [dx, dy] per frame to 0.01 px (empty when none were measured)."""
    if offsets is None:
        return []
    return [[round(float(x), 2), round(float(y), 2)] for x, y in np.asarray(offsets).reshape(-1, 2)]


class MaskWriter:
    """Pass 2 alone: hide a mask plan's boxes in every frame and write the file. It needs the
    settings and no model, so that a plan (an edited report, :mod:`blurcli.review.plan`) is
    rendered by the same code as the tool's own decisions."""

    def __init__(self, settings: VideoSettings = VideoSettings()):
        self.settings = settings

    def check_output(self, src: Path, dst: Path) -> None:
        """Fail before any work on an output that could not be written: the input itself, an unknown
        container, or encoder settings out of range.

        Raises:
            UsageError: what is wrong, in one line.
        """
        from ..media.codec import ENCODERS
        from ..media.video_io import X264_PRESETS, output_format

        check_not_input(src, dst)
        output_format(dst)  # an unknown extension fails now, not after pass 1
        if not 0 <= self.settings.crf <= 51:
            raise UsageError(f"crf must be between 0 and 51, got {self.settings.crf}")
        if self.settings.preset not in X264_PRESETS:
            raise UsageError(f"unknown x264 preset {self.settings.preset!r}; use one of {', '.join(X264_PRESETS)}")
        if self.settings.codec is not None and self.settings.codec not in ENCODERS:
            raise UsageError(f"unknown codec {self.settings.codec!r}; use one of {', '.join(ENCODERS)}")

    def write(self, src: Path, dst: Path, plan: MaskPlan, frames: int, progress: Progress | None = None) -> None:
        """Pass 2: hide the planned boxes in every frame and write the output (audio copied).

        Raises:
            InputError: the file decodes differently from pass 1.
            OutputError: the output cannot be written.
        """
        from ..media.video_io import VideoReader, VideoWriter

        settings = self.settings
        with contextlib.ExitStack() as stack:
            reader = stack.enter_context(VideoReader(src, threads=settings.threads))
            # The writer is entered before the decode thread starts: on any error the decode thread
            # stops first, then the writer deletes its temp file, then the reader closes.
            writer = stack.enter_context(
                VideoWriter(
                    dst, reader.info, audio_from=src, crf=settings.crf, preset=settings.preset,
                    threads=settings.threads, codec=settings.codec,
                )
            )

            # Three threads: decode, redact, encode (this one); each stage waits only on its own work.
            count = 0
            depth = queue_depth(reader.info)
            ready = self.redacted(reader, src, plan, frames, depth=depth)
            ready = stack.enter_context(contextlib.closing(_prefetch(ready, depth)))
            for frame, _ in ready:
                writer.write(frame)
                count += 1
                if progress:
                    progress("writing", count, frames)
            if count != frames:
                raise InputError(f"{src}: decoded {count} frames the second time, {frames} the first")

    def redacted(
        self, reader, src: Path, plan: MaskPlan, frames: int, *, originals: bool = False, depth: int = 8
    ) -> Iterator:
        """Pass 2's redaction stage: ``(frame, original)`` for each decoded frame, its planned boxes hidden.

        Args:
            reader: a fresh :class:`~blurcli.media.video_io.VideoReader` of ``src`` (decoded ahead
                in its own thread here).
            frames: the frame count of pass 1; more frames the second time is an error.
            originals: also hand out a BGR copy of each frame before redaction (previews), else None.
            depth: frames decoded ahead (:func:`queue_depth` of the video).
        """
        with contextlib.closing(_prefetch(reader, depth)) as decoded:
            for index, frame in enumerate(decoded):
                if index >= frames:
                    raise InputError(f"{src}: decoded more frames the second time ({index + 1} > {frames})")
                original = frame.image.copy() if originals else None
                redact_frame(frame, plan.boxes(index), self.settings.redact, keep=plan.kept(index))
                yield frame, original


class VideoRedactor(MaskWriter):
    """Loads the models once and redacts any number of videos with them.

    Args:
        settings: what to detect, keep and write.
        detector, matcher, encoder: injected stand-ins (tests); by default the real detector,
            the gallery's matcher and, when someone is enrolled, the face encoder.
    """

    def __init__(self, settings: VideoSettings = VideoSettings(), *, detector=None, matcher=None, encoder=None):
        super().__init__(settings)
        fast_detector = detector
        if detector is None:
            from ..detect import load_detector, load_fast_detector

            detector = load_detector(settings.detect)
            fast_detector = load_fast_detector(settings.detect)
        if matcher is None:
            from ..identity.gallery import Gallery

            matcher = Gallery.open(settings.identity.gallery).matcher(settings.identity.tolerance)
        if encoder is None and not matcher.empty:
            from ..identity.encoder import FaceEncoder

            encoder = FaceEncoder()
        self.detector = detector
        self.fast_detector = fast_detector  # between proof passes (see Analyser); the same one when injected
        self.matcher = matcher
        self.encoder = encoder

    @property
    def decides_at_once(self) -> bool:
        """Nobody is enrolled: no track can be kept, so each is hidden from the moment it is seen and
        the video is written in one pass (:mod:`blurcli.pipeline.one_pass`) instead of two."""
        return self.encoder is None or self.matcher.empty

    # -- pass 1 -------------------------------------------------------------------------------

    def analyse(self, src: Path, progress: Progress | None = None, *, seconds: float | None = None) -> Analysis:
        """Pass 1: detect, track and sample identities over the whole file (or its first ``seconds``).

        Raises:
            InputError: the file cannot be opened or a frame cannot be decoded.
        """
        from ..media.video_io import VideoReader

        with contextlib.ExitStack() as stack:
            reader = stack.enter_context(VideoReader(src, threads=self.settings.threads))
            info = reader.info
            fps = float(info.average_rate) if info.average_rate else 30.0
            analyser = Analyser(self, fps=fps, info=info)
            decoded = reader if seconds is None else first_frames(reader, seconds, fps)
            total = info.frame_count if seconds is None else None
            frames = stack.enter_context(contextlib.closing(_prefetch(decoded, queue_depth(reader.info))))
            for index, frame in enumerate(frames):
                analyser.step(index, frame.image)
                if progress:
                    progress("analysing", index + 1, total)
        if analyser.frames == 0:
            raise InputError(f"{src}: holds no video frames")
        return analyser.result()

    # -- between the passes -------------------------------------------------------------------

    @staticmethod
    def decide(analysis: Analysis) -> tuple[dict[int, str | None], dict[int, str]]:
        """Every track's identity (the vote's enrolled name, or None) and action ("hidden"/"kept")."""
        identities = {track_id: analysis.votes.decision(track_id) for track_id in analysis.logs}
        return identities, {track_id: "hidden" if name is None else "kept" for track_id, name in identities.items()}

    def plan(self, analysis: Analysis) -> tuple[MaskPlan, list[TrackReport]]:
        """Decide every track (the identity vote) and build the per-frame boxes of the tracks to hide."""
        identities, actions = self.decide(analysis)
        plan, hidden = mask_plan(analysis, actions, pad_s=self.settings.pad_s)
        reports = []
        for track_id in sorted(analysis.logs):
            track = analysis.logs[track_id]
            hidden_from, hidden_to = hidden[track_id] or (None, None)
            reports.append(
                TrackReport(
                    track_id=track_id,
                    first_frame=track.first,
                    last_frame=track.last,
                    hidden_from=hidden_from,
                    hidden_to=hidden_to,
                    boxes=[
                        [f, *(round(float(v), 1) for v in box), round(s, 3)]
                        for f, box, s in zip(
                            track.frames, _to_frame(np.asarray(track.boxes), track.frames, analysis.offsets), track.scores
                        )
                    ],
                    samples=[
                        {"frame": s.frame, "name": s.name, "distance": round(s.distance, 3)}
                        for s in analysis.votes.samples(track_id)
                    ],
                    identity=identities[track_id],
                    action=actions[track_id],
                )
            )
        return plan, reports

    def redact_file(self, src: Path, dst: Path, progress: Progress | None = None) -> VideoReport:
        """Redact one video into ``dst`` (written atomically; never over the input).

        Raises:
            UsageError: ``dst`` is the input.
            InputError: the input cannot be read or decoded (nothing is written).
            OutputError: the output cannot be written (nothing is left under its name).
        """
        src, dst = Path(src), Path(dst)
        self.check_output(src, dst)
        started = time.perf_counter()
        analysis = None
        if self.decides_at_once:
            from .one_pass import redact_in_one_pass

            analysis = redact_in_one_pass(self, src, dst, progress)
        if analysis is not None:
            plan, tracks = self.plan(analysis)
            seconds = {"one_pass": round(time.perf_counter() - started, 3)}
        else:
            analysis = self.analyse(src, progress)
            analysed = time.perf_counter()
            plan, tracks = self.plan(analysis)
            ensure_parent(dst)
            self.write(src, dst, plan, analysis.frames, progress)
            seconds = {"analyse": round(analysed - started, 3), "write": round(time.perf_counter() - analysed, 3)}
        report = VideoReport.of(src, dst, analysis, tracks)
        report.seconds = seconds
        report.plan = plan  # the boxes hidden in each frame (harnesses measure false masks); not in to_dict()
        log.debug(
            "%s: %d frames, detector on %d (float network on %d, small-face tiles on %d), %d cuts, %d tracks hidden, %d kept",
            src, report.frames, report.detected_frames, report.proof_detections, report.small_face_passes,
            len(report.cuts), report.hidden, report.kept,
        )
        return report


def redact_video(
    src: Path,
    dst: Path,
    settings: VideoSettings = VideoSettings(),
    *,
    progress: Progress | None = None,
) -> VideoReport:
    """Hide every face in a video except enrolled people; the audio and every timestamp are kept.

    Args:
        src: input video.
        dst: output video (.mp4, .m4v, .mov or .mkv); written beside it under a temporary name
            and renamed at the end.
        settings: see :class:`VideoSettings`.
        progress: called after every frame of each pass.

    Returns:
        The report: per track its frames, boxes, identity and action.

    Raises:
        UsageError, InputError, OutputError, ModelError, GalleryError.
    """
    return VideoRedactor(settings).redact_file(src, dst, progress)


def _output_for(job_dst: Path, taken: set[Path]) -> Path:
    """Folder mode keeps relative names; a container we cannot write (.avi, .webm, ...) becomes .mp4."""
    from ..media.video_io import OUTPUT_FORMATS

    if job_dst.suffix.lower() in OUTPUT_FORMATS:
        return job_dst
    dst = job_dst.with_suffix(".mp4")
    if dst in taken:
        dst = job_dst.with_name(job_dst.name + ".mp4")
    return dst


def redact_videos(
    src: Path,
    dst: Path,
    settings: VideoSettings = VideoSettings(),
    *,
    on_start: Callable[[list[Path]], None] | None = None,
    on_begin: Callable[[Path], None] | None = None,
    on_file: Callable[[VideoReport], None] | None = None,
    progress: Callable[[Path, str, int, "int | None"], None] | None = None,
    jobs: int = 1,
    ray_address: str | None = None,
    force: bool = False,
    plan=None,
) -> list[VideoReport]:
    """Redact one video, or every video under a folder (mirrored under ``dst``, same relative names).

    In folder mode a bad file is reported and skipped, and PartialFailure is raised at the end
    when any file failed; Ctrl-C stops at once (the current outputs are not left behind). A video
    already done by an earlier run with the same input and settings is skipped (``force`` redoes
    it), see :mod:`blurcli.pipeline.resume`.

    Args:
        on_start: called once with the input files, before the models load.
        on_begin: called with each input file as a worker starts it.
        on_file: called after each file with its report (``error`` set when it failed).
        progress: ``progress(src, stage, done, total)`` as each pass goes through a file's frames.
        jobs: videos at once (processes), see :mod:`blurcli.pipeline.batch`.
        ray_address: run on this Ray cluster instead.
        plan: a :class:`~blurcli.review.plan.Plan`: render its actions instead of deciding (``--plan``).

    Raises:
        BlurcliError: file mode errors as they happen; PartialFailure in folder mode.
    """
    import functools

    from ..media.video_io import VIDEO_EXTENSIONS

    from .batch import Events, WorkerSpec, run_tasks, tasks_for
    from .paths import plan_jobs

    jobs_list, folder_mode = plan_jobs(Path(src), Path(dst), VIDEO_EXTENSIONS, "video")
    if on_start:
        on_start([job.src for job in jobs_list])
    sources = {job.src.resolve() for job in jobs_list}
    outputs = []
    for job in jobs_list:
        out = _output_for(job.dst, set(outputs)) if folder_mode else job.dst
        if out.resolve() in sources:
            raise UsageError(f"output {out} (for {job.src}) is also an input; blurcli never overwrites an input")
        outputs.append(out)
    tasks = tasks_for([(job.src, out) for job, out in zip(jobs_list, outputs)], Path(dst), folder_mode=folder_mode, force=force)
    if plan is None:
        factory = VideoRedactor
    else:
        from ..review.plan import VideoPlanRenderer

        factory = functools.partial(VideoPlanRenderer, plan=plan)
    spec = WorkerSpec(factory, settings, VideoReport, frames=True)
    reports = run_tasks(
        tasks, spec, folder_mode=folder_mode, jobs=jobs, ray_address=ray_address,
        events=Events(begin=on_begin, frames=progress, file=on_file),
    )
    failed = [r for r in reports if r.error]
    if failed:
        raise PartialFailure(f"{len(failed)} of {len(reports)} videos failed; the others were written", reports)
    return reports
