"""Opening media containers with PyAV and turning every failure into one clear typed error.

Kept apart from the reader and writer so that the video reader, the audio copier and probing
share the same checks: missing file, directory, empty file, not media, no video stream, and a
file whose index points past its end (cut during a download or a copy).
"""
from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path

import av

from blurcli.errors import InputError, UsageError

#: Output containers we write, by extension. All take H.264 with any timestamps (VFR) and a
#: display matrix. AVI is refused: it cannot carry variable frame rate or a display rotation.
OUTPUT_FORMATS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

#: Extensions treated as videos when a folder is walked (any FFmpeg-readable file is accepted
#: when named explicitly).
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".3gp"}
)


def output_format(path: str | Path) -> str:
    """The FFmpeg muxer name for an output path.

    Raises:
        UsageError: the extension is not one of :data:`OUTPUT_FORMATS`.
    """
    suffix = Path(path).suffix.lower()
    try:
        return OUTPUT_FORMATS[suffix]
    except KeyError:
        known = ", ".join(sorted(OUTPUT_FORMATS))
        raise UsageError(f"{path}: cannot write video as '{suffix or '(no extension)'}'; use one of {known}") from None


def _reason(exc: BaseException) -> str:
    """A short reason from a PyAV/OS error, without errno numbers and quoted file names."""
    text = getattr(exc, "strerror", None) or str(exc)
    return re.sub(r"^\[Errno -?\d+\]\s*", "", str(text)).rstrip(".")


def open_input(path: str | Path) -> av.container.InputContainer:
    """Open a media file for reading.

    Args:
        path: the file.

    Returns:
        The open PyAV input container (caller closes it).

    Raises:
        InputError: missing, a directory, unreadable, empty, or not a media file FFmpeg can parse
            (which includes an MP4 cut before its index, "moov atom not found").
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({_reason(exc)})") from exc
    if size == 0:
        raise InputError(f"{path}: file is empty (0 bytes)")
    try:
        return av.open(str(path), "r")
    except PermissionError as exc:
        raise InputError(f"{path}: cannot be read (permission denied)") from exc
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: not a readable video ({_reason(exc)}); the file is damaged, truncated or not a video"
        ) from exc


def video_stream(container: av.container.InputContainer, path: str | Path) -> av.video.stream.VideoStream:
    """The first real video stream (cover art in audio files does not count).

    Raises:
        InputError: there is none (an audio file, subtitles, ...).
    """
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic and stream.codec_context is not None:
            return stream
    kinds = sorted({s.type for s in container.streams}) or ["nothing"]
    raise InputError(f"{path}: has no video stream (it holds {', '.join(kinds)})")


def has_full_index(stream: av.stream.Stream) -> bool:
    """True when the container indexes every sample of the stream (MP4, MOV, indexed AVI)."""
    return bool(stream.frames) and len(stream.index_entries) >= stream.frames


def check_complete(stream: av.stream.Stream, path: str | Path) -> None:
    """Fail if the container's index points at bytes past the end of the file.

    MP4/MOV (and AVI with an index) list every sample's offset and size; a file cut during a
    download keeps that index but lacks the data, and FFmpeg would then simply stop early.

    Raises:
        InputError: the file is shorter than its index says.
    """
    if not has_full_index(stream):
        return  # MKV cues, MPEG-TS: the reader checks the announced duration instead
    entries = stream.index_entries
    count = len(entries)
    end = 0
    for i in range(count - 1, max(-1, count - 64), -1):  # the data ends near the last samples
        entry = entries[i]
        if entry.pos >= 0:
            end = max(end, entry.pos + entry.size)
    size = os.path.getsize(path)
    if end > size:
        raise InputError(
            f"{path}: file is truncated ({size} bytes, but its index needs {end}); the copy is incomplete"
        )


def expected_end(stream: av.stream.Stream) -> Fraction | None:
    """End time in seconds the container announces for a stream without a full index, or None.

    Used for Matroska/WebM, whose demuxer stops silently at a cut: FFmpeg-written files carry
    a per-stream ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``).
    """
    if has_full_index(stream):
        return None  # checked up front by check_complete
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if not tag:
        return None
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", tag.strip())
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
