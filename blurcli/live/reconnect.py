"""What a live stream does when either end goes away: the one place for reconnecting.

- **The server** (:class:`~blurcli.live.sink.Sink`): every failed connection waits
  :class:`Backoff` and tries again with a new session, which starts with a keyframe.
- **The source** (:class:`~blurcli.live.capture.Capture`): a live source that stops or fails (a
  phone's push that drops, an RTSP camera or a URL that times out, an unplugged camera) is opened
  again, waiting :data:`SOURCE_BACKOFF` between attempts; a listening source (``listen=1``)
  listens again at once, so that the phone finds it when it comes back. A file still ends the
  stream at its end (or loops with ``--loop``), and so does a lavfi graph: they do not drop.
- **Meanwhile the output keeps its clock**: every tick goes out, with the :class:`Slate` (the
  last picture hidden whole, or ``--slate IMAGE``) and silence, until the source's pictures are
  due again. The tracker starts afresh on the first frame after the gap (it counts as a cut), so
  nobody is kept sharp on the strength of what was seen before it.
- ``--source-timeout`` ends the stream cleanly when the source stays away that long; a recording
  is closed and kept as always.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..settings import RedactSettings

#: Seconds a source may stay away before the stream ends (``--source-timeout``; 0 waits for ever).
DEFAULT_SOURCE_TIMEOUT_S = 120.0


class Backoff:
    """Exponential backoff: ``first * 2**(n-1)`` seconds after the n-th failure, at most ``limit``."""

    def __init__(self, first: float = 0.5, limit: float = 30.0) -> None:
        self.first = first
        self.limit = limit

    def delay(self, failures: int) -> float:
        return min(self.limit, self.first * 2 ** max(0, failures - 1))


#: Waits between attempts to open a source again: short, a phone comes back within seconds.
SOURCE_BACKOFF = Backoff(first=0.25, limit=4.0)
#: A listening source listens again after this pause (its open call itself waits for the publisher).
LISTEN_PAUSE_S = 0.05


def retry_pause(spec, failures: int) -> float:
    """Seconds to wait before opening a source again after ``failures`` failed attempts."""
    return LISTEN_PAUSE_S if listens(spec) else SOURCE_BACKOFF.delay(failures)


def reconnects(spec) -> bool:
    """Whether a source is opened again when it stops: live sources only (URLs and devices)."""
    return not spec.is_file and spec.format != "lavfi"


def listens(spec) -> bool:
    """Whether the source waits for a publisher to connect to it (``-o listen=1``)."""
    return str(dict(spec.options).get("listen", "0")) not in ("", "0")


class SourceOutage:
    """Whether the source is away, since when and why; written by the capture thread, read by the
    output loop (slate, status line) and the log."""

    def __init__(self, now=time.monotonic) -> None:
        self._now = now
        self._lock = threading.Lock()
        self.since: float | None = None
        self.reason = ""
        self.attempts = 0
        self.drops = 0
        self.gave_up = False

    @property
    def active(self) -> bool:
        return self.since is not None

    def begin(self, reason: str) -> None:
        """The source went away (a second failure while away keeps the first time)."""
        with self._lock:
            if self.since is None:
                self.since = self._now()
                self.drops += 1
                self.attempts = 0
            self.reason = reason

    def failed_attempt(self, reason: str) -> int:
        with self._lock:
            self.attempts += 1
            self.reason = reason
            return self.attempts

    def end(self) -> float:
        """The source's pictures are back; returns how long it was away."""
        with self._lock:
            away = self._now() - self.since if self.since is not None else 0.0
            self.since = None
            self.attempts = 0
            return away

    def away(self) -> float:
        since = self.since
        return 0.0 if since is None else self._now() - since

    def left(self, timeout: float | None) -> float | None:
        """Seconds left before ``timeout`` ends the stream (None: no timeout)."""
        if not timeout:
            return None
        return timeout - self.away()

    def describe(self) -> str:
        """For the status line: ``live``, or how long the source has been away."""
        if self.since is None:
            return "live"
        tries = f", attempt {self.attempts + 1}" if self.attempts else ""
        return f"lost {self.away():.0f} s, reconnecting{tries}"


class Slate:
    """The picture sent while the source is away.

    Args:
        size: output (width, height).
        redact: the stream's style (``solid`` makes the default slate black).
        image: ``--slate IMAGE``: a picture fitted into the frame (letterboxed), or None for the
            last picture hidden whole (:func:`blurcli.redact.redact_whole`: nothing of it readable).
    """

    def __init__(self, size: tuple[int, int], redact: RedactSettings = RedactSettings(), image: Path | None = None) -> None:
        self.size = size
        self.redact = redact
        self._fixed = None if image is None else fit(load_slate(image), size)

    def picture(self, last: np.ndarray | None) -> np.ndarray:
        """The slate for an outage that began after ``last`` (the last captured picture, unredacted)."""
        from ..redact import redact_whole

        if self._fixed is not None:
            return self._fixed
        width, height = self.size
        if last is None:
            return np.zeros((height, width, 3), np.uint8)
        slate = last.copy()
        redact_whole(slate, self.redact)
        return slate


def load_slate(path: Path) -> np.ndarray:
    """``--slate``'s picture as BGR (EXIF orientation applied).

    Raises:
        InputError: it cannot be read as a picture.
    """
    from ..media.image_io import load_picture

    try:
        return load_picture(Path(path)).bgr
    except InputError as exc:
        raise InputError(f"--slate: {exc}") from None


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size`` (width, height), centred on black."""
    width, height = size
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    out = np.zeros((height, width, 3), np.uint8)
    x, y = (width - nw) // 2, (height - nh) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return out
