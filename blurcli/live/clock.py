"""The output clock: ticks at a constant rate on its own monotonic schedule.

Viewers' players and ingest servers expect exactly ``fps`` frames per second of stream time. The
clock never waits for capture or detection; the loop that reads it sends one frame per tick
(repeating the last one when nothing new is ready), so the stream's timestamps stay evenly spaced
even when the machine is busy.
"""
from __future__ import annotations

import time
from typing import Callable


class CfrClock:
    """Tick ``k`` is due at ``start + k / fps`` (monotonic seconds).

    If the loop falls more than ``max_lag`` seconds behind (the process was suspended, a disk
    stalled), the schedule is moved forward instead of bursting out hundreds of late frames; the
    tick numbers (and so the stream's timestamps) stay contiguous.

    Args:
        fps: ticks per second.
        start: monotonic time of tick 0 (default: now).
        max_lag: largest lateness, in seconds, that is caught up by sending frames back to back.
        now: the time source (tests pass a fake).
        sleep: the sleep function (tests pass a fake).
    """

    def __init__(
        self,
        fps: float,
        *,
        start: float | None = None,
        max_lag: float = 1.0,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps = float(fps)
        self.max_lag = max_lag
        self._now = now
        self._sleep = sleep
        self._start = now() if start is None else float(start)
        self._shift = 0.0  # seconds the schedule was moved forward after a long stall
        self.next_tick = 0
        self.resyncs = 0

    def due(self, tick: int) -> float:
        """Monotonic time at which ``tick`` is due."""
        return self._start + self._shift + tick / self.fps

    def wait(self, stop: Callable[[], bool] | None = None) -> tuple[int, float]:
        """Sleep until the next tick is due and return it.

        Args:
            stop: polled while sleeping (every 50 ms at most); when it returns True the wait ends early.

        Returns:
            (tick index, the time it was due). Ticks are returned one by one, never skipped.
        """
        tick = self.next_tick
        due = self.due(tick)
        while True:
            remaining = due - self._now()
            if remaining <= 0 or (stop is not None and stop()):
                break
            self._sleep(min(remaining, 0.05))
        lag = self._now() - due
        if lag > self.max_lag:
            self._shift += lag
            self.resyncs += 1
            due = self.due(tick)
        self.next_tick = tick + 1
        return tick, due
