"""Counters of a live stream, shared by its threads and read by the status line and the tests."""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field


class RateMeter:
    """Events per second over a sliding window (input fps, output fps, bitrate)."""

    def __init__(self, window: float = 2.0, now=time.monotonic) -> None:
        self._window = window
        self._now = now
        self._events: collections.deque[tuple[float, float]] = collections.deque()
        self._lock = threading.Lock()

    def add(self, amount: float = 1.0) -> None:
        with self._lock:
            self._events.append((self._now(), amount))
            self._trim()

    def rate(self) -> float:
        with self._lock:
            self._trim()
            if len(self._events) < 2:
                return 0.0
            span = max(self._now() - self._events[0][0], 1e-6)
            return sum(a for _, a in self._events) / min(span, self._window)

    def _trim(self) -> None:
        limit = self._now() - self._window
        while self._events and self._events[0][0] < limit:
            self._events.popleft()


@dataclass
class StreamStats:
    """What happened so far. Counters only grow; ``state`` is the sink's connection state.

    Attributes:
        ticks: output clock ticks served (frames handed to the encoder).
        sent: frames written to the current or a past connection (with only a recording: to it).
        recorded: frames written to the recording (``--output`` or ``--record``).
        repeated: ticks that had no new frame ready and repeated the last one.
        dropped: captured frames never sent (the output was behind, or capture outran the queue).
        unsent: ticks lost while disconnected.
        whole_hidden: frames hidden entirely because detection was late (fail closed).
        faces_hidden: face boxes hidden, over all frames.
        faces_kept: face boxes of enrolled people left sharp, over all frames.
        detections: detector runs folded in.
        detect_ms: latency of the latest detection, capture to result, in ms.
        slate: ticks that sent the slate because the source was away (see :mod:`.reconnect`).
        source_drops: times the source went away.
        source: "live", or how long the source has been away ("lost 3 s, reconnecting").
        reconnects: successful connections after the first.
        failures: failed connection attempts or dropped connections.
        state: "starting", "connecting", "live", "recording", "retrying in 2.0 s: ...", "stopped".
        started: monotonic time the output clock started.
        encoding: the output size and x264 preset now ("1280x720 veryfast"; see :mod:`.budget`).
        step_downs: times the stream stepped down because the machine did not keep up.
    """

    ticks: int = 0
    sent: int = 0
    recorded: int = 0
    repeated: int = 0
    dropped: int = 0
    unsent: int = 0
    whole_hidden: int = 0
    faces_hidden: int = 0
    faces_kept: int = 0
    detections: int = 0
    detect_ms: float = 0.0
    slate: int = 0
    source_drops: int = 0
    source: str = "live"
    reconnects: int = 0
    failures: int = 0
    bytes_sent: int = 0
    state: str = "starting"
    started: float | None = None
    encoding: str = ""
    step_downs: int = 0
    input_rate: RateMeter = field(default_factory=RateMeter, repr=False)
    output_rate: RateMeter = field(default_factory=RateMeter, repr=False)
    bit_rate: RateMeter = field(default_factory=RateMeter, repr=False)

    def line(self) -> str:
        """One line for the status display."""
        source = "" if self.source == "live" else f" | source {self.source}"
        return (
            f"{self.state}{source} | in {self.input_rate.rate():4.1f} out {self.output_rate.rate():4.1f} fps"
            f" | rep {self.repeated} drop {self.dropped} | detect {self.detect_ms:.0f} ms"
            f" | {self.bit_rate.rate() * 8 / 1e6:.1f} Mbit/s | whole-hidden {self.whole_hidden}"
        )
