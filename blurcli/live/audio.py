"""Audio between capture and the encoder: a timeline of samples addressed by capture time.

Capture writes each chunk at the sample position of the moment it was captured; the output loop
reads, for every video tick, the samples of the same moment the video frame of that tick shows
(both shifted by the look-ahead). Missing audio reads as silence and late audio is dropped, so the
output always gets exactly the samples its clock asks for and the two stay in sync.
"""
from __future__ import annotations

import threading

import av
import numpy as np

from .settings import AUDIO_CHANNELS, AUDIO_RATE

#: Chunks that start within this many samples of where the previous one ended are joined
#: seamlessly (timestamps jitter by a few samples; a click is worse than 5 ms of skew).
_JOIN_TOLERANCE = AUDIO_RATE // 100 * 2


class AudioTimeline:
    """A ring of float32 samples indexed by absolute sample number (``time * rate``).

    Thread-safe: one writer (capture) and one reader (the output loop).

    Args:
        seconds: how far ahead of the read position samples may be written.
        rate: samples per second.
        channels: channel count.
    """

    def __init__(self, seconds: float = 10.0, rate: int = AUDIO_RATE, channels: int = AUDIO_CHANNELS) -> None:
        self.rate = rate
        self.channels = channels
        self._size = int(seconds * rate)
        self._ring = np.zeros((channels, self._size), np.float32)
        self._read = None  # absolute sample number of the next sample to read
        self._first = None  # where the first chunk started, before anything was read
        self._write_end = None  # where the previous chunk ended, to join chunks without clicks
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0

    def position(self, seconds: float) -> int:
        """Absolute sample number of a monotonic time."""
        return int(round(seconds * self.rate))

    def write(self, seconds: float, samples: np.ndarray) -> None:
        """Store ``samples`` ((channels, n) float32) captured starting at monotonic time ``seconds``."""
        samples = np.asarray(samples, np.float32)
        n = samples.shape[1]
        if n == 0:
            return
        start = self.position(seconds)
        with self._lock:
            if self._write_end is not None and abs(start - self._write_end) <= _JOIN_TOLERANCE:
                start = self._write_end
            self._write_end = start + n
            if self._read is None and self._first is None:
                self._first = start
            base = self._read if self._read is not None else self._first
            lo, hi = max(start, base), min(start + n, base + self._size)
            if hi <= lo:
                self.dropped += n
                return
            self.dropped += n - (hi - lo)
            self.written += hi - lo
            self._put(lo, samples[:, lo - start : hi - start])

    def read(self, seconds: float, count: int) -> np.ndarray:
        """Take ``count`` samples starting at monotonic time ``seconds``; silence where nothing was written.

        Consecutive reads continue exactly where the previous one stopped unless ``seconds`` is more
        than a few milliseconds later (the clock was resynchronised); samples are never read twice.

        Returns:
            (channels, count) float32.
        """
        start = self.position(seconds)
        with self._lock:
            if self._read is None:
                if self._first is not None and self._first < start:
                    self._clear(self._first, start)
            elif start <= self._read + _JOIN_TOLERANCE:
                start = self._read
            else:
                self._clear(self._read, start)
            out = np.empty((self.channels, count), np.float32)
            first = start % self._size
            split = min(count, self._size - first)
            out[:, :split] = self._ring[:, first : first + split]
            out[:, split:] = self._ring[:, : count - split]
            self._clear(start, start + count)
            self._read = start + count
            return out

    def _put(self, lo: int, chunk: np.ndarray) -> None:
        n = chunk.shape[1]
        first = lo % self._size
        split = min(n, self._size - first)
        self._ring[:, first : first + split] = chunk[:, :split]
        self._ring[:, : n - split] = chunk[:, split:]

    def _clear(self, lo: int, hi: int) -> None:
        hi = min(hi, lo + self._size)
        if hi <= lo:
            return
        self._put(lo, np.zeros((self.channels, hi - lo), np.float32))


def samples_in_tick(tick: int, fps: int, rate: int = AUDIO_RATE) -> int:
    """How many audio samples belong to video tick ``tick`` (exact over any run of ticks)."""
    return (tick + 1) * rate // fps - tick * rate // fps


class Resampler:
    """Any decoded audio to (2, n) float32 at 48 kHz, keeping track of the chunk's capture time."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)

    def __call__(self, frame: av.AudioFrame) -> list[np.ndarray]:
        """Resample one frame; returns zero or more (2, n) float32 chunks, in order."""
        return [f.to_ndarray().reshape(AUDIO_CHANNELS, -1).astype(np.float32, copy=False) for f in self._resampler.resample(frame)]
