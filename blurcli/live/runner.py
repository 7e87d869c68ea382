"""The live stream: capture -> look-ahead (detect, track, identify) -> redact -> CFR clock -> sink.

Threads: capture (decode, newest frames only), detection (newest frame), identity (sampled faces),
sink (encode + network), and the output loop in the caller's thread, which ticks the clock, takes
the due frame from the look-ahead, hides faces and hands the picture to the sink. Only the output
loop touches the tracker, so the tracker needs no lock.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..errors import StreamError
from ..redact import redact, redact_whole
from .audio import AudioTimeline, samples_in_tick
from .capture import Capture, FrameQueue, Mailbox
from .clock import CfrClock
from .lookahead import LookAhead, Release
from .settings import StreamSettings, default_bitrate
from .reconnect import Backoff, Slate
from .budget import StepDown, choose, cpu_ms
from .encode import EncoderSettings
from .sink import Sink
from .stats import StreamStats
from .workers import Detection, DetectionWorker, IdentityWorker, detect_function

log = logging.getLogger("blurcli.live")

#: Seconds to wait for the first frame of a source before giving up.
FIRST_FRAME_TIMEOUT_S = 20.0
#: Live detection sees only some frames (the newest when it is free), so a face whose score hovers
#: around the threshold can be missed on exactly those frames (seen on short_hamilton_clip.mp4:
#: an 80 px face scoring 0.18-0.36 from frame to frame). Detecting at 0.7x the threshold hides
#: such faces at the cost of a few more false masks.
LIVE_THRESHOLD_FACTOR = 0.7
#: Detection starts at most every ``delay * DETECT_INTERVAL_SHARE`` seconds: a frame then waits at
#: most about that plus one detection for coverage, well inside the look-ahead, and the CPU left
#: over goes to capture and the encoder.
DETECT_INTERVAL_SHARE = 0.25
#: Audio is handed to the encoder this far ahead of the video (same timestamps, earlier in
#: encode order). The muxer interleaves by timestamp and holds each video packet until an audio
#: packet at or after it is queued; AAC's 1024-sample priming would otherwise cost a frame of
#: latency. The samples exist already: audio is captured ``delay`` seconds before it is sent.
AUDIO_LEAD_SAMPLES = 2560
#: At most one "detection is late" warning per this many seconds.
_WARN_EVERY_S = 10.0


@dataclass
class Privacy:
    """The parts that decide what to hide; built from the blurcli modules unless a test passes fakes.

    Attributes:
        detector: has ``detect(image, ...) -> Faces``.
        tracker: has ``update(faces | None, frame_index) -> Faces``.
        votes: ``IdentityVotes``, or None when nobody is enrolled (everyone is hidden).
        encoder: has ``encode(image, xyxy) -> (n, 128)`` (needed with ``votes``); the default is an
            :class:`~blurcli.live.encoder_process.EncoderProcess` (dlib would stall the stream's threads).
        matcher: gallery ``Matcher`` (needed with ``votes``).
        cuts: ``CutDetector``: the tracker is reset at shot cuts (None: never).
    """

    detector: object
    tracker: object
    votes: object | None = None
    encoder: object | None = None
    matcher: object | None = None
    cuts: object | None = None

    def close(self) -> None:
        """Stop helper processes (the encoder's)."""
        close = getattr(self.encoder, "close", None)
        if close is not None:
            close()


def build_privacy(settings: StreamSettings, fps: float) -> Privacy:
    """Load the detector, tracker and, when someone is enrolled, the identity parts.

    Raises:
        ModelError: a model is missing or fails its self-check.
        GalleryError: the gallery cannot be read.
    """
    from ..detect import load_detector
    from ..identity.gallery import Gallery
    from ..identity.policy import votes_for
    from ..track import CutDetector, FaceTracker

    detector = load_detector(replace(settings.detect, threshold=settings.detect.threshold * LIVE_THRESHOLD_FACTOR))
    tracker = FaceTracker(fps=fps)
    identity = settings.identity
    matcher = Gallery.open(identity.gallery).matcher(identity.tolerance)
    if matcher.empty:
        return Privacy(detector, tracker, cuts=CutDetector())
    from .encoder_process import EncoderProcess

    votes = votes_for(identity, matcher, fps=fps)
    return Privacy(detector, tracker, votes, EncoderProcess(), matcher, cuts=CutDetector())


@dataclass
class _Parts:
    """The threads of one run and the look-ahead they feed."""

    captures: list[Capture]
    detector: DetectionWorker
    identity: IdentityWorker | None
    sink: Sink
    lookahead: LookAhead
    step_down: StepDown

    @property
    def threads(self) -> list[threading.Thread]:
        return [t for t in (self.sink, self.detector, self.identity, *self.captures) if t is not None]

    def raise_errors(self) -> None:
        """Re-raise the first error a worker thread hit."""
        for worker in self.threads:
            if worker.error is not None:
                raise worker.error


class LiveStream:
    """One run of ``blurcli stream``.

    Args:
        settings: what to stream where.
        privacy: detector, tracker and identity parts (default: :func:`build_privacy`).
        stats: counters to update (default: a new one, available as :attr:`stats`).
        trace: called from the output loop as ``trace(tick, release, repeated)`` for every tick
            (``release`` is None when the tick repeated the last picture); for tests and benchmarks.
        on_detection: called from the output loop with each :class:`Detection` as it is folded in.
        backoff: reconnection delays (tests shorten them).
    """

    def __init__(
        self,
        settings: StreamSettings,
        *,
        privacy: Privacy | None = None,
        stats: StreamStats | None = None,
        trace: Callable[[int, Release | None, bool], None] | None = None,
        on_detection: Callable[[Detection], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.privacy = privacy
        self.stats = stats or StreamStats()
        self.trace = trace
        self.on_detection = on_detection
        self.backoff = backoff
        self.stop_event = threading.Event()
        self._last_warning = -1e9
        self.delay: float | None = None  # the look-ahead, chosen with the run's identity parts (_assemble)

    def stop(self) -> None:
        """Ask the stream to end after the current tick (thread-safe)."""
        self.stop_event.set()

    def run(self) -> StreamStats:
        """Stream until the source ends, ``duration`` is reached, :meth:`stop` or Ctrl-C.

        Ctrl-C (KeyboardInterrupt) ends the stream cleanly: queued frames are sent, the encoders
        flushed and a recording is kept; the KeyboardInterrupt is then re-raised.

        Raises:
            InputError: the source cannot be opened or fails while streaming.
            StreamError: the connection failed ``max_retries`` times in a row.
            OutputError: the recording cannot be written.
            ModelError, GalleryError: see :func:`build_privacy`.
        """
        s = self.settings
        captures = self._open_inputs()
        try:
            privacy = self.privacy or build_privacy(s, captures[0].source_fps or s.fps)
        except BaseException:
            for capture in captures:
                capture.close()
            raise
        try:
            parts = self._assemble(captures, privacy)
            return self._run(parts)
        finally:
            if self.privacy is None:
                privacy.close()

    def _open_inputs(self) -> list[Capture]:
        """The video source (first) and the audio input, opened; raises InputError before anything starts."""
        s = self.settings
        self._frames, self._newest, self._audio = FrameQueue(), Mailbox(), AudioTimeline()
        timeout = s.source_timeout or None
        video = Capture(
            s.source, frames=self._frames, newest=self._newest, audio=None if s.audio else self._audio,
            stop=self.stop_event, size=s.size, source_timeout=timeout,
        ).open()
        if s.audio is None:
            return [video]
        try:
            audio = Capture(s.audio, frames=None, newest=None, audio=self._audio, stop=self.stop_event, source_timeout=timeout)
            return [video, audio.open()]
        except BaseException:
            video.close()
            raise

    def _assemble(self, captures: list[Capture], privacy: Privacy) -> "_Parts":
        s = self.settings
        video = captures[0]
        video.cuts = privacy.cuts  # shot cuts are found in the capture thread
        # The first inference is slow (memory, kernels); run it now so the first frames are covered.
        detect = detect_function(privacy.detector, s.detect_size, s.small_faces)
        picture = video.first_picture if video.first_picture is not None else np.zeros((*video.size[::-1], 3), np.uint8)
        detect(picture)
        detect_ms = cpu_ms(detect, picture)
        self.delay = delay = s.look_ahead(enrolled=privacy.votes is not None)
        interval = s.detection_look_ahead * DETECT_INTERVAL_SHARE
        choice = choose(
            video.source_size or video.size, s.fps, detect_ms=detect_ms, detect_rate=1.0 / max(interval, 0.01),
            bitrate_for=lambda w, h: s.bitrate or default_bitrate(w, h, s.fps), picture=picture, size=s.size, preset=s.preset,
        )
        log.info("%s", choice.line)
        video.size = width, height = choice.size
        enc = EncoderSettings(width, height, s.fps, s.bitrate or default_bitrate(width, height, s.fps), s.keyframe_interval, choice.preset)
        log.info(
            "streaming %s -> %s%s: %dx%d at %d fps, %.1f Mbit/s, look-ahead %.2f s",
            s.source.describe(), s.target, f" (recorded to {s.record})" if s.record else "",
            width, height, s.fps, enc.bitrate / 1e6, delay,
        )
        sink = Sink(enc, url=s.rtmp_url, path=s.recording, stats=self.stats, max_retries=s.max_retries, backoff=self.backoff)
        self._slate = Slate((width, height), s.redact, s.slate)
        votes_lock = threading.Lock()
        identity = None
        if privacy.votes is not None:
            identity = IdentityWorker(privacy.encoder, privacy.matcher, privacy.votes, votes_lock, self.stop_event)
        lookahead = LookAhead(
            privacy.tracker,
            votes=privacy.votes,
            votes_lock=votes_lock,
            sample=identity.submit if identity else None,
            sampler_idle=identity.idle if identity else (lambda: True),
            fail_open=s.fail_open,
        )
        detector = DetectionWorker(detect, self._newest, self.stop_event, min_interval=interval)
        self.stats.encoding = f"{width}x{height} {choice.preset}"

        def set_preset(preset: str) -> None:
            sink.set_preset(preset)
            self.stats.encoding = f"{width}x{height} {preset}"

        def set_interval(seconds: float) -> None:
            detector.min_interval = seconds

        # A detection must reach every frame within the look-ahead detection is planned for: its
        # interval plus its run (a longer wait for identity does not let it stretch).
        step_down = StepDown(
            s.fps, None if s.preset else choice.preset, set_preset, interval, set_interval,
            max_interval=0.8 * s.detection_look_ahead - 2 * detect_ms / 1000, stats=self.stats,
        )
        return _Parts(captures, detector, identity, sink, lookahead, step_down)

    def _run(self, parts: "_Parts") -> StreamStats:
        """Start the threads, run the output loop, then stop everything in order."""
        for thread in parts.threads:
            thread.start()
        interrupted = failed = False
        try:
            self._loop(parts)
        except KeyboardInterrupt:
            interrupted = True
        except BaseException:
            failed = True
            raise
        finally:
            self.stop_event.set()
            # A recording is never thrown away: it holds only pictures already hidden, so whatever
            # ends the run, it is closed properly and kept. A network send is simply dropped.
            parts.sink.finish(abort=failed)
            self._join(parts.sink, timeout=None if not failed else 15.0)
            if failed and parts.sink.recorded:
                log.warning("the recording %s was closed and kept (%d frames)", parts.sink.path, self.stats.recorded)
            for thread in parts.threads:
                if thread is not parts.sink:
                    self._join(thread, timeout=5.0)
            if not failed and parts.sink.error is not None:
                raise parts.sink.error
        if interrupted:
            raise KeyboardInterrupt
        if not parts.sink.connected_once and self.stats.ticks:
            kept = f"; the recording {parts.sink.path} was kept" if parts.sink.recorded else ""
            raise StreamError(
                f"the source ended before a connection to {self.settings.target} succeeded"
                f" ({parts.sink.last_failure or 'no attempt finished'}); nothing was sent{kept}"
            )
        return self.stats

    @staticmethod
    def _join(thread: threading.Thread, timeout: float | None) -> None:
        """Join, staying responsive to Ctrl-C while waiting."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while thread.is_alive():
            if deadline is not None and time.monotonic() > deadline:
                log.warning("thread %s did not stop in time", thread.name)
                return
            thread.join(0.1)

    def _loop(self, parts: "_Parts") -> None:
        s = self.settings
        stats = self.stats
        stop = self.stop_event
        frames, audio, lookahead, sink = self._frames, self._audio, parts.lookahead, parts.sink
        capture = parts.captures[0]
        first = self._first_frames(capture, frames, lookahead, sink)
        if first is None:
            return
        delay = self.delay
        clock = CfrClock(s.fps, start=first + delay + 0.5 / s.fps)
        stats.started = clock.due(0)
        last_image: np.ndarray | None = None
        last_picture: np.ndarray | None = None  # the last captured picture sent, unredacted (for the slate)
        slate: np.ndarray | None = None
        outage = capture.outage
        max_ticks = None if s.duration is None else int(round(s.duration * s.fps))
        while not stop.is_set():
            if max_ticks is not None and stats.ticks >= max_ticks:
                break
            tick, due = clock.wait(stop.is_set)
            if stop.is_set():
                break
            parts.raise_errors()
            self._ingest(frames, lookahead, parts.detector)
            deadline = due - delay
            release = lookahead.take(deadline)
            if release is None and capture.ended.is_set() and not len(lookahead) and not len(frames):
                break  # the source ended and everything it gave was sent
            if release is None and last_image is None:
                continue
            stats.source = outage.describe()
            if release is not None:
                last_image = self._render(release)
                last_picture, slate = release.frame.image, None
                stats.dropped += release.skipped
                image = last_image
            elif (outage.active and not len(lookahead)) or slate is not None:
                # Away, and the pictures from before the drop all sent (or back, not yet due): the
                # slate, never a frozen picture. A tick short of a picture while those still drain
                # repeats one, rather than flash the slate between them.
                if slate is None:
                    slate = self._slate.picture(last_picture)
                image = slate
                stats.slate += 1
            else:
                image = last_image
                stats.repeated += 1
            count = samples_in_tick(tick, s.fps) + (AUDIO_LEAD_SAMPLES if not stats.ticks else 0)
            samples = audio.read(deadline - 0.5 / s.fps, count)
            sink.submit(tick, image, samples)
            stats.ticks += 1
            parts.step_down.tick(
                repeated=release is None and image is last_image, whole=release is not None and release.whole,
                backlog=sink.backlog,
            )
            if self.trace is not None:
                self.trace(tick, release, release is None)
        stats.dropped += frames.dropped + lookahead.overflow  # frames still held at a stop were never due
        stats.source_drops = outage.drops
        stats.source = "gave up" if outage.gave_up else "ended" if capture.ended.is_set() else stats.source

    def _first_frames(self, capture, frames, lookahead, sink) -> float | None:
        """Wait for the first captured frame; returns its capture time (None if stopped first)."""
        deadline = time.monotonic() + FIRST_FRAME_TIMEOUT_S
        while not self.stop_event.is_set():
            got = frames.drain()
            if got:
                lookahead.add_frames(got)
                self.stats.input_rate.add(len(got))
                return got[0].time
            if capture.error is not None:
                raise capture.error
            if capture.ended.is_set():
                raise StreamError(f"source {self.settings.source.describe()} ended before its first frame")
            if sink.error is not None:
                raise sink.error
            if time.monotonic() > deadline:
                raise StreamError(f"no frame from {self.settings.source.describe()} within {FIRST_FRAME_TIMEOUT_S:.0f} s")
            time.sleep(0.01)
        return None

    def _ingest(self, frames: FrameQueue, lookahead: LookAhead, detector: DetectionWorker) -> None:
        got = frames.drain()
        if got:
            lookahead.add_frames(got)
            self.stats.input_rate.add(len(got))
        for detection in detector.drain():
            lookahead.add_detection(detection)
            self.stats.detections += 1
            self.stats.detect_ms = detection.latency * 1000.0
            if self.on_detection is not None:
                self.on_detection(detection)

    def _render(self, release: Release) -> np.ndarray:
        """The frame to send: a copy of the captured picture with faces (or everything) hidden."""
        image = release.frame.image.copy()
        stats = self.stats
        if release.whole:
            redact_whole(image, self.settings.redact)
            stats.whole_hidden += 1
            now = time.monotonic()
            if now - self._last_warning > _WARN_EVERY_S:
                self._last_warning = now
                log.warning(
                    "face detection is behind the %.2f s look-ahead: hiding whole frames until it catches up "
                    "(raise --delay or lower --detect-size)", self.delay,
                )
        elif len(release.hide):
            redact(image, release.hide, self.settings.redact, keep=release.keep)
        stats.faces_hidden += len(release.hide)
        stats.faces_kept += len(release.keep)
        return image


def run_stream(settings: StreamSettings, **kwargs) -> StreamStats:
    """Stream with ``settings``; see :class:`LiveStream` for the keyword arguments."""
    return LiveStream(settings, **kwargs).run()


def sent_frames(settings: StreamSettings) -> dict[int, Release]:
    """Stream with ``settings`` and return each source frame that left the look-ahead, by its index
    (its first release), with what was hidden and kept in it: for tests and benchmarks that judge
    the decision in every frame."""
    releases: dict[int, Release] = {}

    def keep(tick: int, release: Release | None, repeated: bool) -> None:
        if release is not None:
            releases.setdefault(release.frame.index, release)

    LiveStream(settings, trace=keep).run()
    return releases
