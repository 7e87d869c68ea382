"""The sink: one encode of every picture, muxed to the recording and to the RTMP server.

The encoder and the recording run in the sink's thread, so a slow or dead network never holds up
the output clock or the local copy; the connection has a thread of its own
(:class:`Connection`) that reconnects with backoff. Each connection starts at a fresh keyframe
with timestamps from zero, which is what an ingest server needs to resume a stream. Timestamps
come from the clock's tick numbers; a tick lost in the queue is filled by repeating the previous
picture, so the stream's frame rate stays constant.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ..errors import OutputError, StreamError
from ..media.atomic import publish, temp_path_beside
from ..secrets import mask_secrets
from .encode import Encoder, EncoderSettings, Muxer
from .reconnect import Backoff
from .stats import StreamStats

log = logging.getLogger("blurcli.live")

#: Errors that mean the connection (or the server) is gone; anything else is a bug.
NETWORK_ERRORS = (av.FFmpegError, OSError)

__all__ = ["EncoderSettings", "Sink", "Connection", "Backoff"]


@dataclass
class _Item:
    tick: int
    image: np.ndarray
    samples: np.ndarray


class Sink(threading.Thread):
    """Encodes the frames handed over by the output loop once, for the recording and the connection.

    Args:
        enc: encoder settings.
        url: RTMP ingest URL (retried with backoff by a :class:`Connection`), or None.
        path: recording (.flv/.mp4), written to a temp file and renamed when it is closed; None for
            none. At least one of ``url`` and ``path`` is given.
        stats: updated as frames go out.
        max_retries: consecutive connection failures tolerated (None: forever); then :attr:`error`
            is a StreamError. A recording is still closed and kept.
        backoff: delays between connection attempts.
        queue_s: seconds of frames that may wait for the encoder (or the network) before the
            oldest are dropped. This bounds the latency the sink adds when either falls behind.
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
        if url is None and path is None:
            raise ValueError("give url, path or both")
        self.enc = enc
        self.path = Path(path) if path is not None else None
        self.stats = stats
        self.connection = Connection(url, enc.fps, stats, max_retries, backoff, queue_s) if url else None
        self._queue: collections.deque[_Item] = collections.deque(maxlen=max(2, int(queue_s * enc.fps)))
        self._cond = threading.Condition()
        self._finishing = False
        self._abort = False
        self._error: BaseException | None = None
        self._tick0 = 0  # tick that has pts 0
        self._last: _Item | None = None
        self.overflow = 0
        self._preset: str | None = None  # asked for by the step-down
        self._last_key = 0  # pts of the last keyframe
        #: the recording was closed properly and is in place
        self.recorded = False

    @property
    def error(self) -> BaseException | None:
        """What ended (or should end) the run: the recording failed, or the connection gave up."""
        if self._error is not None:
            return self._error
        return self.connection.error if self.connection is not None else None

    @property
    def connected_once(self) -> bool:
        """Whether any connection ever took a frame (or there is only a recording)."""
        return self.connection is None or self.connection.connected_once

    @property
    def last_failure(self) -> str | None:
        return self.connection.last_failure if self.connection is not None else None

    @property
    def target(self) -> str:
        return self.connection.target if self.connection is not None else str(self.path)

    # -- called by the output loop -------------------------------------------------------------

    def submit(self, tick: int, image: np.ndarray, samples: np.ndarray) -> None:
        """Queue one tick's picture and audio; never blocks (a full queue drops its oldest item)."""
        with self._cond:
            if len(self._queue) == self._queue.maxlen:
                self.overflow += 1
            self._queue.append(_Item(tick, image, samples))
            self._cond.notify()

    @property
    def backlog(self) -> int:
        """Frames waiting for the encoder (it is behind when this grows)."""
        return len(self._queue)

    def set_preset(self, preset: str) -> None:
        """Ask for x264 ``preset`` from the next keyframe on (see :meth:`Encoder.set_preset`)."""
        self._preset = preset

    def finish(self, abort: bool = False) -> None:
        """Encode what is queued, flush and close. ``abort`` drops the connection without
        sending what is queued; a recording is never aborted: it is finished and kept."""
        with self._cond:
            self._finishing = True
            self._abort = abort
            if abort and self.path is None:
                self._queue.clear()
            self._cond.notify()

    # -- the thread ---------------------------------------------------------------------------

    def run(self) -> None:
        encoder = recording = tmp = None
        connection = self.connection
        try:
            encoder = Encoder(self.enc)
            if self.path is not None:
                tmp = temp_path_beside(self.path)
                recording = self._recording_call(lambda: Muxer(str(tmp), _format(self.path), encoder))
                self.stats.state = "recording"
            if connection is not None:
                connection.encoder = encoder
                connection.start()
            while not self._done():
                item = self._next()
                if item is not None:
                    for tick, image, samples in self._fill(item):
                        self._encode(encoder, recording, tick, image, samples)
            packets = encoder.flush()
            if recording is not None:
                self._recording_call(lambda: recording.mux(packets))
                self._recording_call(recording.close)
                recording = None
                self._recording_call(lambda: publish(tmp, self.path))
                tmp, self.recorded = None, True
            if connection is not None:
                connection.put(packets)
        except BaseException as exc:  # passed to the output loop
            self._error = exc
        finally:
            if connection is not None and connection.ident is not None:
                connection.finish(abort=self._abort or self._error is not None)
                connection.join()
            if recording is not None:
                recording.abort()
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            if encoder is not None:
                encoder.close()
            self.stats.state = "stopped" if self.error is None else "failed"

    def _recording_call(self, call):
        """Run one step of writing the recording; its failures are the recording's (OutputError)."""
        try:
            return call()
        except NETWORK_ERRORS as exc:
            raise OutputError(f"cannot write {self.path}: {_reason(exc)}") from None

    def _next(self) -> _Item | None:
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._finishing, timeout=0.2)
            if self._queue:
                return self._queue.popleft()
            return None

    def _done(self) -> bool:
        with self._cond:
            if self._finishing and self.path is None and self.connection.error is not None:
                return True  # nowhere left to send to
            return self._finishing and not self._queue

    def _fill(self, item: _Item):
        """``item`` and, before it, the previous picture again for each lost tick (up to a second;
        a longer loss shifts the timeline instead of filling it)."""
        last, self._last = self._last, item
        if last is not None:
            gap = item.tick - last.tick - 1
            if gap > self.enc.fps:
                self._tick0 += gap
            else:
                for missing in range(last.tick + 1, item.tick):
                    self.stats.repeated += 1
                    yield missing, last.image, np.zeros_like(item.samples)
        yield item.tick, item.image, item.samples

    def _encode(self, encoder: Encoder, recording: Muxer | None, tick: int, image, samples) -> None:
        packets = []
        pts = tick - self._tick0
        if self._preset is not None and (pts - self._last_key) % self.enc.keyint == 0:
            # At a keyframe the old encoder would make anyway, so the keyframes stay 2 s apart.
            preset, self._preset = self._preset, None
            if preset != encoder.settings.preset:
                packets = encoder.set_preset(preset)
        packets += encoder.encode(pts, image, samples)
        for packet in packets:
            if packet.is_keyframe and packet.stream.type == "video":
                self._last_key = packet.pts
        if recording is not None:
            frames = self._recording_call(lambda: recording.mux(packets))
            self.stats.recorded += frames
        if self.connection is not None:
            self.connection.put(packets)
        else:
            self.stats.sent += 1
            self.stats.output_rate.add()
            written = sum(p.size for p in packets)
            self.stats.bytes_sent += written
            self.stats.bit_rate.add(written)


class Connection(threading.Thread):
    """The RTMP side of a :class:`Sink`: one session per connection, reconnected with backoff.

    It has its own thread and packet queue, so a connection that blocks (a stalled mobile
    network, a connect that times out) never holds up the encoder or the recording. A new session
    asks the encoder for a keyframe and starts there; when the network falls ``queue_s`` behind,
    the queue is dropped and the session goes on from the next keyframe (:meth:`Muxer.resync`).
    """

    def __init__(
        self, url: str, fps: int, stats: StreamStats, max_retries: int | None, backoff: Backoff | None, queue_s: float
    ) -> None:
        super().__init__(name="blurcli-connection", daemon=True)
        self.url = url
        self.stats = stats
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()
        self.encoder: Encoder | None = None  # set by the sink before start()
        self._limit = max(2, int(queue_s * fps))  # video packets
        self._queue: collections.deque[av.Packet] = collections.deque()
        self._queued_video = 0
        self._cond = threading.Condition()
        self._finishing = False
        self._abort = False
        self.error: BaseException | None = None
        self._session: Muxer | None = None
        self._failures = 0
        self._next_attempt = 0.0
        self.connected_once = False
        self.last_failure: str | None = None

    @property
    def target(self) -> str:
        return mask_secrets(self.url)

    def put(self, packets: list[av.Packet]) -> None:
        """Queue packets from the encoder; never blocks."""
        video = sum(p.stream.type == "video" for p in packets)
        with self._cond:
            if self.error is not None or self._finishing:
                return
            if self._queued_video + video > self._limit:  # the network is behind: start again at a keyframe
                self.stats.unsent += self._queued_video
                self._queue.clear()
                self._queued_video = 0
                if self._session is not None:
                    self._session.resync()
                    if not any(p.is_keyframe and p.stream.type == "video" for p in packets):
                        self.encoder.want_key = True
            self._queue.extend(packets)
            self._queued_video += video
            self._cond.notify()

    def finish(self, abort: bool = False) -> None:
        """Send what is queued and close (``abort``: drop it and close at once)."""
        with self._cond:
            self._finishing = True
            self._abort = abort
            if abort:
                self._queue.clear()
            self._cond.notify()

    def run(self) -> None:
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._queue or self._finishing, timeout=0.2)
                    if not self._queue and self._finishing:
                        break
                    packets, self._queued_video = list(self._queue), 0
                    self._queue.clear()
                self._send(packets)
        except BaseException as exc:  # read by the sink and the output loop
            self.error = exc
        finally:
            session, self._session = self._session, None
            if session is not None:
                if self._abort or self.error is not None:
                    session.abort()
                else:
                    try:
                        session.close()
                    except NETWORK_ERRORS as exc:
                        log.warning("closing the connection to %s failed: %s", self.target, _reason(exc))
            if self.error is not None:
                self.stats.state = "failed"

    def _send(self, packets: list[av.Packet]) -> None:
        video = sum(p.stream.type == "video" for p in packets)
        if self._session is None and not self._connect():
            self.stats.unsent += video
            return
        try:
            sent = self._session.mux(packets)
        except NETWORK_ERRORS as exc:
            self._failed(exc)
            self.stats.unsent += video
            return
        if self._session.waiting:  # no keyframe yet: ask for one now rather than wait up to 2 s
            self.encoder.want_key = True
        self.stats.unsent += video - sent
        if sent:
            self.stats.sent += sent
            self.stats.output_rate.add(sent)
            written = sum(p.size for p in packets)
            self.stats.bytes_sent += written
            self.stats.bit_rate.add(written)
            if self.stats.state != "live":
                if self.connected_once:
                    self.stats.reconnects += 1
                log.info("%s to %s", "reconnected" if self.connected_once else "connected", self.target)
                self._failures = 0
                self.connected_once = True
                self.stats.state = "live"

    def _connect(self) -> bool:
        """Open a new session when the backoff allows; it connects at the first keyframe it is given."""
        if time.monotonic() < self._next_attempt:
            return False
        self.stats.state = "connecting"
        try:
            self._session = Muxer(self.url, "flv", self.encoder)
        except NETWORK_ERRORS as exc:
            self._failed(exc)
            return False
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


def _format(path: Path) -> str:
    return "mp4" if path.suffix.lower() == ".mp4" else "flv"


def _reason(exc: BaseException) -> str:
    """A one-line reason for a network or muxer error, with any URL's key masked."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return mask_secrets(str(text))
