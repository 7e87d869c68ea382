"""Builders of small synthetic clips for everyone's tests (PyAV only, no ffmpeg binary).

Clips are tiny (tens of frames, a few dozen pixels) so that a test builds one in milliseconds.
By default frame ``i`` is a flat picture of value ``(i * 40) % 256`` on every channel, so the order
and the count of frames survive lossy compression (``frame_value`` reads it back). Tests that need
real content (a face pasted into the picture) pass ``image_fn``.

Every picture handed to or returned by these helpers is UPRIGHT (as a player shows it); with
``rotation`` the file stores it turned and carries a display matrix that turns it back.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

#: Container format by extension, so a test can write any of them.
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}

#: cv2 rotation that turns an UPRIGHT picture into the stored one for a display rotation
#: (counter-clockwise degrees, as PyAV's ``VideoFrame.rotation``).
_TO_CODED = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def flat_frame(i: int, size: tuple[int, int]) -> np.ndarray:
    """The default picture: frame ``i`` painted ``(i * 40) % 256``.

    Args:
        i: frame index.
        size: (width, height).

    Returns:
        (height, width, 3) uint8 BGR.
    """
    width, height = size
    return np.full((height, width, 3), (i * 40) % 256, np.uint8)


def frame_value(image: np.ndarray) -> int:
    """The frame index ``i`` (mod 32) a default picture was painted with, read back after compression."""
    mean = float(np.mean(image))
    return min(range(32), key=lambda i: abs(((i * 40) % 256) - mean))


def make_clip(
    path: str | Path,
    *,
    frames: int = 10,
    size: tuple[int, int] = (64, 48),
    fps: float | Fraction = 25,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    audio: bool | int = False,
    audio_codec: str = "aac",
    audio_rate: int = 44100,
    image_fn: Callable[[int], np.ndarray] | None = None,
    codec: str = "libx264",
    faststart: bool = False,
    pix_fmt: str | None = None,
    colour: tuple[int, int, int, int] | None = None,
    encoder_params: str = "",
) -> Path:
    """Write a small clip with PyAV.

    Args:
        path: output file; the extension picks the container (.mp4 .m4v .mov .mkv .avi).
        frames: number of video frames (ignored when ``pts`` is given: ``len(pts)`` frames).
        size: (width, height) of the UPRIGHT picture. With rotation 90/270 the stored (coded)
            picture is (height, width).
        fps: constant frame rate; frame i gets pts i in time base 1/fps.
        pts: explicit presentation timestamps (variable frame rate), strictly increasing,
            in ``time_base`` units (default time base 1/1000 then).
        time_base: video stream time base; default 1/fps, or 1/1000 with ``pts``. Muxers may
            store another one (MP4 scales small ones up, Matroska always uses milliseconds, so
            two pts closer than 1 ms collapse into one in .mkv).
        rotation: display rotation in counter-clockwise degrees (0, 90, 180, 270), written as the
            stream's display matrix; ``image_fn`` pictures are stored turned the other way.
        audio: False, True (one stream) or the number of audio streams: a 440 Hz (stream k:
            440*(k+1) Hz) sine lasting as long as the video.
        audio_codec: "aac", "pcm_s16le", "opus", "mp3", "flac", ...
        audio_rate: audio sample rate in Hz (opus needs 48000).
        image_fn: ``image_fn(i) -> (height, width, 3) uint8 BGR`` UPRIGHT picture of frame i;
            default ``flat_frame``.
        codec: video encoder ("libx264", "libx265" (sides >= 64 px), "mpeg4", "mjpeg", ...).
        faststart: put the moov atom first (mp4/mov), so that cutting the file loses media data
            rather than the index.
        pix_fmt: the stored pixel format (default yuv420p, yuvj420p for mjpeg), e.g. "yuv420p10le".
        colour: (primaries, transfer, matrix, range) FFmpeg enum values to tag the stream with;
            the BGR pictures are converted with that matrix and range (e.g. (9, 18, 9, 1): BT.2020
            HLG, what an iPhone records).
        encoder_params: extra x264/x265 parameters ("key=value:..."), e.g. HDR metadata.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    width, height = size
    if pts is None:
        rate = Fraction(fps).limit_denominator(100000)
        time_base = time_base or 1 / rate
        step = (1 / rate) / time_base
        pts = [round(i * step) for i in range(frames)]
    else:
        pts = list(pts)
        time_base = time_base or Fraction(1, 1000)
        rate = None
    rotation %= 360
    coded = (height, width) if rotation in (90, 270) else (width, height)
    if codec == "libx265" and min(coded) < 64:
        # PyAV 18.1's libx265 corrupts the heap now and then on pictures smaller than a 64 px CTU
        raise ValueError(f"libx265 clips need both sides >= 64 px, got {coded}")
    image_fn = image_fn or (lambda i: flat_frame(i, size))
    n_audio = int(audio)
    container_options = {"movflags": "+faststart"} if faststart else {}

    with av.open(str(path), "w", format=_FORMATS[path.suffix.lower()], container_options=container_options) as out:
        video = out.add_stream(codec, rate=rate or 25)
        video.width, video.height = coded
        video.pix_fmt = pix_fmt or ("yuvj420p" if codec == "mjpeg" else "yuv420p")
        video.codec_context.time_base = time_base
        video.time_base = time_base
        if colour is not None:
            context = video.codec_context
            context.color_primaries, context.color_trc, context.colorspace, context.color_range = colour
        if codec == "libx264":
            video.options = {"crf": "18", "preset": "veryfast", **({"x264-params": encoder_params} if encoder_params else {})}
        elif codec == "libx265":
            params = ":".join(["log-level=error"] + ([encoder_params] if encoder_params else []))
            video.options = {"crf": "18", "preset": "veryfast", "x265-params": params}
        if rotation:
            video.set_display_rotation(rotation)
        audios = [out.add_stream(audio_codec, rate=audio_rate, layout="mono") for _ in range(n_audio)]

        end_s = float((pts[-1] + (pts[-1] - pts[-2] if len(pts) > 1 else 1)) * time_base) if pts else 0.0
        tones = [_Sine(stream, end_s, 440 * (k + 1)) for k, stream in enumerate(audios)]
        for i, p in enumerate(pts):
            image = np.ascontiguousarray(image_fn(i))
            if image.shape != (height, width, 3):
                raise ValueError(f"image_fn({i}) gave {image.shape}, expected {(height, width, 3)}")
            if rotation:
                image = cv2.rotate(image, _TO_CODED[rotation])
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            if colour is not None:
                frame = frame.reformat(format=video.pix_fmt, dst_colorspace=colour[2], dst_color_range=colour[3])
                frame.color_range = colour[3]
            frame.pts = p
            frame.time_base = time_base
            out.mux(video.encode(frame))
            t = float(p * time_base)
            for tone in tones:
                tone.mux_until(out, t)
        out.mux(video.encode(None))
        for tone in tones:
            tone.finish(out)
    return path


class _Sine:
    """A sine tone fed to one audio encoder frame by frame, up to a time asked for."""

    def __init__(self, stream, duration_s: float, hz: float):
        self.stream = stream
        self.rate = stream.codec_context.sample_rate
        self.total = int(round(duration_s * self.rate))
        self.hz = hz
        self.next_sample = 0

    def mux_until(self, out, t: float) -> None:
        """Encode and mux the 1024-sample frames that start at or before ``t`` seconds."""
        while self.next_sample < self.total and self.next_sample / self.rate <= t:
            start, n = self.next_sample, min(1024, self.total - self.next_sample)
            seconds = np.arange(start, start + n) / self.rate
            samples = (0.3 * np.sin(2 * np.pi * self.hz * seconds) * 32767).astype(np.int16)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = self.rate
            frame.pts = start
            frame.time_base = Fraction(1, self.rate)
            out.mux(self.stream.encode(frame))
            self.next_sample += n

    def finish(self, out) -> None:
        self.mux_until(out, math.inf)
        out.mux(self.stream.encode(None))


def truncate(path: str | Path, nbytes: int) -> Path:
    """Cut a file to its first ``nbytes`` bytes in place (a download that stopped), and return it.

    Without ``faststart`` an MP4's index sits at the end, so a cut loses it ("moov atom not
    found"); with ``faststart`` the index survives and the cut loses media data instead.
    """
    path = Path(path)
    with open(path, "r+b") as handle:
        handle.truncate(nbytes)
    return path


def corrupt(path: str | Path, *, at: float = 0.5, nbytes: int = 3000, seed: int = 0) -> Path:
    """Overwrite ``nbytes`` bytes at fraction ``at`` of the file with random garbage, in place."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start : start + nbytes] = np.random.default_rng(seed).integers(0, 256, nbytes, np.uint8).tobytes()[
        : len(data) - start
    ]
    path.write_bytes(bytes(data))
    return path
