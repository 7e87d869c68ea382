"""On which frames the face detector runs.

Detection is the costliest stage, so it runs every Nth frame and the frames in between are filled
by the tracker (live) or by interpolation between detections (files). N follows the picture: the
detector runs on the first frame of every shot, whenever the whole picture changes fast, two frames
after a new face appears unless a template match on the next frame measured its speed (see
:meth:`DetectionCadence.measured`), and often enough that no face moves more than
:data:`MAX_SHIFT` of its size between two detections, so that the tracker still links the
detections into one track (one identity vote) and the interpolated box stays on the face;
otherwise every :data:`MAX_INTERVAL_S`.

Measured with cached detections on ../shared/data/video (coverage of reference faces, CenterFace at
full resolution on every frame): every 1, 2, 3 or 4 frames hid the same share of faces (hamilton
100%, facenet 95-96% at 960 px), because two-pass interpolation and padding fill the gaps; what
mattered was the detector's resolution, and the motion rule, which detects every frame while a
face crosses the picture at a third of its size per frame (facenet_video frames 0-35), so its
track is not broken into pieces that would each need their own identity vote. Auto mode ran the
detector on 34% of hamilton's frames and 69% of facenet's.

With nobody enrolled there is no vote to protect, so the motion rules may not go below every 2nd
frame (``min_interval=2``): on facenet_video at 1080p that hid the same 99.1% of reference faces as
detecting on 78% of frames, at 14.5 instead of 9.8 fps (benchmarks/speed.py's scorer).
"""
from __future__ import annotations

import numpy as np

from ..faces import Faces

#: Largest centre shift, in face sizes, allowed between two detections of a face (the tracker
#: links detections up to 1.25 face sizes away from its prediction: three times this margin).
MAX_SHIFT = 0.4
#: Longest time between two detections in auto mode (4 frames at 25-30 fps).
MAX_INTERVAL_S = 0.16
#: Frames until the second look at a new face (to measure its speed).
NEW_FACE_INTERVAL = 2
#: Thumbnail change (see :mod:`.cuts`) above which the picture moves too fast to skip frames.
FAST_CHANGE = 9.0


class DetectionCadence:
    """Decides, frame by frame, whether the detector runs.

    Example:
        >>> cadence = DetectionCadence(fps=30)              # auto: every 1-4 frames
        >>> if cadence.should_detect(i, cut=is_cut, change=cuts.change): ...
        >>> cadence.observe(tracks, i)                       # after tracking a detected frame
    """

    def __init__(self, *, fps: float = 30.0, every: int | None = None, min_interval: int = 1) -> None:
        """Args:
            fps: frame rate of the video.
            every: run the detector on every Nth frame exactly (1 = every frame); None = auto.
            min_interval: in auto mode, never detect on frames closer than this (except at cuts);
                2 when nobody is enrolled, since broken tracks then cost no identity vote.
        """
        if every is not None and every < 1:
            raise ValueError("every must be >= 1")
        fps = float(fps) if fps and fps > 0 else 30.0
        self.fixed = every
        self.max_interval = every or max(1, int(fps * MAX_INTERVAL_S))
        self.min_interval = max(1, min(min_interval, self.max_interval))
        self._interval = 1
        self._settled = self.max_interval  # the interval the faces of known speed allow
        self._last: int | None = None
        self._seen: dict[int, tuple[int, np.ndarray, float]] = {}  # track -> (frame, centre, size)
        self._unmeasured: set[int] = set()  # new faces whose speed is not known yet

    def should_detect(self, frame_index: int, *, cut: bool = False, change: float = 0.0) -> bool:
        """Args:
            frame_index: index of the frame about to be processed.
            cut: this frame starts a new shot.
            change: thumbnail change of this frame to the previous one (0-255).

        Returns:
            True when the detector should run on this frame.
        """
        if self._last is None or cut:
            return True
        since = frame_index - self._last
        if self.fixed is not None:
            return since >= self.fixed
        return since >= self._interval or (change > FAST_CHANGE and since >= self.min_interval)

    def observe(self, tracks: Faces, frame_index: int) -> None:
        """Learn from the tracker's output on a frame where the detector ran.

        Args:
            tracks: what :meth:`FaceTracker.update` returned for this frame (its data column
                ``detected`` is used).
            frame_index: the frame's index.
        """
        self._last = frame_index
        interval = self.max_interval
        new = set()
        detected = tracks.data.get("detected", np.ones(len(tracks), bool))
        seen = {}
        for i, track_id in enumerate(tracks.track_id):
            if not detected[i]:
                continue
            box = tracks.xyxy[i]
            centre = (box[:2] + box[2:]) / 2
            size = max(1.0, float((box[2] - box[0] + box[3] - box[1]) / 2))
            previous = self._seen.get(int(track_id))
            if previous is None:
                new.add(int(track_id))  # its speed is unknown: see below
            else:
                frames = frame_index - previous[0]
                speed = float(np.linalg.norm(centre - previous[1])) / frames / max(size, previous[2])
                if speed > 0:
                    interval = min(interval, max(1, int(MAX_SHIFT / speed)))
            seen[int(track_id)] = (frame_index, centre, size)
        self._seen = seen
        self._settled, self._unmeasured = interval, new
        if new:
            # A new face: look again soon to learn its speed, unless :meth:`measured` learns it on
            # the next frame; a face that moves more than 1.25 sizes in NEW_FACE_INTERVAL frames
            # (0.6 per frame) would break its track.
            interval = min(interval, NEW_FACE_INTERVAL)
        self._interval = max(interval, self.min_interval) if self.fixed is None else self.fixed

    @property
    def unmeasured(self) -> list[int]:
        """Track ids of the faces the last detection saw first, whose speed is not known yet."""
        return sorted(self._unmeasured)

    def measured(self, speeds: dict[int, float]) -> None:
        """Learn new faces' speeds without the detector (a template match on the next frame,
        :func:`blurcli.track.motion.face_shifts`), in face sizes per frame; NaN: not measured.

        Once every new face is measured, the look NEW_FACE_INTERVAL frames after it is no longer
        needed and the interval is set by the speeds alone, as for the faces already known.
        """
        interval = self._settled
        for track_id, speed in speeds.items():
            if track_id in self._unmeasured and np.isfinite(speed):
                self._unmeasured.discard(track_id)
                if speed > 0:
                    interval = min(interval, max(1, int(MAX_SHIFT / speed)))
        self._settled = interval
        if not self._unmeasured and self.fixed is None:
            self._interval = max(interval, self.min_interval)

    def reset(self) -> None:
        """Forget the tracks (call with :meth:`FaceTracker.reset`)."""
        self._seen = {}
        self._unmeasured = set()
        self._last = None
