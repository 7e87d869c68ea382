"""The sink: encode H.264 + AAC and mux to an RTMP server or a recording, reconnecting on failure.

It runs in its own thread so that a slow or dead network never holds up the output clock. Every
connection is a new session (new muxer, new encoders), so it starts with a header and a keyframe,
which is what an ingest server needs to resume a stream. Timestamps come from the clock's tick
numbers; a tick lost in the queue is filled by repeating the previous picture, so the stream's
frame rate stays constant.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import OutputError, StreamError
from ..media.atomic import atomic_output
from ..media.colour import STREAM_TAGS, bgr_to_frame
from ..media.codec import add_video_stream
from ..secrets import mask_secrets
from .reconnect import Backoff
from .settings import AUDIO_BITRATE, AUDIO_CHANNELS, AUDIO_RATE
from .stats import StreamStats

log = logging.getLogger("blurcli.live")

#: Errors that mean the connection (or the server) is gone; anything else is a bug.
NETWORK_ERRORS = (av.FFmpegError, OSError)
#: Seconds a network operation may block before the connection counts as dead.
IO_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class EncoderSettings:
    """How every session encodes.

    Attributes:
        width, height: picture size (even).
        fps: frame rate; the video time base is 1/fps.
        bitrate: video bitrate cap in bit/s (VBV max rate, 1 s buffer).
        keyint: frames between keyframes (exactly; scene cuts add none).
        preset: libx264 preset.
    """

    width: int
    height: int
    fps: int
    bitrate: int
    keyint: int
    preset: str = "veryfast"


class Session:
    """One connection (or the recording): a muxer with an H.264 and an AAC stream.

    The connection itself is made by FFmpeg on the first write, so a refused connection surfaces
    from :meth:`write`.
    """

    def __init__(self, target: str, fmt: str, enc: EncoderSettings) -> None:
        self.container = av.open(target, "w", format=fmt, timeout=IO_TIMEOUT_S)
        try:
            video = add_video_stream(
                self.container,
                width=enc.width,
                height=enc.height,
                rate=enc.fps,
                time_base=Fraction(1, enc.fps),
                colour=STREAM_TAGS,
                options={
                    "preset": enc.preset,
                    "tune": "zerolatency",
                    "profile": "high",
                    "x264-params": f"keyint={enc.keyint}:min-keyint={enc.keyint}:scenecut=0:bframes=0",
                    "maxrate": str(enc.bitrate),
                    "bufsize": str(enc.bitrate),
                },
                bit_rate=enc.bitrate,
                keyint=enc.keyint,
            )
            audio = self.container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
            audio.bit_rate = AUDIO_BITRATE
            audio.time_base = Fraction(1, AUDIO_RATE)
        except BaseException:
            self.container.close()
            raise
        self.video, self.audio = video, audio
        self._pending = np.zeros((AUDIO_CHANNELS, 0), np.float32)
        self._audio_pts = 0
        self.bytes = 0
        self.frames = 0

    def write(self, pts: int, image: np.ndarray, samples: np.ndarray) -> int:
        """Encode one picture (BGR) at video ``pts`` and its (2, n) audio samples; returns bytes muxed."""
        frame = bgr_to_frame(image, STREAM_TAGS)
        frame.pts = pts
        written = self._mux(self.video.encode(frame))
        self._pending = np.concatenate([self._pending, samples], axis=1) if self._pending.shape[1] else samples
        size = 1024
        while self._pending.shape[1] >= size:
            chunk, self._pending = self._pending[:, :size], self._pending[:, size:]
            written += self._mux(self.audio.encode(_audio_frame(chunk, self._audio_pts)))
            self._audio_pts += size
        self.frames += 1
        return written

    def _mux(self, packets) -> int:
        total = 0
        for packet in packets:
            total += packet.size
            self.container.mux(packet)
        self.bytes += total
        return total

    def close(self) -> None:
        """Flush both encoders and write the trailer."""
        try:
            self._mux(self.video.encode(None))
            if self._pending.shape[1]:
                pad = np.zeros((AUDIO_CHANNELS, 1024 - self._pending.shape[1]), np.float32)
                self._mux(self.audio.encode(_audio_frame(np.concatenate([self._pending, pad], axis=1), self._audio_pts)))
            self._mux(self.audio.encode(None))
        finally:
            self.container.close()

    def abort(self) -> None:
        """Close without flushing (the connection is gone)."""
        with contextlib.suppress(*NETWORK_ERRORS):
            self.container.close()


def _audio_frame(samples: np.ndarray, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32), format="fltp", layout="stereo")
    frame.sample_rate = AUDIO_RATE
    frame.pts = pts
    frame.time_base = Fraction(1, AUDIO_RATE)
    return frame


@dataclass
class _Item:
    tick: int
    image: np.ndarray
    samples: np.ndarray


class Sink(threading.Thread):
    """Encodes and sends frames handed over by the output loop.

    Args:
        enc: encoder settings.
        url: RTMP ingest URL (retried with backoff), or None to record to ``path``.
        path: recording (.flv/.mp4), written to a temp file and renamed when the stream ends cleanly.
        stats: updated as frames go out.
        max_retries: consecutive failures tolerated (None: forever); then :attr:`error` is a StreamError.
        backoff: delays between attempts.
        queue_s: seconds of frames that may wait for the encoder before the oldest are dropped.
            This bounds the latency the sink adds when the encoder or the network cannot keep up.
    """

    def __init__(
        self,
        enc: EncoderSettings,
        *,
        url: str | None = None,
        path: Path | None = None,
        stats: StreamStats,
        max_retries: int | None = None,
        backoff: Backoff | None = None,
        queue_s: float = 1.0,
    ) -> None:
        super().__init__(name="blurcli-sink", daemon=True)
        if (url is None) == (path is None):
            raise ValueError("give url or path")
        self.enc = enc
        self.url = url
        self.path = Path(path) if path is not None else None
        self.stats = stats
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()
        self._queue: collections.deque[_Item] = collections.deque(maxlen=max(2, int(queue_s * enc.fps)))
        self._cond = threading.Condition()
        self._finishing = False
        self._abort = False
        self.error: BaseException | None = None
        self._session: Session | None = None
        self._failures = 0
        self._next_attempt = 0.0
        self._connected_once = False
        self.last_failure: str | None = None
        self._tick0 = 0  # tick that has pts 0 in the current session
        self._last: _Item | None = None
        self.overflow = 0

    @property
    def connected_once(self) -> bool:
        """Whether any connection (or the recording) ever took a frame."""
        return self._connected_once or self.path is not None

    @property
    def target(self) -> str:
        return mask_secrets(self.url) if self.url else str(self.path)

    # -- called by the output loop -------------------------------------------------------------

    def submit(self, tick: int, image: np.ndarray, samples: np.ndarray) -> None:
        """Queue one tick's picture and audio; never blocks (a full queue drops its oldest item)."""
        with self._cond:
            if len(self._queue) == self._queue.maxlen:
                self.overflow += 1
            self._queue.append(_Item(tick, image, samples))
            self._cond.notify()

    def finish(self, abort: bool = False) -> None:
        """Send what is queued, flush and close (``abort``: drop the queue, and a recording with it;
        the runner never aborts a recording)."""
        with self._cond:
            self._finishing = True
            self._abort = abort
            if abort:
                self._queue.clear()
            self._cond.notify()

    # -- the thread ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            if self.path is not None:
                self._record()
            else:
                self._stream()
        except BaseException as exc:  # passed to the output loop
            self.error = exc
        finally:
            self.stats.state = "stopped" if self.error is None else "failed"

    def _next(self) -> _Item | None:
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._finishing, timeout=0.2)
            if self._queue:
                return self._queue.popleft()
            return None

    def _done(self) -> bool:
        with self._cond:
            return self._finishing and not self._queue

    def _record(self) -> None:
        fmt = "mp4" if self.path.suffix.lower() == ".mp4" else "flv"
        with atomic_output(self.path) as tmp:
            try:
                self._session = Session(str(tmp), fmt, self.enc)
            except NETWORK_ERRORS as exc:
                raise OutputError(f"cannot write {self.path}: {_reason(exc)}") from None
            self.stats.state = "recording"
            try:
                while not self._done():
                    item = self._next()
                    if item is not None:
                        self._send(item)
                if self._abort:
                    raise OutputError("recording aborted")
                self._session.close()
            except NETWORK_ERRORS as exc:
                self._session.abort()
                raise OutputError(f"cannot write {self.path}: {_reason(exc)}") from None
            finally:
                self._session = None

    def _stream(self) -> None:
        while not self._done():
            item = self._next()
            if item is None:
                continue
            if self._session is None and not self._connect(item):
                self.stats.unsent += 1
                continue
            try:
                self._send(item)
            except NETWORK_ERRORS as exc:
                self._failed(exc)
                self.stats.unsent += 1
                continue
            if self.stats.state != "live":
                if self._connected_once:
                    self.stats.reconnects += 1
                log.info("%s to %s", "reconnected" if self._connected_once else "connected", self.target)
                self._failures = 0
                self._connected_once = True
                self.stats.state = "live"
        if self._session is not None:
            session, self._session = self._session, None
            if self._abort:
                session.abort()
                return
            try:
                session.close()
            except NETWORK_ERRORS as exc:
                log.warning("closing the connection to %s failed: %s", self.target, _reason(exc))

    def _connect(self, item: _Item) -> bool:
        """Open a new session when the backoff allows; the connection happens on the first write."""
        if time.monotonic() < self._next_attempt:
            return False
        self.stats.state = "connecting"
        try:
            self._session = Session(self.url, "flv", self.enc)
        except NETWORK_ERRORS as exc:
            self._failed(exc)
            return False
        self._tick0 = item.tick
        self._last = None
        return True

    def _failed(self, exc: BaseException) -> None:
        if self._session is not None:
            self._session.abort()
            self._session = None
        self._failures += 1
        self.stats.failures += 1
        reason = _reason(exc)
        self.last_failure = reason
        if self.max_retries is not None and self._failures > self.max_retries:
            self.stats.state = f"gave up: {reason}"
            raise StreamError(f"could not stream to {self.target} after {self._failures} attempt(s): {reason}")
        delay = self.backoff.delay(self._failures)
        self._next_attempt = time.monotonic() + delay
        self.stats.state = f"retrying in {delay:.1f} s: {reason}"
        log.warning("connection to %s failed (%s); retrying in %.1f s", self.target, reason, delay)

    def _send(self, item: _Item) -> None:
        """Write ``item`` at its tick's pts, repeating the previous picture over a gap of lost ticks."""
        session = self._session
        if self._last is not None:
            gap = item.tick - self._last.tick - 1
            if gap > self.enc.fps:  # over a second lost: shift the timeline rather than fill it
                self._tick0 += gap
            else:
                for missing in range(self._last.tick + 1, item.tick):
                    silence = np.zeros_like(item.samples)
                    self._write(session, missing, self._last.image, silence)
                    self.stats.repeated += 1
        self._write(session, item.tick, item.image, item.samples)
        self._last = item

    def _write(self, session: Session, tick: int, image: np.ndarray, samples: np.ndarray) -> None:
        written = session.write(tick - self._tick0, image, samples)
        self.stats.sent += 1
        self.stats.bytes_sent += written
        self.stats.output_rate.add()
        self.stats.bit_rate.add(written)


def _reason(exc: BaseException) -> str:
    """A one-line reason for a network or muxer error, with any URL's key masked."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return mask_secrets(str(text))
