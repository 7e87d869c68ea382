"""Where each track's face is in every frame, once the whole video has been seen (two-pass files).

Pass 1 logs each track's detections; this module turns them into one box per frame: linear
interpolation between detections (a face the detector missed between two detections of its track
is still covered), and padding before the first and after the last detection (a face seen late or
lost early is covered too), never across a shot cut. The further a frame is from a detection, the
more the box grows (:data:`GROW_PER_FRAME`), because the guess gets worse.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Growth of each side of a box, as a fraction of the face size, per frame away from a detection.
GROW_PER_FRAME = 0.02
#: Largest growth of each side (fraction of the face size).
GROW_MAX = 0.3
#: Padding follows the track's velocity for at most this many frames, then holds still.
EXTRAPOLATE_FRAMES = 5
#: The padding's velocity is measured between detections at least this many frames apart, and
#: taken as zero when the nearest such pair is more than 4 spans apart (see :func:`_velocity`).
VELOCITY_SPAN = 3


@dataclass
class TrackLog:
    """The detections of one track, in frame order.

    Attributes:
        track_id: the tracker's id.
        shot_start: first frame of the shot the track lives in.
        frames: frame index of each detection.
        boxes: xyxy of each detection (source pixels).
        scores: detector score of each detection.
    """

    track_id: int
    shot_start: int
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def add(self, frame: int, box: np.ndarray, score: float) -> None:
        self.frames.append(int(frame))
        self.boxes.append(np.asarray(box, np.float32).reshape(4))
        self.scores.append(float(score))

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]


def _velocity(frames: np.ndarray, boxes: np.ndarray, at_end: bool, span: int = VELOCITY_SPAN) -> np.ndarray:
    """(4,) forward-time velocity (px/frame) of the box corners near one end of a track.

    Measured over at least ``span`` frames so detector jitter is not mistaken for motion; zero when
    the track has one detection or its end detections are too far apart to tell.
    """
    n = len(frames)
    if n < 2:
        return np.zeros(4, np.float32)
    order = range(n - 2, -1, -1) if at_end else range(1, n)
    anchor = n - 1 if at_end else 0
    for j in order:
        gap = abs(int(frames[anchor]) - int(frames[j]))
        if gap >= span or j in (0, n - 1):
            if gap > 4 * span:
                return np.zeros(4, np.float32)
            a, b = (j, anchor) if at_end else (anchor, j)
            return (boxes[b] - boxes[a]) / float(frames[b] - frames[a])
    return np.zeros(4, np.float32)


def _grow(boxes: np.ndarray, distance: np.ndarray) -> np.ndarray:
    size = ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2
    margin = np.minimum(GROW_PER_FRAME * distance, GROW_MAX) * size
    return boxes + np.stack([-margin, -margin, margin, margin], axis=1)


def settle_frames(pad: int, longest_gap: int) -> int:
    """How many frames after frame ``t`` a detection can still change ``t``'s boxes.

    A track first detected up to ``pad`` frames after ``t`` is padded back over it, with a velocity
    measured over its detections up to 4 velocity spans after its first one; a track's next
    detection, at most ``longest_gap`` frames after its previous one (the tracker drops a track
    missed for longer), interpolates over the frames between. Once the detector has seen frame
    ``t + settle_frames(...)``, frame ``t``'s boxes are those the whole file would give it, so a
    file whose decisions need no future (nobody enrolled) is written in one pass that far behind.
    """
    return max(pad + 4 * VELOCITY_SPAN, longest_gap) + 1


def track_boxes(log: TrackLog, *, pad: int, shot_end: int) -> tuple[np.ndarray, np.ndarray]:
    """One box per frame for a track.

    Args:
        log: the track's detections.
        pad: frames to cover before the first and after the last detection.
        shot_end: first frame of the next shot (or the frame count): padding stops before it.

    Returns:
        frames (m,) int64 consecutive frame indices, boxes (m, 4) float32 xyxy.
    """
    frames = np.asarray(log.frames, np.int64)
    boxes = np.asarray(log.boxes, np.float32).reshape(-1, 4)
    start = max(log.shot_start, int(frames[0]) - pad)
    stop = min(shot_end - 1, int(frames[-1]) + pad)
    stop = max(stop, int(frames[-1]))
    out_frames = np.arange(start, stop + 1, dtype=np.int64)
    out = np.empty((len(out_frames), 4), np.float32)
    for k in range(4):
        out[:, k] = np.interp(out_frames, frames, boxes[:, k])

    before = out_frames < frames[0]
    if before.any():
        steps = np.minimum(frames[0] - out_frames[before], EXTRAPOLATE_FRAMES)[:, None]
        out[before] = boxes[0] - _velocity(frames, boxes, at_end=False) * steps
    after = out_frames > frames[-1]
    if after.any():
        steps = np.minimum(out_frames[after] - frames[-1], EXTRAPOLATE_FRAMES)[:, None]
        out[after] = boxes[-1] + _velocity(frames, boxes, at_end=True) * steps

    # Frames away from the nearest detection get bigger boxes.
    idx = np.searchsorted(frames, out_frames)
    left = frames[np.clip(idx - 1, 0, len(frames) - 1)]
    right = frames[np.clip(idx, 0, len(frames) - 1)]
    distance = np.minimum(np.abs(out_frames - left), np.abs(right - out_frames)).astype(np.float32)
    return out_frames, _grow(out, distance)


class _FrameBoxes:
    """Boxes per frame, one (frames, 4) array per track, so a long video costs a few bytes per box
    rather than a Python object per box and frame."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._boxes: list[np.ndarray] = []
        self._index: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, frames: np.ndarray, boxes: np.ndarray) -> None:
        frames = np.asarray(frames, np.int64)
        if not len(frames):
            return
        if not np.array_equal(frames, np.arange(frames[0], frames[0] + len(frames))):
            raise ValueError("frames must be consecutive")
        self._starts.append(int(frames[0]))
        self._ends.append(int(frames[-1]))
        self._boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
        self._index = None

    def at(self, frame_index: int) -> np.ndarray:
        if self._index is None:
            self._index = (np.asarray(self._starts, np.int64), np.asarray(self._ends, np.int64))
        starts, ends = self._index
        live = np.flatnonzero((starts <= frame_index) & (ends >= frame_index))
        if not len(live):
            return np.zeros((0, 4), np.float32)
        return np.stack([self._boxes[k][frame_index - starts[k]] for k in live])


class MaskPlan:
    """The boxes to hide in every frame, built from the tracks to hide, and the boxes of the kept
    faces (a hidden neighbour's mask must not cover them, see :mod:`blurcli.redact`)."""

    def __init__(self) -> None:
        self._hide = _FrameBoxes()
        self._keep = _FrameBoxes()

    def add(self, frames: np.ndarray, boxes: np.ndarray) -> None:
        """Hide ``boxes[j]`` in frame ``frames[j]``; ``frames`` must be consecutive."""
        self._hide.add(frames, boxes)

    def add_kept(self, frames: np.ndarray, boxes: np.ndarray) -> None:
        """A kept face is at ``boxes[j]`` in frame ``frames[j]``; ``frames`` must be consecutive."""
        self._keep.add(frames, boxes)

    def boxes(self, frame_index: int) -> np.ndarray:
        """(n, 4) float32 boxes to hide in this frame (n may be 0)."""
        return self._hide.at(frame_index)

    def kept(self, frame_index: int) -> np.ndarray:
        """(k, 4) float32 boxes of the faces kept in this frame."""
        return self._keep.at(frame_index)
