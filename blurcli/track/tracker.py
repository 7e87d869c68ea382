"""Associate face detections over frames and predict boxes between detections.

norfair-enough does the bookkeeping (Kalman filter per track, greedy matching, hit counters).
Three of its defaults are wrong for privacy, so this wrapper changes them:

* norfair hides a new track for ``hit_counter_max // 2`` frames; here every track is reported
  from the frame of its first detection (``initialization_delay=0``).
* plain IoU loses a fast face when the detector runs only every Nth frame (the boxes no longer
  overlap); :func:`face_distance` falls back to the centre distance scaled by the face size.
* a track that is missed for a while stays alive (``lost_s``) so that its predicted box is
  still masked, and a track seen only once lives at least ``new_track_s``.

Predicted boxes come back with their corners re-sorted (a shrinking box's prediction can swap
them, and a swapped box would mask nothing). Ids never repeat, even across :meth:`reset`.
"""
from __future__ import annotations

import numpy as np
from norfair import Detection, Tracker
from norfair.distances import VectorizedDistance

from ..faces import Faces

#: Largest centre distance, in face sizes, still accepted between a track's prediction and a
#: detection whose box does not overlap it (boxes of equal size stop overlapping at 1).
MAX_JUMP = 1.25
#: Boxes whose sizes differ by more than this factor never belong to the same track.
MAX_SIZE_RATIO = 2.0


def _sorted_corners(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x = np.sort(boxes[:, 0::2], axis=1)
    y = np.sort(boxes[:, 1::2], axis=1)
    return np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1)


def face_distance(candidates: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Distance between detections and predicted track boxes that tolerates fast motion.

    ``1 - IoU`` while the boxes overlap (0 for identical boxes, < 1 for any overlap); for boxes that
    do not overlap ``max(1, d / s)``, where d is the centre distance and s the larger face size
    ((w + h) / 2), so a face that jumped just past its predicted box still matches. Pairs whose
    sizes differ by more than :data:`MAX_SIZE_RATIO` get 10 (never match).

    Args:
        candidates: (n, 4) xyxy boxes of the detections.
        objects: (m, 4) xyxy boxes predicted for the tracks (corners may be swapped).

    Returns:
        (n, m) float64 distances; a match needs less than ``MAX_JUMP``.
    """
    a = _sorted_corners(candidates)
    b = _sorted_corners(objects)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)

    size_a = ((a[:, 2] - a[:, 0]) + (a[:, 3] - a[:, 1])) / 2
    size_b = ((b[:, 2] - b[:, 0]) + (b[:, 3] - b[:, 1])) / 2
    larger = np.maximum(np.maximum(size_a[:, None], size_b[None, :]), 1.0)
    smaller = np.maximum(np.minimum(size_a[:, None], size_b[None, :]), 1e-3)
    centre_a = (a[:, :2] + a[:, 2:]) / 2
    centre_b = (b[:, :2] + b[:, 2:]) / 2
    centre = np.linalg.norm(centre_a[:, None, :] - centre_b[None, :, :], axis=2)

    distance = np.where(iou > 0, 1.0 - iou, np.maximum(1.0, centre / larger))
    distance[larger / smaller > MAX_SIZE_RATIO] = 10.0
    return distance


class FaceTracker:
    """Associates face detections over frames (norfair-enough underneath) and predicts boxes between detections.

    Call :meth:`update` once per frame, in order. Frames where the detector did not run are passed
    as ``None`` and get the tracks' predicted boxes. A skipped frame index (a frame the caller
    dropped) is predicted through, so velocities stay per frame.

    Example:
        >>> tracker = FaceTracker(fps=30)
        >>> faces = tracker.update(detector.detect(frame), 0)       # detections, with track_id
        >>> faces = tracker.update(None, 1)                         # predicted boxes only
    """

    def __init__(
        self, *, fps: float = 30.0, lost_s: float = 0.5, new_track_s: float = 0.2, max_jump: float = MAX_JUMP
    ) -> None:
        """Args:
            fps: frame rate, to turn the durations below into frames.
            lost_s: how long a track that stopped being detected is still reported (predicted).
            new_track_s: shortest life of a track that was detected only once.
            max_jump: largest centre distance, in face sizes, accepted for non-overlapping boxes.
        """
        fps = float(fps) if fps and fps > 0 else 30.0
        self.fps = fps
        self._hit_counter_max = max(2, int(round(lost_s * fps)))
        self._new_track_frames = max(1, int(round(new_track_s * fps)))
        self._threshold = max(1.0 + 1e-6, max_jump)
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget every track (a scene cut): the next detections start new tracks with new ids."""
        self._tracker = Tracker(
            distance_function="iou",  # replaced below: norfair only accepts names or scalar callables
            distance_threshold=self._threshold,
            hit_counter_max=self._hit_counter_max,
            initialization_delay=0,
            past_detections_length=0,
        )
        self._tracker.distance_function = VectorizedDistance(face_distance)
        # norfair numbers tracks from 1 in each Tracker; ours keep growing across resets.
        self._id_offset = self._next_id - 1
        self._last_frame: int | None = None
        self._last_detect_frame: int | None = None

    @property
    def longest_gap(self) -> int:
        """Most frames between two detections of one track: norfair matches a track up to
        ``hit_counter_max + 1`` frames after its last hit, then drops it."""
        return self._hit_counter_max + 1

    def _our_id(self, obj) -> int:
        track_id = self._id_offset + int(obj.id)
        self._next_id = max(self._next_id, track_id + 1)
        return track_id

    def update(self, detections: Faces | None, frame_index: int) -> Faces:
        """Advance to ``frame_index`` and associate its detections.

        Args:
            detections: faces found in this frame, or None when no detector ran on it (predict only).
                An empty Faces means the detector ran and found nothing.
            frame_index: index of this frame; must grow from call to call (gaps are predicted through).

        Returns:
            Every live track, new and lost-but-not-dead ones included: xyxy (the detection's own
            box where the track was detected in this frame, else the prediction), score (the last
            detection's), landmarks (this frame's, else NaN), track_id, and data columns
            ``detected`` (bool: matched a detection in this frame), ``det_index`` (int: row in
            ``detections``, -1 if none), ``lost`` (int: frames since the last detection) and
            ``jumped`` (bool: matched a detection that does not overlap the prediction; the
            track may have jumped to another face, so its identity deserves a fresh look).
        """
        if self._last_frame is not None:
            gap = frame_index - self._last_frame
            if gap <= 0:
                raise ValueError(f"frame_index must grow: {frame_index} after {self._last_frame}")
            if gap > self._hit_counter_max + 1:
                self.reset()  # every track would have died anyway
            else:
                for _ in range(gap - 1):
                    self._tracker.update(None)
        self._last_frame = frame_index

        norfair_dets = None
        if detections is not None:
            period = 1 if self._last_detect_frame is None else max(1, frame_index - self._last_detect_frame)
            self._last_detect_frame = frame_index
            norfair_dets = [
                Detection(
                    points=box.reshape(2, 2).astype(np.float64),
                    data={"frame": frame_index, "index": i, "score": float(detections.score[i])},
                )
                for i, box in enumerate(detections.xyxy)
            ]
            objects = self._tracker.update(norfair_dets, period=period)
        else:
            objects = self._tracker.update(None)

        rows = []
        for obj in objects:
            if obj.age == 0:
                # A new track seen once must outlive a few missed detections (privacy first).
                obj.hit_counter = max(obj.hit_counter, self._new_track_frames)
            det = obj.last_detection
            detected = detections is not None and det.data["frame"] == frame_index
            index = det.data["index"] if detected else -1
            box = detections.xyxy[index] if detected else obj.estimate.reshape(4)
            landmarks = detections.landmarks[index] if detected else np.full((5, 2), np.nan, np.float32)
            jumped = detected and obj.last_distance is not None and obj.last_distance >= 1.0
            lost = frame_index - det.data["frame"]
            rows.append((self._our_id(obj), box, det.data["score"], landmarks, detected, index, lost, jumped))

        if not rows:
            faces = Faces.empty()
            faces.data.update(
                detected=np.zeros(0, bool),
                det_index=np.zeros(0, np.int64),
                lost=np.zeros(0, np.int64),
                jumped=np.zeros(0, bool),
            )
            return faces
        rows.sort(key=lambda r: r[0])
        ids, boxes, scores, landmarks, detected, index, lost, jumped = zip(*rows)
        return Faces(
            np.array(boxes, np.float32),
            np.array(scores, np.float32),
            landmarks=np.array(landmarks, np.float32),
            track_id=np.array(ids, np.int64),
            data={
                "detected": np.array(detected, bool),
                "det_index": np.array(index, np.int64),
                "lost": np.array(lost, np.int64),
                "jumped": np.array(jumped, bool),
            },
        )
