"""Capture: decode a live source in its own thread and keep only the newest frames.

The capture thread never waits for anyone: frames go into a bounded queue that drops the oldest
when the output loop is slow, and into a one-slot mailbox from which the detector takes the newest.
Each frame is stamped with the monotonic time it was captured; audio is written to the
:class:`~blurcli.live.audio.AudioTimeline` on the same clock, which keeps the two in sync.

A file (or a lavfi graph) is delivered in real time from its timestamps, like a camera would. How
timestamps become capture time, and where a live source's present begins after a backlog, is
:mod:`blurcli.live.source_clock`.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np

from ..errors import InputError
from ..media._pixels import normalise_rotation, upright
from ..media.colour import frame_to_bgr
from ..secrets import mask_secrets
from .audio import AudioTimeline, Resampler
from .reconnect import SourceOutage, listens, reconnects, retry_pause
from .settings import SourceSpec
from .source_clock import Backlog, SourceClock

log = logging.getLogger("blurcli.live")

#: Seconds a source may take to open or to deliver its next packet before it counts as dead.
OPEN_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 10.0
#: Probing of an RTMP source: FLV sends its stream headers first, so FFmpeg needs no seconds of
#: look-ahead to know the streams. With its default probe, the first ~1 s of every (re)connection
#: was read ahead in a burst and dropped as stale by the live output (measured with a publisher
#: dropping and coming back: 57 of 90 pictures of a 3 s push sent, 88 with these); ``-o`` overrides.
RTMP_PROBE = {"analyzeduration": "0", "probesize": "32768"}
#: A listening source with no source timeout waits this long for its first publisher (a day).
LISTEN_FOREVER_S = 86400.0


@dataclass
class CapturedFrame:
    """One captured picture.

    Attributes:
        image: (h, w, 3) uint8 BGR, upright, at the output size. Never modified after capture.
        time: monotonic seconds at which it was captured (a file: when it was due).
        index: 0-based capture order; never repeats, even across loops of a file.
        cut: the frame starts a new shot (only when capture was given a cut detector).
    """

    image: np.ndarray
    time: float
    index: int
    cut: bool = False


class FrameQueue:
    """Bounded FIFO of captured frames; a full queue drops its oldest frame (capture never blocks)."""

    def __init__(self, maxlen: int = 120) -> None:
        self._items: collections.deque[CapturedFrame] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, frame: CapturedFrame) -> None:
        with self._lock:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(frame)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def drain(self) -> list[CapturedFrame]:
        """Everything queued, oldest first."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items


class Mailbox:
    """One slot holding the newest frame; readers wait for one newer than what they saw."""

    def __init__(self) -> None:
        self._frame: CapturedFrame | None = None
        self._cond = threading.Condition()
        self.closed = False

    def put(self, frame: CapturedFrame) -> None:
        with self._cond:
            self._frame = frame
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def newer_than(self, index: int, timeout: float = 0.1) -> CapturedFrame | None:
        """The newest frame if its index is above ``index``, waiting up to ``timeout`` seconds for one."""
        with self._cond:
            self._cond.wait_for(lambda: self.closed or (self._frame is not None and self._frame.index > index), timeout)
            frame = self._frame
        return frame if frame is not None and frame.index > index else None


class Halted(Exception):
    """The stream was stopped while a source was being opened."""


def open_source(
    spec: SourceSpec, open_timeout: float = OPEN_TIMEOUT_S, *, halt: threading.Event | None = None
) -> av.container.InputContainer:
    """Open a source with PyAV (``open_timeout``: seconds it may take, a listening source's wait included).

    FFmpeg's open blocks in C, where Python acts on no signal: a listening source waiting for its
    publisher ignored Ctrl-C for as long as it waited. So the open runs in a helper thread while
    this one waits in short steps: Ctrl-C (and SIGTERM) act at once, and so does ``halt``. An
    abandoned open ends with its own timeout; its container, if it ever opens, is closed.

    Raises:
        Halted: ``halt`` was set first.
        InputError: the device, file or URL cannot be opened (missing camera, refused connection,
            unknown format). The message names the source with credentials masked.
    """
    name = spec.describe()
    if spec.format is None and "://" not in spec.url and not Path(spec.url).exists():
        raise InputError(f"source {name} does not exist")
    result: list = []
    abandoned = threading.Event()

    def opener() -> None:
        try:
            result.append((_open(spec, name, open_timeout), None))
        except BaseException as exc:  # handed to the waiting thread
            result.append((None, exc))
        if abandoned.is_set() and result[0][0] is not None:
            result[0][0].close()

    helper = threading.Thread(target=opener, name="blurcli-open", daemon=True)
    helper.start()
    try:
        while helper.is_alive():
            helper.join(0.05)
            if halt is not None and halt.is_set() and helper.is_alive():
                raise Halted(name)
    except BaseException:
        abandoned.set()
        if result and result[0][0] is not None:
            result[0][0].close()
        raise
    container, error = result[0]
    if error is not None:
        raise error
    return container


def _open(spec: SourceSpec, name: str, open_timeout: float) -> av.container.InputContainer:
    options = dict(spec.options)
    if spec.url.lower().startswith(("rtmp://", "rtmps://")):
        options = {**RTMP_PROBE, **options}
    try:
        container = av.open(spec.url, format=spec.format, options=options, timeout=(open_timeout, READ_TIMEOUT_S))
        for stream in container.streams.video:
            stream.thread_type = "AUTO"  # frame threads: decoding keeps up with 1080p on two cores
        return container
    except FileNotFoundError:
        if spec.format in ("v4l2", "video4linux2"):
            raise InputError(f"camera {spec.url} not found; list cameras with `v4l2-ctl --list-devices` or `ls /dev/video*`") from None
        raise InputError(f"source {name} not found") from None
    except PermissionError:
        raise InputError(f"no permission to open {name} (is your user in the 'video'/'audio' group?)") from None
    except ValueError as exc:  # unknown format name
        raise InputError(f"cannot open {name}: {mask_secrets(str(exc))}") from None
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"cannot open {name}: {mask_secrets(_reason(exc))}") from None


def _reason(exc: BaseException) -> str:
    """An FFmpeg error without the file name PyAV appends (the caller names the source itself)."""
    return getattr(exc, "strerror", None) or str(exc)


def to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as (h, w, 3) uint8 BGR, upright (its display rotation applied).

    The conversion of every mode (:func:`blurcli.media.colour.frame_to_bgr`): full-range webcams
    keep their levels.
    """
    return upright(frame_to_bgr(frame), normalise_rotation(getattr(frame, "rotation", 0) or 0))


def even_size(width: int, height: int) -> tuple[int, int]:
    """The largest even size not above ``width x height`` (4:2:0 needs even sides)."""
    return max(2, width - width % 2), max(2, height - height % 2)


class Capture(threading.Thread):
    """Decodes a source until it ends or ``stop`` is set.

    Open it with :meth:`open` (in the caller's thread, so a missing source fails before anything
    starts), then ``start()`` it.

    Args:
        spec: the source.
        frames: receives every frame (None for an audio-only input).
        newest: receives every frame too; the detector reads the newest from it.
        audio: receives the source's audio (None to ignore it).
        stop: set to end capture.
        size: output (width, height); None keeps the source's upright size, rounded down to even.
        cuts: ``CutDetector``-like (``update(image) -> bool``) run on every frame, here rather than
            in the output loop, which must stay light.
        source_timeout: seconds a live source may stay away before capture ends (None: for ever),
            see :mod:`blurcli.live.reconnect`.
        now: monotonic clock (tests pass a fake).
    """

    def __init__(
        self,
        spec: SourceSpec,
        *,
        frames: FrameQueue | None,
        newest: Mailbox | None,
        audio: AudioTimeline | None,
        stop: threading.Event,
        size: tuple[int, int] | None = None,
        cuts=None,
        source_timeout: float | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name="blurcli-capture", daemon=True)
        self.source_timeout = source_timeout
        self.outage = SourceOutage(now)
        self._cut_next = False
        self.cuts = cuts
        self.spec = spec
        self.frames = frames
        self.newest = newest
        self.audio = audio
        self.halt = stop
        self.size = size
        self._now = now
        self._anchor = SourceClock(spec.paced, now)
        self.backlog = Backlog(now)
        self._container: av.container.InputContainer | None = None
        self._index = 0
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self.captured = 0
        self.has_audio = False
        self.source_fps: float | None = None
        self.source_size: tuple[int, int] | None = None  # upright, even; known after open()
        self.first_picture: np.ndarray | None = None

    # -- opening ---------------------------------------------------------------------------

    def open(self) -> "Capture":
        """Open the source and, for video, decode its first frame to learn the picture size.

        Raises:
            InputError: the source cannot be opened, has no video (or audio, for an audio input),
                or yields no frame.
        """
        wait = OPEN_TIMEOUT_S
        if listens(self.spec):  # a phone connects when its user starts it: wait for it like for a return
            wait = self.source_timeout or LISTEN_FOREVER_S
            log.info("waiting for a publisher at %s (up to %.0f s)", self.spec.describe(), wait)
        self._container = open_source(self.spec, open_timeout=wait)
        container = self._container
        want_video = self.frames is not None
        if want_video and not container.streams.video:
            container.close()
            raise InputError(f"source {self.spec.describe()} has no video")
        self.has_audio = bool(container.streams.audio) and self.audio is not None
        if not want_video and not self.has_audio:
            container.close()
            raise InputError(f"audio input {self.spec.describe()} has no audio")
        if want_video:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            self.source_fps = float(rate) if rate else None
            try:
                first = next(container.decode(stream))
            except (StopIteration, av.FFmpegError, OSError) as exc:
                container.close()
                reason = "no frames" if isinstance(exc, StopIteration) else mask_secrets(_reason(exc))
                raise InputError(f"cannot read video from {self.spec.describe()}: {reason}") from None
            self.first_picture = to_bgr(first)  # the start-up choice times the encoder on it
            self.source_size = even_size(self.first_picture.shape[1], self.first_picture.shape[0])
            if self.size is None:
                self.size = self.source_size
            if self.spec.is_file:  # start again from the top so that no frame or audio is lost
                container.close()
                self._container = open_source(self.spec)
        return self

    def close(self) -> None:
        """Release the source if the thread was never started."""
        if self._container is not None and not self.is_alive():
            self._container.close()
            self._container = None

    # -- the thread --------------------------------------------------------------------------

    def run(self) -> None:
        # Time starts now, not when open() peeked at the first frame (the detector warmed up since),
        # and a live source starts at its live edge, not with what piled up meanwhile.
        self._anchor = SourceClock(self.spec.paced, self._now)
        self._catch_up()
        try:
            while not self.halt.is_set():
                live = reconnects(self.spec)
                try:
                    self._read_all()
                    reason = "it stopped sending"
                except InputError as exc:
                    if not live:
                        raise
                    reason = str(exc)
                if self.halt.is_set():
                    break
                if live:
                    if not self._reconnect(reason):
                        break
                elif self.spec.loop and self.spec.is_file:
                    self._container.close()
                    self._container = open_source(self.spec)
                else:
                    break
        except Halted:
            pass
        except BaseException as exc:  # passed to the output loop, which stops the stream
            if not self.halt.is_set():
                self.error = exc
        finally:
            if self._container is not None:
                self._container.close()
                self._container = None
            self.ended.set()
            if self.newest is not None and self.frames is not None:
                self.newest.close()

    def _reconnect(self, reason: str) -> bool:
        """Open a live source again after it stopped, until it is back (True), ``halt`` is set or
        the source timeout passes (False). See :mod:`blurcli.live.reconnect`."""
        name = self.spec.describe()
        if self._container is not None:
            self._container.close()
            self._container = None
        again = self.outage.active  # it opened, but stopped before its first picture: not back yet
        self.outage.begin(mask_secrets(reason))
        if again:
            failures = self.outage.failed_attempt(mask_secrets(reason))
            self.halt.wait(retry_pause(self.spec, failures))
        else:
            log.warning("source %s dropped (%s): sending the slate and reconnecting", name, mask_secrets(reason))
        while not self.halt.is_set():
            left = self.outage.left(self.source_timeout)
            if left is not None and left <= 0:
                self.outage.gave_up = True
                log.warning(
                    "source %s stayed away for %.0f s (--source-timeout): ending the stream", name, self.outage.away()
                )
                return False
            try:
                container = open_source(
                    self.spec, open_timeout=OPEN_TIMEOUT_S if left is None else max(0.5, min(OPEN_TIMEOUT_S, left)),
                    halt=self.halt,
                )
                if self.frames is not None and not container.streams.video:
                    container.close()
                    raise InputError(f"source {name} has no video")
            except InputError as exc:
                failures = self.outage.failed_attempt(str(exc))
                log.debug("source %s not back yet (attempt %d): %s", name, failures, exc)
                pause = retry_pause(self.spec, failures)
                self.halt.wait(pause if left is None else max(0.0, min(pause, left)))
                continue
            self._container = container
            self.has_audio = bool(container.streams.audio) and self.audio is not None
            self._anchor = SourceClock(self.spec.paced, self._now)  # the new connection's timestamps start anew
            self._catch_up()
            self._cut_next = True  # nothing seen before the gap vouches for anyone after it
            return True
        return False

    def _read_all(self) -> None:
        container = self._container
        streams = []
        video = container.streams.video[0] if (self.frames is not None and container.streams.video) else None
        if video is not None:
            streams.append(video)
        audio = container.streams.audio[0] if self.has_audio else None
        if audio is not None:
            streams.append(audio)
        resampler = Resampler() if audio is not None else None
        last_end = 0.0
        packets = container.demux(streams)
        try:
            while not self.halt.is_set():
                before = self._now()
                packet = next(packets, None)
                if packet is None:
                    break
                if self.backlog.catching_up:
                    if self.backlog.stale(self._now() - before):
                        self._drop(packet, audio, resampler)
                        continue
                    self._live_edge(packet)
                for frame in packet.decode():
                    if packet.stream is video:
                        last_end = self._video(frame, last_end)
                    else:
                        self._audio(frame, resampler)
                        if frame.time is not None:
                            last_end = max(last_end, frame.time + frame.samples / frame.sample_rate)
        except av.EOFError:
            pass
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"reading {self.spec.describe()} failed: {mask_secrets(_reason(exc))}") from None
        self._anchor.offset += last_end  # the next loop of a file continues where this one ended

    def _catch_up(self) -> None:
        """Drop a live source's backlog from the next packet on (see :mod:`.source_clock`)."""
        if not self.spec.paced:
            self.backlog.begin()

    def _drop(self, packet: av.Packet, audio, resampler: Resampler | None) -> None:
        """A backlog packet: decoded (the decoder needs its references), its picture dropped, its
        sound held until the live edge is known."""
        for frame in packet.decode():
            if packet.stream is audio and frame.time is not None and self.audio is not None:
                at = frame.time
                for chunk in resampler(frame):
                    self.backlog.hold(at, chunk)
                    at += chunk.shape[1] / self.audio.rate

    def _live_edge(self, packet: av.Packet) -> None:
        """The first packet that had to wait: a fresh clock takes the newest moment received as
        now, and the sound held from just before it is written where it belongs."""
        held = self.backlog.sound()
        self._anchor = SourceClock(self.spec.paced, self._now)
        newest = [source_s for source_s, _ in held]
        if packet.pts is not None and packet.time_base is not None:
            newest.append(float(packet.pts * packet.time_base))
        if newest:
            self._anchor.anchor(max(newest))
            for source_s, chunk in held:
                self.audio.write(self._anchor.time(source_s), chunk)

    def _stalled(self, at: float) -> bool:
        """A live packet this late means the source stalled: drop what piled up meanwhile."""
        if not self._anchor.stalled(at):
            return False
        log.info(
            "source %s fell %.1f s behind (a stall): dropping what piled up, resuming at the live moment",
            self.spec.describe(), self._now() - at,
        )
        self._catch_up()
        self._cut_next = True  # the scene may have changed while nothing came
        return True

    def _video(self, frame: av.VideoFrame, last_end: float) -> float:
        t = frame.time
        at = self._anchor.time(t)
        if self._stalled(at):
            return last_end
        self._pace(at)
        image = to_bgr(frame)
        width, height = self.size
        if image.shape[1] != width or image.shape[0] != height:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        cut = bool(self.cuts.update(image)) if self.cuts is not None else False
        if self._cut_next:
            cut, self._cut_next = True, False
        if self.outage.active:
            log.info("source %s is back after %.1f s", self.spec.describe(), self.outage.end())
        captured = CapturedFrame(image, at, self._index, cut)
        self._index += 1
        self.captured += 1
        self.frames.put(captured)
        if self.newest is not None:
            self.newest.put(captured)
        if t is not None:
            duration = 1.0 / self.source_fps if self.source_fps else 0.0
            last_end = max(last_end, t + duration)
        return last_end

    def _pace(self, at: float) -> None:
        """Wait until ``at`` when the source must be delivered in real time."""
        if not self._anchor.paced:
            return
        while not self.halt.is_set():
            wait = at - self._now()
            if wait <= 0:
                break
            time.sleep(min(wait, 0.05))

    def _audio(self, frame: av.AudioFrame, resampler: Resampler) -> None:
        at = self._anchor.time(frame.time)
        if self._stalled(at):
            return
        if self.frames is None:  # an audio-only input paces itself; otherwise video sets the pace
            self._pace(at)
            if self.outage.active:
                log.info("audio input %s is back after %.1f s", self.spec.describe(), self.outage.end())
        for chunk in resampler(frame):
            self.audio.write(at, chunk)
            at += chunk.shape[1] / self.audio.rate
