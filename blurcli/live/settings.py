"""What ``blurcli stream`` needs, built once by the CLI: source, sink, clock and privacy settings."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import UsageError
from ..secrets import mask_secrets
from ..settings import DetectSettings, IdentitySettings, RedactSettings
from .reconnect import DEFAULT_SOURCE_TIMEOUT_S

#: Environment variable that may hold the ingest URL, so the stream key stays out of shell history.
RTMP_URL_ENV = "BLURCLI_RTMP_URL"

#: Output audio: what YouTube and Twitch ingest expect (AAC-LC, 48 kHz, stereo, 128 kbit/s).
AUDIO_RATE = 48000
AUDIO_CHANNELS = 2
AUDIO_BITRATE = 128_000

#: Measured minimum look-ahead (see README, "Live streams"): detection of the newest frame on a
#: 2-core CPU takes 30-60 ms at 640 px, so a frame is bracketed by a later detection within about
#: two detection times; 0.3 s leaves room for a loaded machine.
DEFAULT_DELAY_S = 0.3
#: Look-ahead when someone is enrolled: a kept face turns sharp only in the frames still waiting when
#: its track is proven enrolled, and against one enrolment photo that took 4-6 samples (0.5-0.8 s of
#: the face) on short_hamilton_clip.mp4 (``benchmarks/identity_video.py``; see ``identity/policy.py``).
ENROLLED_DELAY_S = 1.2
MAX_DELAY_S = 5.0

#: Video bitrate caps in kbit/s by largest frame area, (30 fps, 60 fps), inside the ranges of
#: YouTube's "Choose live encoder settings" (2025): 240p-720p30 3-8 Mbit/s, 720p60 3-8,
#: 1080p30 3-8, 1080p60 4-10, 1440p30 5-25 (15 recommended), 1440p60 6-30 (24), 2160p30 8-35 (30),
#: 2160p60 10-40 (35).
_BITRATES = (
    (1280 * 720, 4_500, 6_000),
    (1920 * 1080, 6_000, 9_000),
    (2560 * 1440, 15_000, 24_000),
    (3840 * 2160, 30_000, 35_000),
)


def default_bitrate(width: int, height: int, fps: float) -> int:
    """Video bitrate cap in bit/s for a resolution and frame rate, following YouTube's guidance.

    Args:
        width: output width in pixels.
        height: output height in pixels.
        fps: output frame rate; above 31 fps the 60 fps column is used.

    Returns:
        Bits per second for the smallest listed resolution at least as large as ``width x height``.
    """
    pixels = width * height
    row = next((r for r in _BITRATES if pixels <= r[0]), _BITRATES[-1])
    return (row[2] if fps > 31 else row[1]) * 1000


@dataclass(frozen=True)
class SourceSpec:
    """Where frames come from.

    Attributes:
        url: a path, URL, ``/dev/videoN`` or a lavfi graph (with ``format="lavfi"``).
        format: FFmpeg input format (``v4l2``, ``lavfi``, ``alsa``...), None to let FFmpeg guess.
        options: FFmpeg input options (``video_size``, ``framerate``, ``rtsp_transport``...).
        pace: deliver frames in real time from their timestamps; None: only for files and lavfi,
            which FFmpeg would otherwise read as fast as it can.
        loop: start a file again at its end (files only).
    """

    url: str
    format: str | None = None
    options: dict = field(default_factory=dict)
    pace: bool | None = None
    loop: bool = False

    @classmethod
    def camera(cls, index: int, options: dict | None = None) -> "SourceSpec":
        """The V4L2 camera ``/dev/video<index>``."""
        return cls(f"/dev/video{int(index)}", "v4l2", dict(options or {}))

    @property
    def is_file(self) -> bool:
        return self.format is None and Path(self.url).is_file()

    @property
    def paced(self) -> bool:
        if self.pace is not None:
            return self.pace
        return self.format == "lavfi" or self.is_file

    def describe(self) -> str:
        """A log-safe name of the source (credentials masked)."""
        return mask_secrets(self.url if not self.format else f"{self.format}:{self.url}")


@dataclass(frozen=True)
class StreamSettings:
    """Everything ``blurcli stream`` needs.

    Attributes:
        source: where video (and perhaps audio) comes from.
        audio: a separate audio input (``--audio-device``), or None to use the source's audio
            (silence if it has none).
        rtmp_url: ingest URL ``rtmp[s]://host/app/KEY``; None records to ``output`` instead.
        output: recording file (.flv or .mp4) when ``rtmp_url`` is None.
        record: a local copy (.flv or .mp4) of what is sent to ``rtmp_url``, from the same encode;
            kept whatever ends the run, also while the connection is down.
        fps: output frame rate, held constant whatever the source does.
        size: output (width, height); None: the largest this machine sustains, up to the
            source's (see :mod:`blurcli.live.budget`).
        bitrate: video bitrate cap in bit/s; None follows :func:`default_bitrate`.
        delay: look-ahead in seconds: how long each frame waits for a detection of itself or a
            later neighbour (and for its faces' identity) before it is sent; None:
            :meth:`look_ahead` chooses.
        fail_open: when detection falls behind the look-ahead, send frames with the last known
            boxes hidden instead of hiding the whole frame.
        max_retries: consecutive failed connection attempts before giving up; None retries forever.
        duration: stop after this many seconds of output; None runs until the source ends or Ctrl-C.
        detect_size: longest side of the picture the detector sees (speed against small faces).
        small_faces: also run the detector's upscaled small-face pass (slow; needs a fast machine).
        preset: libx264 preset; None: chosen with the size, and stepped down while streaming
            when the machine does not keep up.
        source_timeout: seconds a live source may stay away (the slate is sent meanwhile) before
            the stream ends; 0 or None waits for ever. See :mod:`blurcli.live.reconnect`.
        slate: a picture to send while the source is away; None: the last picture hidden whole.
    """

    source: SourceSpec
    audio: SourceSpec | None = None
    rtmp_url: str | None = None
    output: Path | None = None
    record: Path | None = None
    fps: int = 30
    size: tuple[int, int] | None = None
    bitrate: int | None = None
    delay: float | None = None
    fail_open: bool = False
    max_retries: int | None = None
    duration: float | None = None
    detect_size: int = 640
    small_faces: bool = False
    preset: str | None = None
    source_timeout: float | None = DEFAULT_SOURCE_TIMEOUT_S
    slate: Path | None = None
    detect: DetectSettings = DetectSettings()
    redact: RedactSettings = RedactSettings()
    identity: IdentitySettings = IdentitySettings()

    def __post_init__(self) -> None:
        if (self.rtmp_url is None) == (self.output is None):
            raise UsageError(f"give either an RTMP URL (--rtmp or {RTMP_URL_ENV}) or --output FILE, not both or neither")
        if self.rtmp_url is not None:
            check_ingest_url(self.rtmp_url)
        if self.record is not None and self.rtmp_url is None:
            raise UsageError("--record keeps a copy of what is streamed with --rtmp; to record only, use --output FILE")
        for flag, path in (("--output", self.output), ("--record", self.record)):
            if path is not None and Path(path).suffix.lower() not in (".flv", ".mp4"):
                raise UsageError(f"{flag} must end in .flv or .mp4, got {Path(path).name!r}")
        if self.recording is not None:
            from ..pipeline.paths import check_not_input

            for spec in (self.source, self.audio):
                if spec is not None and spec.is_file:
                    check_not_input(Path(spec.url), Path(self.recording))
            if self.slate is not None:
                check_not_input(Path(self.slate), Path(self.recording))
        if not 1 <= self.fps <= 120:
            raise UsageError(f"--fps must be between 1 and 120, got {self.fps}")
        if self.delay is not None and not 0.0 <= self.delay <= MAX_DELAY_S:
            raise UsageError(f"--delay must be between 0 and {MAX_DELAY_S} seconds, got {self.delay}")
        if self.size is not None and (self.size[0] < 16 or self.size[1] < 16):
            raise UsageError(f"--size is too small: {self.size[0]}x{self.size[1]}")
        if self.max_retries is not None and self.max_retries < 0:
            raise UsageError("--max-retries must be 0 or more")
        if self.source_timeout is not None and self.source_timeout < 0:
            raise UsageError("--source-timeout must be 0 (wait for ever) or more seconds")

    @property
    def target(self) -> str:
        """Where the stream goes, secrets masked (for logs and the status line)."""
        return mask_secrets(self.rtmp_url) if self.rtmp_url else str(self.output)

    @property
    def recording(self) -> Path | None:
        """The file this run writes locally, if any (``output`` or ``record``)."""
        return self.output if self.output is not None else self.record

    def look_ahead(self, enrolled: bool) -> float:
        """Seconds each frame waits: ``delay`` if given, else :data:`DEFAULT_DELAY_S` for detection
        alone, or :data:`ENROLLED_DELAY_S` when someone is enrolled (identity needs longer)."""
        return ENROLLED_DELAY_S if enrolled and self.delay is None else self.detection_look_ahead

    @property
    def detection_look_ahead(self) -> float:
        """The look-ahead detection's cadence is planned for: ``delay`` if given, else
        :data:`DEFAULT_DELAY_S`. The longer wait for identity never makes detection sparser."""
        return self.delay if self.delay is not None else DEFAULT_DELAY_S

    @property
    def keyframe_interval(self) -> int:
        """Frames between keyframes: exactly 2 s, as YouTube and Twitch ask."""
        return 2 * self.fps


def check_ingest_url(url: str) -> None:
    """Refuse a malformed ingest URL before anything starts; the message never shows the key.

    Raises:
        UsageError: not rtmp:// or rtmps://, no host, or no application name.
    """
    if not url.lower().startswith(("rtmp://", "rtmps://")):
        scheme = url.partition(":")[0][:10]  # never echo the rest: it may hold the key
        raise UsageError(f"the ingest URL must start with rtmp:// or rtmps://, got one starting with {scheme!r}")
    parts = urlsplit(url)
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        host = None
    if not host or not parts.path.strip("/"):
        raise UsageError(
            f"the ingest URL must look like rtmp://host/app/STREAM_KEY, got {mask_secrets(url)!r} "
            f"({'no host' if not host else 'no application name'})"
        )


def url_from_env(value: str | None) -> str | None:
    """``value`` or, when it is None, the URL in ``BLURCLI_RTMP_URL`` (empty counts as unset)."""
    return value or os.environ.get(RTMP_URL_ENV) or None
