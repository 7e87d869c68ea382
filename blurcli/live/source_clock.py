"""How a source's timestamps become capture time, and where a live source's present begins.

Picture and sound are kept in sync by stamping both with capture time from one mapping of the
source's timestamps (:class:`SourceClock`). A file is delivered at its timestamps, like a camera.

A live source piles up packets whenever blurcli is not reading: while it gets ready (the detector
warms up, the encoder is timed), and when the network stalls and then delivers everything at once.
Read afterwards, those packets arrive without waiting, all stamped "now": the output clock can show
only one picture of them per tick, and their sound, written at one instant, overwrites itself, so
for as long as the burst lasted a picture was sent with another moment's sound (measured: the first
beep of a phone's push lost, 0.99 s between a marked frame and its sound, after 1.5 s of start-up).
So after connecting and after a stall, :class:`Backlog` has the packets that arrive without waiting
decoded (the decoder needs its reference frames) and dropped, sound with picture, until a read has to
wait for the network: that packet is the live edge, and a fresh clock is anchored on it.

The cut is made in source time, not in packets: a container carries one stream's packets ahead of
the other's (a phone's AAC arrives some 50 ms before the picture of the same moment), so the last
:data:`INTERLEAVE_S` of sound before the edge is kept; the output reads only the sound of the
pictures it shows. Cut at the packet, the first picture after the edge had no sound (a marked
frame's beep lost).
"""
from __future__ import annotations

import collections
from typing import Callable

#: A read that returns within this came from a buffer, not from the network.
BUFFERED_S = 0.004
#: A backlog is dropped for at most this long (a source decoded slower than it plays never waits).
MAX_CATCH_UP_S = 3.0
#: A live packet this far behind the clock means the network stalled (or the source's clock jumped).
STALL_S = 1.0
#: How far one stream's packets may run ahead of the other's in a container.
INTERLEAVE_S = 0.25
#: A live packet up to this far ahead of the clock leaves it where it is: one stream runs ahead of
#: the other (a phone's sound ~50 ms), and moving the clock for it would put a sound and its picture
#: on two clocks (measured: a marked frame 34 ms from its beep while the clock settled). Further
#: ahead, the source's clock jumped, and the packet becomes now.
AHEAD_S = INTERLEAVE_S


class SourceClock:
    """Maps source timestamps (seconds) to monotonic capture time, shared by audio and video.

    Args:
        paced: the source is a file or a graph, delivered at its timestamps (the caller waits).
        now: the monotonic clock.
    """

    def __init__(self, paced: bool, now: Callable[[], float]) -> None:
        self.paced = paced
        self._now = now
        self._base: float | None = None  # monotonic time of source time 0
        self.offset = 0.0  # added to source times (loops of a file)

    def anchor(self, source_s: float) -> None:
        """Take ``source_s`` as captured now (the live edge), before any packet is mapped."""
        self._base = self._now() - (source_s + self.offset)

    def time(self, source_s: float | None) -> float:
        """Capture time of a packet stamped ``source_s`` (None: unstamped, now)."""
        now = self._now()
        if source_s is None:
            return now
        source_s += self.offset
        if self._base is None:
            self._base = now - source_s
        at = self._base + source_s
        if not self.paced and at > now + AHEAD_S:
            self._base = now - source_s
            at = now
        return at

    def stalled(self, at: float) -> bool:
        """Whether a live packet of capture time ``at`` came so late that its source stalled."""
        return not self.paced and at < self._now() - STALL_S


class Backlog:
    """Whether the packet just read belongs to a live source's backlog (see the module docstring).

    Args:
        now: the monotonic clock.
    """

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._since: float | None = None  # catching up since then; None: at the live edge
        self._sound: collections.deque = collections.deque()  # (source s, chunk) of the last INTERLEAVE_S
        self.dropped = 0

    @property
    def catching_up(self) -> bool:
        return self._since is not None

    def begin(self) -> None:
        """A connection opened or the source stalled: drop what is buffered."""
        self._since = self._now()
        self._sound.clear()

    def stale(self, waited: float) -> bool:
        """Whether the packet that took ``waited`` seconds to read is dropped; the first that
        had to wait (or any after :data:`MAX_CATCH_UP_S`) ends the catching up."""
        if self._since is None:
            return False
        if waited >= BUFFERED_S or self._now() - self._since >= MAX_CATCH_UP_S:
            self._since = None
            return False
        self.dropped += 1
        return True

    def hold(self, source_s: float, chunk) -> None:
        """Keep a dropped packet's sound for a moment: it may belong to the pictures after the edge."""
        self._sound.append((source_s, chunk))
        while source_s - self._sound[0][0] > INTERLEAVE_S:
            self._sound.popleft()

    def sound(self) -> list:
        """The sound held from just before the edge, (source s, chunk) in order; handed out once."""
        held, self._sound = list(self._sound), collections.deque()
        return held
