"""Background workers of a live stream: detection on the newest frame, and identity sampling.

Both run beside the output loop and never hold it up: the detector always takes the newest
captured frame (skipping those it had no time for), and the identity worker takes the newest job
and drops older ones. Errors are kept and re-raised by the output loop.
"""
from __future__ import annotations

import inspect
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ..faces import Faces
from ..identity.policy import add_samples
from .capture import CapturedFrame, Mailbox

log = logging.getLogger("blurcli.live")


@dataclass
class Detection:
    """What the detector found on one captured frame.

    Attributes:
        frame: the frame it ran on.
        faces: boxes in the frame's pixels.
        latency: seconds from the frame's capture to the end of detection.
        seconds: seconds the detector itself took.
    """

    frame: CapturedFrame
    faces: Faces
    latency: float
    seconds: float


def detect_function(detector, max_side: int, small_faces: bool) -> Callable[[np.ndarray], Faces]:
    """``image -> Faces`` at the live detection size.

    Uses the detector's own ``max_side``/``upscale_small`` options when it has them, else scales
    the picture down here and the boxes back up.
    """
    try:
        params = inspect.signature(detector.detect).parameters
    except (TypeError, ValueError):
        params = {}
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if "max_side" in params or takes_kwargs:
        options = {"max_side": max_side}
        if "upscale_small" in params or takes_kwargs:
            options["upscale_small"] = small_faces
        return lambda image: detector.detect(image, **options)

    def scaled(image: np.ndarray) -> Faces:
        h, w = image.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        if scale >= 1.0:
            return detector.detect(image)
        small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        faces = detector.detect(small)
        faces.xyxy = faces.xyxy / scale
        faces.landmarks = faces.landmarks / scale
        return faces

    return scaled


class DetectionWorker(threading.Thread):
    """Runs ``detect`` on the newest captured frame, again and again.

    Args:
        detect: ``image -> Faces``.
        newest: the capture's mailbox.
        stop: set to end the worker.
        min_interval: seconds between the starts of two runs at least. Detecting more often than
            the look-ahead needs only takes CPU from capture and the encoder on a small machine.
        now: monotonic clock.
    """

    def __init__(
        self,
        detect: Callable[[np.ndarray], Faces],
        newest: Mailbox,
        stop: threading.Event,
        *,
        min_interval: float = 0.0,
        now=time.monotonic,
    ) -> None:
        super().__init__(name="blurcli-detect", daemon=True)
        self._detect = detect
        self._newest = newest
        self._halt = stop
        self.min_interval = min_interval  # the step-down may lengthen it while streaming
        self._now = now
        self._results: list[Detection] = []
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.last_index = -1

    def run(self) -> None:
        try:
            started = -1e9
            while not self._halt.is_set():
                wait = started + self.min_interval - self._now()
                if wait > 0:
                    self._halt.wait(wait)
                frame = self._newest.newer_than(self.last_index, timeout=0.1)
                if frame is None:
                    if self._newest.closed:
                        break
                    continue
                started = self._now()
                faces = self._detect(frame.image)
                done = self._now()
                self.last_index = frame.index
                with self._lock:
                    self._results.append(Detection(frame, faces, done - frame.time, done - started))
        except BaseException as exc:  # re-raised by the output loop
            self.error = exc

    def drain(self) -> list[Detection]:
        """Detections finished since the last call, in frame order."""
        with self._lock:
            results, self._results = self._results, []
        return results


@dataclass
class IdentityJob:
    """Faces of one frame to encode and match: (m, 4) boxes and their (m,) track ids."""

    image: np.ndarray
    xyxy: np.ndarray
    track_ids: np.ndarray
    frame_index: int


class IdentityWorker(threading.Thread):
    """Encodes sampled faces and feeds the matches to the identity votes.

    Encoding costs ~75 ms per face on one core, so it runs apart from detection and only on the
    newest job; tracks ask for samples sparsely (``IdentityVotes.wants_sample``).

    Args:
        encoder: has ``encode(image, xyxy) -> (m, 128)``.
        matcher: has ``match(encodings) -> (names, distances)``.
        votes: ``IdentityVotes``; ``add`` is called under ``lock``.
        lock: guards ``votes`` (the output loop reads decisions under it).
        stop: set to end the worker.
    """

    def __init__(self, encoder, matcher, votes, lock: threading.Lock, stop: threading.Event) -> None:
        super().__init__(name="blurcli-identity", daemon=True)
        self._encoder = encoder
        self._matcher = matcher
        self._votes = votes
        self._votes_lock = lock
        self._halt = stop
        self._job: IdentityJob | None = None
        self._busy = False
        self._cond = threading.Condition()
        self.error: BaseException | None = None
        self.samples = 0

    def idle(self) -> bool:
        """True when no job is waiting or being encoded."""
        with self._cond:
            return self._job is None and not self._busy

    def submit(self, job: IdentityJob) -> None:
        """Replace any waiting job with ``job``."""
        with self._cond:
            self._job = job
            self._cond.notify()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                with self._cond:
                    self._cond.wait_for(lambda: self._job is not None or self._halt.is_set(), timeout=0.2)
                    job, self._job = self._job, None
                    self._busy = job is not None
                if job is None:
                    continue
                encodings = self._encoder.encode(job.image, job.xyxy)
                with self._votes_lock:
                    add_samples(self._votes, job.track_ids, job.frame_index, encodings, self._matcher)
                self.samples += len(job.track_ids)
                with self._cond:
                    self._busy = False
        except BaseException as exc:  # re-raised by the output loop
            self.error = exc
