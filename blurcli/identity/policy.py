"""The identity rule: when a face is an enrolled person. Every mode (photo, video, stream) uses it.

A face is a *track*: the same face over frames (a photo's face is a track of one frame). Its
evidence is the encodings sampled along it. The rule, with t the tolerance and m the margin:

* only good faces are sampled (:func:`worth_sampling`: big, detector-confident, not turned away);
* the track is X when the **mean of its encodings** matches X by the matcher's rules (nearest
  sample of X within t, the runner-up person clearly further), no sample is further than t + m
  from X, and either it has at least 2 samples or its lone sample is confident (within
  ``confident`` x t) -- except a still picture, whose one sample is all the evidence there will
  ever be and is judged at t, as enrolment photos were calibrated (see ``settings.py``);
* a sample that names someone else, or lies further than t + m from the track's person, revokes
  the track for good (another face has been on it); it is never sampled again;
* anything else is unknown, and unknown is hidden.

Why the mean, and why a lone video sample must be confident: video frames are noisier than
enrolment photos (motion blur, compression, low light). On short_hamilton_clip.mp4 against one
enrolment photo, the enrolled face's single frontal samples lay at 0.31-0.59 from his photo
(median 0.48: only a third within the default tolerance 0.45), while the mean of the 6-8
encodings sampled along his track every 0.5 s lay at 0.34-0.36; every other face's samples lay
at 0.65 or more.

Encoding a face costs ~75 ms, so a track is sampled sparingly: on its first good frame, then every
``quick_interval_s`` for its first ``quick_samples`` samples, every ``interval_s`` while still
undecided and every ``settled_interval_s`` once kept (to notice a track that jumped to another
face). The quick start is for live streams, which can only keep a face sharp in the frames still
waiting in their look-ahead when the decision comes: on short_hamilton_clip.mp4 the enrolled
face's track needed 4-6 samples against his one photo (in one run the means of its first 1-5
were 0.58, 0.55, 0.49, 0.45, 0.43), which at 0.5 s apart took 2 s of his close-up; taken as fast
as the encoder goes they took 0.5-0.7 s.
A stranger's track costs one sample (it lies beyond t + m and is revoked), so the quick start
costs at most a few encodes per candidate track. A kept bystander is the worst failure, blurring
the enrolled person the second worst.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..settings import DEFAULT_TOLERANCE

#: Largest horizontal offset of the nose from the eyes' midpoint, in eye distances, of a face
#: worth sampling. On short_hamilton_clip.mp4 the enrolled face's encodings averaged 0.47 from his
#: photo when frontal (offset < 0.2) and 0.52 when turned (>= 0.35), and his only samples beyond
#: 0.6 were turned ones.
MAX_TURN = 0.35
#: Smallest detector score of a face worth sampling (blurred or dark faces encode poorly).
MIN_SAMPLE_SCORE = 0.5
#: Distance beyond the tolerance from which a sample strongly disagrees.
MARGIN = 0.15


def worth_sampling(faces, min_face_px: int) -> np.ndarray:
    """(n,) bool: faces big, sharp and frontal enough for an identity sample.

    Args:
        faces: a :class:`~blurcli.faces.Faces` of detected faces (landmarks used when present;
            faces without landmarks are judged by size and score only).
        min_face_px: smallest box height.
    """
    ok = (faces.height >= min_face_px) & (faces.score >= MIN_SAMPLE_SCORE)
    points = faces.landmarks
    eye_mid = (points[:, 0] + points[:, 1]) / 2
    eye_distance = np.linalg.norm(points[:, 0] - points[:, 1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        turn = np.abs(points[:, 2, 0] - eye_mid[:, 0]) / eye_distance
    known = np.isfinite(turn)
    return ok & (~known | (turn < MAX_TURN))


@dataclass(frozen=True)
class Sample:
    """One encoding compared with the gallery.

    Attributes:
        name: enrolled name the matcher gave, or None.
        distance: distance to that name (or to the nearest enrolled person).
        frame: frame index the encoding came from (None if the caller did not say).
        encoding: the (128,) encoding, when the caller gave it.
    """

    name: str | None
    distance: float
    frame: int | None
    encoding: np.ndarray | None = None


class IdentityVotes:
    """Per-track identity from encodings sampled along the track: unknown until proven enrolled.

    Without encodings (a caller that only has the matcher's names) a track is X when at least 2
    samples name X and they are at least a third of all samples, or a lone sample is confident;
    the revocation rules are the same. Every pipeline of blurcli passes encodings.

    Args:
        fps: frame rate, to turn the intervals into frames.
        tolerance: the matcher's tolerance (largest distance that names someone).
        margin: distance above ``tolerance`` from which a sample strongly disagrees.
        confident: a lone sample decides a track when its distance <= confident * tolerance.
        quick_interval_s: time between a track's first ``quick_samples`` samples.
        quick_samples: samples taken at ``quick_interval_s`` before ``interval_s`` applies.
        interval_s: time between samples while a track is undecided, after the quick start.
        settled_interval_s: time between samples once a track is kept.
        min_face_px: faces smaller than this (box height) are never sampled.
        matcher: the gallery's ``Matcher`` (``match``, ``distances``, ``names``); with it, samples
            added with their encoding are decided by the mean encoding of the track.
        still: the tracks are faces of still pictures (one sample each, judged at the tolerance).

    Example:
        >>> votes = IdentityVotes(fps=30, tolerance=0.45, matcher=matcher)
        >>> if votes.wants_sample(track_id, frame_index): votes.add(track_id, name, d, encoding=e)
        >>> votes.decision(track_id)      # "ann" or None
    """

    def __init__(
        self,
        *,
        fps: float = 30.0,
        tolerance: float = DEFAULT_TOLERANCE,
        margin: float = MARGIN,
        confident: float = 0.8,
        quick_interval_s: float = 0.1,
        quick_samples: int = 8,
        interval_s: float = 0.5,
        settled_interval_s: float = 1.0,
        min_face_px: int = 40,
        matcher=None,
        still: bool = False,
    ) -> None:
        fps = float(fps) if fps and fps > 0 else 30.0
        if still:
            confident = 1.0
        self.tolerance = tolerance
        self.strong = tolerance + margin
        self.confident = confident * tolerance
        self.quick_interval = max(1, int(round(quick_interval_s * fps)))
        self.quick_samples = quick_samples
        self.interval = max(1, int(round(interval_s * fps)))
        self.settled_interval = max(1, int(round(settled_interval_s * fps)))
        self.min_face_px = min_face_px
        self.matcher = matcher
        self._samples: dict[int, list[Sample]] = {}
        self._asked: dict[int, int] = {}
        self._recheck: set[int] = set()
        self._decided: dict[int, tuple[int, str | None]] = {}  # track -> (samples seen, decision)

    def add(
        self,
        track_id: int,
        name: str | None,
        distance: float,
        *,
        frame_index: int | None = None,
        encoding: np.ndarray | None = None,
    ) -> None:
        """Record one sample of a track.

        Args:
            track_id: the track.
            name: the matcher's name for the encoding, or None.
            distance: the matcher's distance. A NaN distance without a name (no face chip could
                be taken, or nobody is enrolled) is no evidence and is not recorded.
            frame_index: where the encoding came from; defaults to the frame of the last
                :meth:`wants_sample` that said yes for this track.
            encoding: the (128,) encoding (used with a matcher: the track's mean decides).
        """
        if name is None and math.isnan(distance):
            return
        if encoding is not None:
            encoding = np.asarray(encoding, np.float32).reshape(-1)
            if not np.isfinite(encoding).all():
                return
        track_id = int(track_id)
        frame = frame_index if frame_index is not None else self._asked.get(track_id)
        self._samples.setdefault(track_id, []).append(Sample(name, float(distance), frame, encoding))

    def samples(self, track_id: int) -> list[Sample]:
        """The samples recorded for a track, oldest first."""
        return list(self._samples.get(int(track_id), []))

    def revoked(self, track_id: int) -> bool:
        """True once the track can never be kept: its samples name two people, or one of them
        matches nobody within tolerance + margin (a stranger's face was on this track)."""
        samples = self._samples.get(int(track_id), [])
        if len({s.name for s in samples if s.name is not None}) > 1:
            return True
        return any(s.name is None and s.distance > self.strong for s in samples)

    def decision(self, track_id: int) -> str | None:
        """The enrolled name of the track, or None (unknown: hide it). See the module doc."""
        track_id = int(track_id)
        samples = self._samples.get(track_id, [])
        cached = self._decided.get(track_id)
        if cached is not None and cached[0] == len(samples):
            return cached[1]
        name = self._decide(samples) if samples and not self.revoked(track_id) else None
        self._decided[track_id] = (len(samples), name)
        return name

    def _decide(self, samples: list[Sample]) -> str | None:
        encodings = [s.encoding for s in samples]
        if self.matcher is not None and all(e is not None for e in encodings):
            return self._decide_by_mean(samples, np.stack(encodings))
        names = [s.name for s in samples if s.name is not None]
        if not names:
            return None
        agree = len(names)
        if agree >= 2 and 3 * agree >= len(samples):
            return names[0]
        if len(samples) == 1 and samples[0].distance <= self.confident:
            return names[0]
        return None

    def _decide_by_mean(self, samples: list[Sample], encodings: np.ndarray) -> str | None:
        names, _ = self.matcher.match(encodings.mean(axis=0, keepdims=True))
        name = names[0]
        if name is None or any(s.name not in (None, name) for s in samples):
            return None
        to_name = self.matcher.distances(encodings)[:, list(self.matcher.names).index(name)]
        if (to_name > self.strong).any():
            return None  # one sample is somebody else: another face has been on this track
        if len(samples) == 1 and to_name[0] > self.confident:
            return None
        return name

    def wants_sample(self, track_id: int, frame_index: int, *, face_px: float | None = None) -> bool:
        """Whether to encode this track's face in this frame.

        Args:
            track_id: the track.
            frame_index: the frame about to be sampled (only frames where the face was detected
                should be offered, and only faces :func:`worth_sampling`).
            face_px: the face's box height; faces under ``min_face_px`` are never sampled.

        Returns:
            True for the first good frame, then once per interval (at once after
            :meth:`recheck`); never for a revoked track.
        """
        if face_px is not None and face_px < self.min_face_px:
            return False
        track_id = int(track_id)
        samples = self._samples.get(track_id)
        if samples:
            if self.revoked(track_id):
                return False
            last = next((s.frame for s in reversed(samples) if s.frame is not None), None)
            if self.decision(track_id) is not None:
                interval = self.settled_interval
            else:
                interval = self.quick_interval if len(samples) < self.quick_samples else self.interval
            if last is not None and frame_index - last < interval and track_id not in self._recheck:
                return False
        self._recheck.discard(track_id)
        self._asked[track_id] = frame_index
        return True

    def recheck(self, track_id: int) -> None:
        """Let the next :meth:`wants_sample` of this track say yes at once (it may have jumped faces)."""
        self._recheck.add(int(track_id))

    def forget(self, track_id: int) -> None:
        """Drop a dead track's samples (long live streams)."""
        track_id = int(track_id)
        self._samples.pop(track_id, None)
        self._asked.pop(track_id, None)
        self._recheck.discard(track_id)
        self._decided.pop(track_id, None)


def votes_for(identity, matcher, *, fps: float = 30.0, still: bool = False) -> IdentityVotes:
    """The :class:`IdentityVotes` of a run, from its ``IdentitySettings`` and gallery matcher."""
    return IdentityVotes(
        fps=fps, tolerance=identity.tolerance, min_face_px=identity.min_face_px, matcher=matcher, still=still
    )


def sample_faces(votes: IdentityVotes, image, faces, frame_index: int, *, encoder, matcher, limit: int | None = None):
    """Encode the faces of one frame whose track wants a sample now, and add the samples to ``votes``.

    The one sampling step of every mode. ``faces`` must carry ``track_id`` (a photo numbers its
    faces); faces not :func:`worth_sampling` are never encoded.

    Args:
        votes: the run's votes (the caller holds any lock they need).
        image: (h, w, 3) uint8 BGR frame the boxes are in.
        faces: this frame's detected faces with their track ids (-1: no track, never sampled).
        frame_index: the frame's index.
        encoder: has ``encode(image, xyxy) -> (m, 128)``.
        matcher: has ``match(encodings) -> (names, distances)``.
        limit: encode at most this many faces, biggest first (live streams bound their latency).

    Returns:
        The indices into ``faces`` that were encoded.
    """
    wanted = pick_samples(votes, faces, frame_index, limit=limit)
    if len(wanted):
        add_samples(votes, faces.track_id[wanted], frame_index, encoder.encode(image, faces.xyxy[wanted]), matcher)
    return wanted


def pick_samples(votes: IdentityVotes, faces, frame_index: int, *, limit: int | None = None) -> np.ndarray:
    """Indices of the faces (biggest first) to encode in this frame; see :func:`sample_faces`."""
    good = worth_sampling(faces, votes.min_face_px) & (np.asarray(faces.track_id) >= 0)
    wanted = []
    for i in np.argsort(-faces.height, kind="stable"):
        if good[i] and votes.wants_sample(int(faces.track_id[i]), frame_index):
            wanted.append(int(i))
            if limit is not None and len(wanted) == limit:
                break
    return np.asarray(sorted(wanted), np.intp)


def add_samples(votes: IdentityVotes, track_ids, frame_index: int, encodings: np.ndarray, matcher) -> None:
    """Match encodings of one frame and record them as samples of their tracks."""
    names, distances = matcher.match(encodings)
    for track_id, name, distance, encoding in zip(np.asarray(track_ids).tolist(), names, distances, encodings):
        votes.add(int(track_id), name, float(distance), frame_index=frame_index, encoding=encoding)
