"""Videos whose decisions need no future: one decode, with detection and encoding side by side.

With nobody enrolled no track can be kept (unknown until proven enrolled, and nobody can be), so
every track is hidden from the moment it is seen. What still needs the future is each track's
boxes: the padding before its first detection and the interpolation between detections. These
settle a fixed number of frames later (:func:`blurcli.track.plan.settle_frames`: 28 frames at 30
fps). So the file is decoded once. Each frame is analysed as in pass 1 (:class:`Analyser`). Once
the detector is that far ahead, the frame is hidden with the boxes the whole file would give it:
the same :func:`mask_plan`, planned a block of frames at a time. It is then encoded in a thread of
its own, beside detection rather than after it. The report is the two passes' report.

A file that fails to decode midway has been partly encoded, but only into the writer's temporary
file, which is removed: as with two passes, no output is left behind. The look-ahead holds its
decoded frames; where they would pass :data:`LOOK_AHEAD_BYTES` (4K), the video takes two passes.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from pathlib import Path

from ..errors import InputError
from ..redact import redact_frame
from ..track.plan import settle_frames
from .paths import ensure_parent
from .video import Analyser, Analysis, Progress, VideoRedactor, _prefetch, frame_bytes, mask_plan, pad_frames, queue_depth

#: Most bytes of decoded frames the look-ahead may hold: 1080p's 28 frames take 87 MB, a 4K
#: frame's 28 would take 350-700 MB (the 4K phone clip's peak is 1.2 GB with two passes).
LOOK_AHEAD_BYTES = 160 * 1024 * 1024
#: Frames planned at a time (one :func:`mask_plan` of the tracks near them).
BLOCK = 8


class _Encoder:
    """Encodes the frames it is given, in order, in a thread of its own; a failure is raised by the
    next :meth:`put` or by :meth:`finish`. Leaving the ``with`` block stops and joins the thread, so
    the writer can be closed or aborted after it."""

    def __init__(self, writer, depth: int) -> None:
        self.writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="blurcli-encode", daemon=True)

    def __enter__(self) -> "_Encoder":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    frame = self._queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                if frame is None:
                    return
                self.writer.write(frame)
        except BaseException as exc:  # handed to the caller, which re-raises it
            self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, frame) -> None:
        while True:
            self._check()
            try:
                self._queue.put(frame, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._check()
                    raise RuntimeError("the encoder thread stopped")

    def finish(self) -> None:
        """Wait for every frame to be encoded."""
        self.put(None)
        self._thread.join()
        self._check()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def look_ahead(info, fps: float, pad_s: float, longest_gap: int) -> int | None:
    """Frames the look-ahead holds for ``info``, or None when they would not fit in memory."""
    frames = settle_frames(pad_frames(pad_s, fps), longest_gap)
    return frames if frames * frame_bytes(info) <= LOOK_AHEAD_BYTES else None


def redact_in_one_pass(
    redactor: VideoRedactor, src: Path, dst: Path, progress: Progress | None = None
) -> Analysis | None:
    """Analyse, hide and write ``src`` into ``dst`` in one decode; None (nothing done) when its
    look-ahead does not fit in memory.

    Progress: "analysing" for each frame the detector has seen, then "writing" for the frames
    still held in the look-ahead at the end (every other frame was written on the way).

    Raises:
        InputError, OutputError: as :meth:`VideoRedactor.redact_file`.
    """
    from ..media.video_io import VideoReader, VideoWriter

    settings = redactor.settings
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(VideoReader(src, threads=settings.threads))
        info = reader.info
        fps = float(info.average_rate) if info.average_rate else 30.0
        analyser = Analyser(redactor, fps=fps, info=info)
        lag = look_ahead(info, fps, settings.pad_s, analyser.tracker.longest_gap)
        if lag is None:
            return None
        ensure_parent(dst)
        writer = stack.enter_context(
            VideoWriter(
                dst, info, audio_from=src, crf=settings.crf, preset=settings.preset,
                threads=settings.threads, codec=settings.codec,
            )
        )
        depth = queue_depth(info)
        encoder = stack.enter_context(_Encoder(writer, depth))
        pending: deque = deque()
        tracks = _RecentTracks(analyser, pad_frames(settings.pad_s, fps))

        def release(upto: int, written=None) -> None:
            """Hide and hand to the encoder every held frame before ``upto``, a block at a time."""
            while pending and pending[0].index < upto:
                first = pending[0].index
                last = min(upto, first + BLOCK) - 1
                analysis = analyser.result(tracks.near(first))
                _, actions = redactor.decide(analysis)
                plan, _ = mask_plan(analysis, actions, pad_s=settings.pad_s, within=(first, last))
                while pending and pending[0].index <= last:
                    frame = pending.popleft()
                    redact_frame(frame, plan.boxes(frame.index), settings.redact, keep=plan.kept(frame.index))
                    encoder.put(frame)
                    if written:
                        written(frame.index + 1)

        total = info.frame_count
        frames = stack.enter_context(contextlib.closing(_prefetch(reader, depth)))
        for index, frame in enumerate(frames):
            analyser.step(index, frame.bgr())
            pending.append(frame)
            if progress:
                progress("analysing", index + 1, total)
            settled = index - lag + 1  # the frames before this one have their final boxes
            if settled - pending[0].index >= BLOCK:
                release(settled)
        if analyser.frames == 0:
            raise InputError(f"{src}: holds no video frames")
        count = analyser.frames
        release(count, (lambda done: progress("writing", done, count)) if progress else None)
        encoder.finish()
    return analyser.result()


class _RecentTracks:
    """The tracks that can still reach the frames being released: a track last detected more
    than ``pad`` frames before them never will again (the tracker dropped it long before), so the
    blocks of an hour-long video plan a few dozen tracks, not all of them."""

    def __init__(self, analyser: Analyser, pad: int) -> None:
        self.analyser = analyser
        self.pad = pad
        self._seen = 0
        self._live: dict = {}

    def near(self, first: int) -> dict:
        logs = self.analyser.logs
        for track_id in self.analyser.new_tracks[self._seen :]:
            self._live[track_id] = logs[track_id]
        self._seen = len(self.analyser.new_tracks)
        for track_id in [t for t, log in self._live.items() if log.last + self.pad < first]:
            del self._live[track_id]
        return self._live
