"""What this machine sustains live: the start-up choice of output size and x264 preset, and the
step-down while streaming.

A stream that asks more of the CPU than it has does not slow down politely: the output clock
repeats frames (a frozen picture), the encoder's queue grows (seconds of latency), or detection
falls behind the look-ahead and whole frames are hidden. Measured on 2 cores with a 1080p30
source: 1080p at veryfast held 30 fps only with 1.2 s of latency; at superfast 0.4 s median but
1.3 s at p95; 720p at veryfast held 0.35 s median and 0.40 s p95.

**At start** (:func:`choose`) the encoder is timed here, on a picture of the source, at each rung
of :data:`LADDER` from the best down, together with one detection; the first rung whose cost
fits :data:`HEADROOM` of the cores is taken, and one line says what and why. ``--size`` and
``--preset`` force a rung. The detector's size is never lowered to fit: a smaller detector
misses small faces, so it is the user's choice (``--detect-size``); when in doubt, blur.

**While streaming** (:class:`StepDown`) the output loop reports what each tick did; when in a
window of :attr:`StepDown.WINDOW_S` seconds (the first, the start-up, aside) frames repeated, were
hidden whole, or the encoder fell behind, it steps down once, says so, and waits for the next
window: first x264 ``superfast`` from the next keyframe (its SPS and PPS are those of
``veryfast``, so the new encoder's packets go on in the same connection and the same recording,
and keyframes stay 2 s apart), then a slower detection cadence, within the look-ahead.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ..media.colour import STREAM_TAGS, bgr_to_frame
from .encode import Encoder, EncoderSettings

log = logging.getLogger("blurcli.live")

#: Output heights tried at start, best first, with the preset of each (never above the source).
#: A larger picture at a faster preset lost to a smaller one at veryfast in the measurements above.
LADDER = ((None, "veryfast"), (720, "veryfast"), (720, "superfast"), (540, "superfast"), (360, "superfast"))
#: Share of the cores the estimated work (encoder, conversions, decoding, detection) may take;
#: tracking, redaction, audio and the interpreter need the rest. On 2 cores with a 1080p30 source
#: this estimates 1.39 cores for 720p veryfast (measured: 1.65 in all, held) and 1.67 for 1080p
#: veryfast (measured: 1.78, 1.2 s of latency).
HEADROOM = 0.8
#: The preset a stream steps down to: same SPS/PPS as veryfast (checked at 720p and 1080p), half
#: the encoding time (1080p: 28 -> 15 ms a frame; 720p: 14 -> 8).
STEP_PRESET = {"veryfast": "superfast"}
#: Frames encoded to time a rung (after two to warm up).
_TIMED_FRAMES = 8


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def scaled_size(source: tuple[int, int], height: int | None) -> tuple[int, int]:
    """``source`` scaled to ``height`` (None: unchanged), both sides even."""
    width, h = source
    if height is None or height >= h:
        return width - width % 2, h - h % 2
    new_w = int(round(width * height / h))
    return new_w - new_w % 2, height - height % 2


def cpu_ms(call, *args, runs: int = 3) -> float:
    """CPU milliseconds of ``call(*args)`` (the detector's, at start): the least of a few runs,
    as the first runs after loading a model are still slow."""
    times = []
    for _ in range(runs):
        started = time.process_time()
        call(*args)
        times.append((time.process_time() - started) * 1000)
    return min(times)


def encode_ms(size: tuple[int, int], preset: str, picture: np.ndarray, fps: int, bitrate: int) -> float:
    """CPU milliseconds per frame x264 takes here at ``size`` and ``preset``.

    It encodes a slow pan over ``picture`` with a little noise (sigma 2, a camera's): a clean pan
    let the motion search off lightly and timed 30-50% under real video (the Hamilton clip
    scaled: 1080p veryfast 19 against 28 ms); with the noise 1080p times within 2% of it and 720p
    about 30% over (18 against 14 ms), which errs towards a smaller picture.
    """
    width, height = size
    base = cv2.resize(picture, (width + 32, height + 32), interpolation=cv2.INTER_AREA).astype(np.int16)
    rng = np.random.default_rng(0)
    noise = [rng.normal(0.0, 2.0, (height, width, 3)).astype(np.int16) for _ in range(2)]
    encoder = Encoder(EncoderSettings(width, height, fps, bitrate, 2 * fps, preset))
    silence = np.zeros((2, 0), np.float32)
    try:
        start = None
        for i in range(_TIMED_FRAMES + 2):
            if i == 2:
                start = time.process_time()
            shift = 2 * i
            frame = np.clip(base[shift:shift + height, shift:shift + width] + noise[i % 2], 0, 255).astype(np.uint8)
            encoder.encode(i, frame, silence)
        return (time.process_time() - start) * 1000 / _TIMED_FRAMES
    finally:
        encoder.close()


def convert_ms(source: tuple[int, int], size: tuple[int, int]) -> float:
    """CPU milliseconds per frame for the picture's conversions (to BGR, scaling, back to YUV)."""
    width, height = source
    i420 = np.full((height * 3 // 2, width), 128, np.uint8)
    for _ in range(2):  # the second time, as in a running stream (memory already mapped)
        start = time.process_time()
        image = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
        if size != (width, height):
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        bgr_to_frame(image, STREAM_TAGS)
    return (time.process_time() - start) * 1000


#: Decoding H.264 here took about 2.4 ns a pixel (1080p: 5 ms a frame); it cannot be timed before
#: the source runs, so it is estimated.
DECODE_NS_PER_PIXEL = 2.5


@dataclass(frozen=True)
class Choice:
    """The rung a stream starts on, and the one line that says why."""

    size: tuple[int, int]
    preset: str
    line: str


def choose(
    source: tuple[int, int],
    fps: int,
    *,
    detect_ms: float,
    detect_rate: float,
    bitrate_for: Callable[[int, int], int],
    picture: np.ndarray,
    size: tuple[int, int] | None = None,
    preset: str | None = None,
    cores: int | None = None,
    timer: Callable[..., float] = encode_ms,
) -> Choice:
    """Pick the output size and preset this machine sustains at ``fps``.

    Args:
        source: the source's upright size.
        detect_ms: CPU ms of one detection (measured on the warm detector).
        detect_rate: detections per second the stream will run at most.
        bitrate_for: the bitrate of an output size.
        picture: a picture of the source, to time the encoder on.
        size, preset: forced by the user (``--size``, ``--preset``); None to choose.
        cores: cores to plan for (default: those this process may use).
        timer: ``timer(size, preset, picture, fps, bitrate) -> ms`` (tests pass a fake).
    """
    cores = cores or usable_cores()
    budget = HEADROOM * cores * 1000.0  # CPU ms per second
    detect = detect_ms * detect_rate
    if size is not None and preset is not None:
        rungs = [(size, preset)]
    elif size is not None:
        rungs = [(size, p) for p in dict.fromkeys(p for _, p in LADDER)]
    else:
        rungs = [(scaled_size(source, height), preset or p) for height, p in LADDER]
    rungs = list(dict.fromkeys(rungs))
    tried = []
    pixels = source[0] * source[1]
    for rung_size, rung_preset in rungs:
        frame = timer(rung_size, rung_preset, picture, fps, bitrate_for(*rung_size))
        need = fps * (frame + convert_ms(source, rung_size) + pixels * DECODE_NS_PER_PIXEL / 1e6) + detect
        tried.append(f"{rung_size[0]}x{rung_size[1]} {rung_preset} {need / 1000:.2f}")
        if need <= budget:
            break
    measured = f"cores needed: {', '.join(tried)}; detection {detect / 1000:.2f} of them"
    if size is not None and preset is not None:
        why = f"as --size and --preset say ({measured}; {budget / 1000:.1f} of {cores} usable)"
    elif need <= budget:
        why = f"the best that fits {budget / 1000:.1f} of {cores} cores ({measured})"
    else:
        why = (f"the cheapest, though nothing fits {budget / 1000:.1f} of {cores} cores ({measured}): "
               "expect repeated or hidden frames; lower --fps or --detect-size")
    line = f"{source[0]}x{source[1]} source at {fps} fps: sending {rung_size[0]}x{rung_size[1]} with x264 {rung_preset}, {why}"
    return Choice(rung_size, rung_preset, line)


@dataclass
class _Window:
    ticks: int = 0
    repeated: int = 0
    whole: int = 0
    behind: int = 0  # ticks at which the encoder's queue held over half a second


class StepDown:
    """Watches the output loop and steps the stream down when the machine does not keep up.

    Args:
        fps: output frame rate.
        preset: the preset the stream started with; None when the user chose it (it is kept).
        set_preset: called with the preset to step down to.
        interval: the detection interval now (seconds); ``set_interval`` is called with a longer one.
        max_interval: the longest detection interval the look-ahead allows.
        stats: its ``step_downs`` counts the steps taken.
    """

    #: Seconds a window lasts.
    WINDOW_S = 5.0
    #: Share of a window's ticks that may repeat, be hidden whole, or find the encoder behind.
    LIMIT = 0.02

    def __init__(
        self, fps: int, preset: str, set_preset: Callable[[str], None], interval: float,
        set_interval: Callable[[float], None], max_interval: float, stats=None,
    ) -> None:
        self.fps = fps
        self.preset = preset
        self._set_preset = set_preset
        self.interval = interval
        self._set_interval = set_interval
        self.max_interval = max_interval
        self._stats = stats
        self._window = _Window()
        self._windows = 0
        self.steps: list[str] = []

    def tick(self, repeated: bool, whole: bool, backlog: int) -> None:
        """Count one output tick: it repeated the last picture, hid its frame whole, and how many
        frames waited for the encoder."""
        w = self._window
        w.ticks += 1
        w.repeated += repeated
        w.whole += whole
        w.behind += backlog > self.fps // 2
        if w.ticks < self.WINDOW_S * self.fps:  # the output clock ticks at exactly fps
            return
        self._window = _Window()
        self._windows += 1
        if self._windows == 1:
            return  # the start-up (models warming, the first connection) is no measure of the machine
        limit = self.LIMIT * w.ticks
        problems = [
            f"{w.repeated} frames repeated" if w.repeated > limit else "",
            f"{w.whole} hidden whole while detection caught up" if w.whole > limit else "",
            f"the encoder over half a second behind at {w.behind} frames" if w.behind > limit else "",
        ]
        problems = [p for p in problems if p]
        if problems:
            self._step(", ".join(problems))

    def _step(self, why: str) -> None:
        lower = STEP_PRESET.get(self.preset) if self.preset is not None else None
        if lower is not None:
            self.preset = lower
            self._set_preset(lower)
            what = f"x264 {lower}"
        elif self.interval * 1.5 <= self.max_interval:
            self.interval *= 1.5
            self._set_interval(self.interval)
            what = f"a detection every {self.interval * 1000:.0f} ms at most"
        else:
            what = None
        seconds = f"in the last {self.WINDOW_S:.0f} s"
        if what is None:
            if "nothing left" not in "".join(self.steps):
                self.steps.append("nothing left")
                log.warning("this machine is not keeping up (%s %s) and nothing is left to step down: "
                            "lower --size or --fps, or raise --delay", why, seconds)
            return
        self.steps.append(what)
        if self._stats is not None:
            self._stats.step_downs += 1
        log.warning("this machine is not keeping up (%s %s): stepping down to %s", why, seconds, what)
