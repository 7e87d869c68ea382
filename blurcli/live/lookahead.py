"""The look-ahead buffer: frames wait here until a detection of themselves or of a later frame is in.

A frame leaves the buffer when the output clock asks for it (``delay`` seconds after capture). By
then the detector, which works on the newest frame, has normally finished a frame at or after it,
so the frame is *covered*: its mask is the union of

* the tracker's boxes for the frame (tracks carried between detections, lost ones included),
* the raw detections of the nearest detected frames before and after it (a face that appears
  between two detections is hidden from its first frame: the later detection reaches back), and
* boxes interpolated between those two detections for tracks seen in both.

Boxes are hidden unless the identity votes proved their track to be an enrolled person. The
tracker is reset at shot cuts, so a kept identity never follows a box into another shot.
A frame that is not covered when it must leave (detection stalled for longer than the look-ahead)
is hidden whole, unless ``fail_open`` is set; then it gets the last known boxes.
"""
from __future__ import annotations

import bisect
import collections
import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..faces import Faces, iou_matrix
from ..identity.policy import pick_samples
from .capture import CapturedFrame
from .workers import Detection, IdentityJob

log = logging.getLogger("blurcli.live")

#: Hidden boxes overlapping at least this much (IoU) are drawn as one (their bounding box).
_MERGE_IOU = 0.3
#: Faces encoded per identity job (the biggest first).
MAX_SAMPLES_PER_JOB = 3
#: A raw detection takes the id of the tracker's box it overlaps at least this much (IoU).
_ASSOCIATE_IOU = 0.3


@dataclass
class Release:
    """A frame leaving the look-ahead, with what to hide in it.

    Attributes:
        frame: the captured frame (its image is not modified).
        hide: (k, 4) float32 boxes to hide.
        keep: (j, 4) float32 boxes of faces proven enrolled, left sharp.
        kept_names: (j,) names of the kept faces.
        whole: hide the entire frame (detection stalled and fail-open is off).
        covered: a detection at or after this frame had been folded in when it left.
        skipped: older frames that were due but dropped to release this one (output behind input).
        detected: the raw detections of the nearest detected frames before and after this one.
    """

    frame: CapturedFrame
    hide: np.ndarray
    keep: np.ndarray
    kept_names: list = field(default_factory=list)
    whole: bool = False
    covered: bool = True
    skipped: int = 0
    detected: Faces | None = None


class LookAhead:
    """Holds captured frames until they are due and works out their masks.

    Args:
        tracker: ``FaceTracker``-like: ``update(faces | None, frame_index) -> Faces`` with ``track_id``.
        votes: ``IdentityVotes``-like (``decision``, ``wants_sample``, ``min_face_px``: smaller faces
            are never sampled, so they stay hidden), or None when nobody is enrolled.
        votes_lock: guards ``votes`` (the identity worker adds to them).
        sample: called with an :class:`IdentityJob` when tracks want an identity sample.
        sampler_idle: says whether ``sample`` would start at once (no job waiting).
        fail_open: see the module docstring.
        max_frames: frames held at most (the oldest are dropped beyond it).
        cuts: ``CutDetector``-like (``update(image) -> bool``) to run here; None relies on
            ``CapturedFrame.cut`` (set by capture) alone.
    """

    def __init__(
        self,
        tracker,
        *,
        votes=None,
        votes_lock: threading.Lock | None = None,
        sample: Callable[[IdentityJob], None] | None = None,
        sampler_idle: Callable[[], bool] = lambda: True,
        fail_open: bool = False,
        max_frames: int = 600,
        cuts=None,
    ) -> None:
        self._tracker = tracker
        self._votes = votes
        self._votes_lock = votes_lock or threading.Lock()
        self._sample = sample
        self._sampler_idle = sampler_idle
        self.fail_open = fail_open
        self._frames: collections.deque[CapturedFrame] = collections.deque()
        self._max_frames = max_frames
        self._tracked: dict[int, Faces] = {}
        self._det_index: list[int] = []  # detected frame indices, ascending
        self._dets: dict[int, Faces] = {}  # raw detections with track ids, by frame index
        self.folded = -1  # last frame index given to the tracker
        self.overflow = 0
        self._cuts = cuts
        self._cut_at: set[int] = set()  # frame indices that start a new shot, not yet given to the tracker
        self._shot_starts: list[int] = [0]  # every shot start seen, ascending (trimmed as frames leave)
        self._last_seen: dict[int, int] = {}  # track id -> last frame it was tracked in
        self._forgot_at = 0
        self.resets = 0

    def __len__(self) -> int:
        return len(self._frames)

    def add_frames(self, frames: list[CapturedFrame]) -> None:
        for frame in frames:
            self._frames.append(frame)
            if frame.cut or (self._cuts is not None and self._cuts.update(frame.image)):
                self._cut_at.add(frame.index)
                self._shot_starts.append(frame.index)
        while len(self._frames) > self._max_frames:
            self._frames.popleft()
            self.overflow += 1

    def add_detection(self, detection: Detection) -> None:
        """Fold a detection (and every frame before it) into the tracker."""
        index = detection.frame.index
        if index <= self.folded:
            return
        for i in range(self.folded + 1, index):
            self._track(None, i)
        tracks = self._track(detection.faces, index)
        self.folded = index
        raw = detection.faces
        raw = Faces(raw.xyxy, raw.score, raw.landmarks, track_id=_associate(raw, tracks))
        self._dets[index] = raw
        self._det_index.append(index)
        self._request_samples(detection.frame, raw)

    def _track(self, faces: Faces | None, index: int) -> Faces:
        """Advance the tracker to frame ``index``, resetting it first if a shot starts there."""
        if index in self._cut_at:
            self._cut_at.discard(index)
            self._tracker.reset()
            self.resets += 1
        tracks = self._tracker.update(faces, index)
        self._tracked[index] = tracks
        for track_id in tracks.track_id:
            self._last_seen[int(track_id)] = index
        return tracks

    def _request_samples(self, frame: CapturedFrame, raw: Faces) -> None:
        """Offer the biggest good faces (the identity rule's own choice) for a sample when the
        identity worker is free.

        At most ``MAX_SAMPLES_PER_JOB`` faces per job keep its latency short (each costs ~75 ms),
        and asking only when the worker is idle means no sample the votes asked for is dropped.
        """
        if self._votes is None or self._sample is None or not len(raw) or not self._sampler_idle():
            return
        with self._votes_lock:
            wanted = pick_samples(self._votes, raw, frame.index, limit=MAX_SAMPLES_PER_JOB)
        if len(wanted):
            self._sample(IdentityJob(frame.image, raw.xyxy[wanted], raw.track_id[wanted], frame.index))

    def take(self, deadline: float) -> Release | None:
        """The newest frame captured at or before ``deadline``, with its mask; older ones are dropped.

        Returns:
            None when no frame is due yet.
        """
        due = 0
        for frame in self._frames:
            if frame.time > deadline:
                break
            due += 1
        if not due:
            return None
        for _ in range(due - 1):
            self._frames.popleft()
        frame = self._frames.popleft()
        release = self._mask(frame)
        release.skipped = due - 1
        self._forget_before(frame.index)
        return release

    def _mask(self, frame: CapturedFrame) -> Release:
        f = frame.index
        covered = f <= self.folded
        if not covered and not self.fail_open:
            empty = np.zeros((0, 4), np.float32)
            return Release(frame, empty, empty, whole=True, covered=False)
        parts: list[Faces] = []
        pos = bisect.bisect_right(self._det_index, f)
        before = self._det_index[pos - 1] if pos else None
        after = self._det_index[pos] if pos < len(self._det_index) else None
        if before == f:
            after = f
        # Never borrow a detection from another shot: its track (and a kept decision) would follow
        # a box into a picture where another face stands (short_hamilton_clip.mp4, frame 210 -> 211).
        shot = self._shot_of(f)
        if before is not None and self._shot_of(before) != shot:
            before = None
        if after is not None and self._shot_of(after) != shot:
            after = None
        if covered:
            parts.append(self._tracked.get(f, Faces.empty()))
        else:  # fail-open: the newest tracker state is the best guess
            parts.append(self._tracked.get(self.folded, Faces.empty()))
        near = [self._dets[index] for index in sorted({before, after} - {None})]
        parts.extend(near)
        if before is not None and after is not None and after != before:
            parts.append(_interpolate(self._dets[before], self._dets[after], (f - before) / (after - before)))
        faces = Faces.merge([Faces(p.xyxy, p.score, track_id=p.track_id) for p in parts])
        names = self._decisions(faces.track_id)
        kept = np.array([n is not None for n in names], dtype=bool)
        return Release(
            frame,
            hide=merge_overlapping(_join_tracks(faces.xyxy[~kept], faces.track_id[~kept])),
            keep=faces.xyxy[kept],
            kept_names=[n for n in names if n is not None],
            covered=covered,
            detected=Faces.merge(near),
        )

    def _shot_of(self, index: int) -> int:
        """The first frame of the shot frame ``index`` belongs to."""
        return self._shot_starts[bisect.bisect_right(self._shot_starts, index) - 1]

    def _decisions(self, track_ids: np.ndarray) -> list:
        if self._votes is None or not len(track_ids):
            return [None] * len(track_ids)
        with self._votes_lock:
            return [self._votes.decision(int(t)) if t >= 0 else None for t in track_ids]

    def _forget_before(self, index: int) -> None:
        """Drop tracker outputs and detections no longer needed once ``index`` has left."""
        for i in [i for i in self._tracked if i < index and i != self.folded]:
            del self._tracked[i]
        pos = bisect.bisect_right(self._det_index, index)
        keep_from = max(0, pos - 1)  # the last detection at or before ``index`` is still a neighbour
        for i in self._det_index[:keep_from]:
            with contextlib.suppress(KeyError):
                del self._dets[i]
        del self._det_index[:keep_from]
        oldest = min(self._det_index[0], index) if self._det_index else index
        del self._shot_starts[: max(0, bisect.bisect_right(self._shot_starts, oldest) - 1)]
        if index - self._forgot_at >= 300:  # forget tracks dead for ~10 s (long streams)
            self._forgot_at = index
            dead = [t for t, last in self._last_seen.items() if last < index - 300]
            for track_id in dead:
                del self._last_seen[track_id]
            if self._votes is not None and hasattr(self._votes, "forget"):
                with self._votes_lock:
                    for track_id in dead:
                        self._votes.forget(track_id)

    def drain(self) -> list[CapturedFrame]:
        """Every frame still held (end of stream), oldest first."""
        frames = list(self._frames)
        self._frames.clear()
        return frames


def _associate(raw: Faces, tracks: Faces) -> np.ndarray:
    """Track id of each raw detection: the tracker's own ``det_index`` link when it gives one, else
    the tracker box it overlaps most (-1 when none overlaps enough)."""
    ids = np.full(len(raw), -1, np.int64)
    if not len(raw) or not len(tracks):
        return ids
    links = tracks.data.get("det_index")
    if links is not None:
        links = np.asarray(links)
        ok = (links >= 0) & (links < len(raw))
        ids[links[ok]] = tracks.track_id[ok]
        return ids
    xyxy = raw.xyxy
    iou = iou_matrix(xyxy, tracks.xyxy)
    best = iou.argmax(axis=1)
    ok = iou[np.arange(len(xyxy)), best] >= _ASSOCIATE_IOU
    ids[ok] = tracks.track_id[best[ok]]
    return ids


def _join_tracks(xyxy: np.ndarray, track_id: np.ndarray) -> np.ndarray:
    """The boxes of one track (tracker, detections, interpolation) as their bounding box, where it
    is at most twice the largest of them (a track that jumped keeps its boxes apart); boxes of no
    track as they are. Done first, it leaves :func:`merge_overlapping` a box a face, not four."""
    if len(xyxy) < 2:
        return xyxy
    order = np.argsort(track_id, kind="stable")
    ids, boxes = track_id[order], xyxy[order]
    _, start = np.unique(ids, return_index=True)
    lo = np.minimum.reduceat(boxes[:, :2], start)
    hi = np.maximum.reduceat(boxes[:, 2:], start)
    largest = np.maximum.reduceat((boxes[:, 2:] - boxes[:, :2]).clip(0).prod(axis=1), start)
    joined = (ids[start] >= 0) & ((hi - lo).prod(axis=1) <= 2.0 * largest)
    group = np.repeat(np.arange(len(start)), np.diff(np.append(start, len(ids))))
    apart = boxes[~joined[group]]
    return np.concatenate([np.concatenate([lo, hi], axis=1)[joined], apart]).astype(np.float32)


def merge_overlapping(xyxy: np.ndarray, min_iou: float = _MERGE_IOU) -> np.ndarray:
    """Replace boxes that overlap by ``min_iou`` or more with their common bounding box.

    The mask of one face arrives up to four times (tracker, the detections before and after,
    their interpolation); drawing each would cost four blurs. The bounding box covers all of them.

    Args:
        xyxy: (k, 4) boxes.

    Returns:
        (m, 4) float32 boxes, m <= k, covering at least every input box.
    """
    boxes = np.asarray(xyxy, np.float32).reshape(-1, 4).copy()
    # Merged in rounds: each round joins disjoint pairs, the most overlapping first, until no two
    # boxes overlap enough. Joining one pair per full IoU matrix made a crowd (40 faces, ~160
    # boxes) cost 60 ms a frame, and up to 2 s; rounds take a few.
    while len(boxes) > 1:
        iou = np.triu(iou_matrix(boxes, boxes), 1)
        first, second = np.nonzero(iou >= min_iou)
        if not len(first):
            break
        order = np.argsort(-iou[first, second], kind="stable")
        used = np.zeros(len(boxes), bool)
        pairs = []
        for i, j in zip(first[order].tolist(), second[order].tolist()):
            if not (used[i] or used[j]):
                used[i] = used[j] = True
                pairs.append((i, j))
        keep, gone = np.asarray(pairs).T
        boxes[keep, :2] = np.minimum(boxes[keep, :2], boxes[gone, :2])
        boxes[keep, 2:] = np.maximum(boxes[keep, 2:], boxes[gone, 2:])
        boxes = np.delete(boxes, gone, axis=0)
    return boxes


def _interpolate(a: Faces, b: Faces, t: float) -> Faces:
    """Boxes of tracks present in both ``a`` and ``b``, linearly interpolated at fraction ``t``."""
    rows_a, rows_b = [], []
    for i, track in enumerate(a.track_id):
        if track < 0:
            continue
        match = np.flatnonzero(b.track_id == track)
        if len(match):
            rows_a.append(i)
            rows_b.append(int(match[0]))
    if not rows_a:
        return Faces.empty()
    xyxy = a.xyxy[rows_a] * (1.0 - t) + b.xyxy[rows_b] * t
    return Faces(xyxy, np.ones(len(rows_a), np.float32), track_id=a.track_id[rows_a])
