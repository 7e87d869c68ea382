"""Video files in and out: upright BGR frames with their exact timestamps, audio carried over untouched.

``VideoReader`` decodes with PyAV (threaded) and yields :class:`VideoFrame` objects whose image is
UPRIGHT (the display matrix is applied) and whose ``pts`` is the stream's own timestamp.
``VideoWriter`` re-encodes (H.264 for 8-bit sources, HEVC Main 10 for 10-bit ones, see
:mod:`blurcli.media.codec`; depth, colour tags and HDR metadata kept) into a hidden temporary file beside the target, keeps
the input's time base and every pts (so variable frame rate stays variable and frame count and
duration stay equal), turns frames back to the stored orientation and writes the same display
matrix, copies every audio stream packet for packet, and renames the file into place only on
success.

Privacy choices (fail closed):
  * A file whose index points past its end (a cut download), a packet or frame the decoder marks
    corrupt, a decoder error, or a Matroska file ending before its announced duration raises
    :class:`~blurcli.errors.InputError`; a damaged or short input never becomes a "complete"
    output. The caller's ``with VideoWriter(...)`` then deletes the temporary file.
  * Container metadata (titles, GPS location, creation time) is not copied; only the display
    rotation and the audio streams' language are.

Output containers: .mp4, .m4v, .mov, .mkv (see :data:`OUTPUT_FORMATS`). Odd picture sizes are
padded by one repeated row/column (4:2:0 H.264 needs even sides). Matroska stores timestamps in
milliseconds, so pts survive exactly only in .mp4/.mov.
"""
from __future__ import annotations

import logging
import math
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from blurcli.errors import InputError, OutputError, UsageError
from blurcli.media._audio import AudioInterleaver
from blurcli.media.atomic import publish, signals_deferred, temp_path_beside
from blurcli.media._containers import (
    OUTPUT_FORMATS,
    VIDEO_EXTENSIONS,
    _reason,
    check_complete,
    expected_end,
    has_full_index,
    open_input,
    output_format,
    video_stream,
)
from blurcli.media._pixels import coded, coded_boxes, normalise_rotation, pad_to_even, upright
from blurcli.media.colour import PLANE_FORMATS, ColorTags, bgr_to_frame, frame_to_bgr, has_planes, is_full_range, output_color
from blurcli.media.codec import ENCODERS, X264_PRESETS, add_video_stream, default_codec
from blurcli.media.hdr import HdrMetadata, read_hdr

__all__ = [
    "OUTPUT_FORMATS",
    "VIDEO_EXTENSIONS",
    "X264_PRESETS",
    "ColorTags",
    "VideoFrame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "output_format",
    "probe_video",
]

log = logging.getLogger("blurcli.media")

@dataclass(frozen=True)
class VideoInfo:
    """Facts about a video stream that a sink needs to reproduce it.

    Attributes:
        width, height: size of the UPRIGHT picture (after rotation), pixels.
        coded_width, coded_height: size as stored in the stream.
        rotation: counter-clockwise degrees that turn the stored picture upright (0/90/180/270),
            as PyAV's ``VideoFrame.rotation`` / the display matrix.
        time_base: the video stream's time base; every pts is in these units.
        average_rate: nominal frames per second, None if unknown.
        frame_count: frames the container announces, None if it does not say.
        duration_s: duration of the video stream in seconds, None if unknown.
        audio_streams: how many audio streams the input has.
        codec_name: the input video codec ("h264", "hevc", ...).
        color: colour tags and bit depth for the output so that it looks like the input (addition
            to the agreed API; the default suits any BGR source).
        hdr: the input's mastering display and light level, None if it has none.
    """

    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int
    time_base: Fraction
    average_rate: Fraction | None
    frame_count: int | None
    duration_s: float | None
    audio_streams: int
    codec_name: str
    color: ColorTags = ColorTags()
    hdr: HdrMetadata | None = None


class VideoFrame:
    """One decoded picture: its upright BGR image on demand, or its own YUV planes.

    A frame from :class:`VideoReader` keeps the decoded picture and converts it to BGR only when
    :attr:`image` is first read, so frames nobody looks at (pass 2 of a video, frames between two
    detections) are never converted: :meth:`planes` gives a private copy of the Y, U and V planes
    to redact in place, and :class:`VideoWriter` encodes them as they are. Every pixel outside a
    mask keeps its decoded value, and the frame costs no BGR round trip.

    Attributes:
        image: (h, w, 3) uint8 BGR, UPRIGHT, writable (redact in place); converted on first use.
        pts: presentation timestamp in ``time_base`` units, as decoded.
        time_base: the stream's time base.
        index: 0-based position in presentation order.
        rotation: display rotation of the stored picture (0/90/180/270 counter-clockwise).
    """

    __slots__ = ("_image", "pts", "time_base", "index", "rotation", "_decoded", "_yuv")

    def __init__(
        self,
        image: np.ndarray | None,
        pts: int | None,
        time_base: Fraction,
        index: int,
        *,
        decoded: av.VideoFrame | None = None,
        rotation: int = 0,
    ):
        if image is None and decoded is None:
            raise ValueError("a VideoFrame needs an image or a decoded frame")
        self._image = image
        self.pts = pts
        self.time_base = time_base
        self.index = index
        self.rotation = rotation
        self._decoded = decoded
        self._yuv: av.VideoFrame | None = None

    @property
    def _frame(self) -> av.VideoFrame | None:
        """The YUV picture this frame still is: its own copy once made, else the decoder's."""
        return self._yuv if self._yuv is not None else self._decoded

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            self._image = upright(frame_to_bgr(self._frame), self.rotation)
            self._decoded = self._yuv = None
        return self._image

    @image.setter
    def image(self, value: np.ndarray) -> None:
        self._image = value
        self._decoded = self._yuv = None

    def bgr(self) -> np.ndarray:
        """An upright BGR picture of the frame that leaves it its YUV planes (:attr:`image` drops
        them): a one-pass video detects on this and redacts the planes."""
        if self._image is not None:
            return self._image
        return upright(frame_to_bgr(self._frame), self.rotation)

    @property
    def time(self) -> float:
        """Presentation time in seconds (NaN when the frame has no pts)."""
        return float(self.pts * self.time_base) if self.pts is not None else math.nan

    @property
    def has_planes(self) -> bool:
        """True while the frame is still its decoded 4:2:0 planes (8 or 10 bits, even size, no BGR made)."""
        frame = self._frame
        return self._image is None and frame is not None and has_planes(frame)

    @property
    def bits(self) -> int:
        """Bits per sample of :meth:`planes` (8: uint8 planes, 10: uint16 planes holding 0-1023)."""
        return 10 if self._frame.format.name == PLANE_FORMATS[10] else 8

    @property
    def full_range(self) -> bool:
        return self.has_planes and is_full_range(self._frame)

    def planes(self) -> list[np.ndarray]:
        """Writable (h, w) Y and (h/2, w/2) U, V views of this frame's own copy, stored orientation.

        The copy is made once: the decoder's frame may still be its reference picture, and a fresh
        frame carries none of the input's side data (captions, SEI) into the output.
        """
        if not self.has_planes:
            raise ValueError("frame has no YUV planes (already BGR, or not 4:2:0 of even size)")
        dtype = np.uint16 if self.bits > 8 else np.uint8
        if self._yuv is None:
            decoded = self._decoded
            copy = av.VideoFrame(decoded.width, decoded.height, decoded.format.name)
            copy.color_range = decoded.color_range
            for src, dst in zip(decoded.planes, copy.planes):
                _plane_view(dst, dtype)[:] = _plane_view(src, dtype)
            self._yuv, self._decoded = copy, None
        return [_plane_view(plane, dtype) for plane in self._yuv.planes]

    def yuv_frame(self) -> av.VideoFrame:
        """The frame's own 4:2:0 copy, for the encoder (see :meth:`planes`)."""
        self.planes()
        return self._yuv

    def coded_boxes(self, xyxy: np.ndarray) -> np.ndarray:
        """(n, 4) upright boxes turned into the stored picture's coordinates."""
        frame = self._frame
        width, height = (frame.width, frame.height) if frame is not None else self.image.shape[1::-1]
        return coded_boxes(xyxy, self.rotation, width, height)


def _plane_view(plane, dtype=np.uint8) -> np.ndarray:
    """A writable numpy view of one plane (uint8, or uint16 for 10 bits), line padding cut off."""
    per_line = plane.line_size // np.dtype(dtype).itemsize
    rows = np.frombuffer(plane, dtype, count=per_line * plane.height).reshape(plane.height, per_line)
    return rows[:, : plane.width]


def _rate(stream: av.video.stream.VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and rate > 0:
            return Fraction(rate)
    return None


def _duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration:
        return float(stream.duration * stream.time_base)
    announced = expected_end(stream)
    if announced is not None:
        return float(announced)
    return container.duration / av.time_base if container.duration else None


class _Decoder:
    """Decodes one video stream (raw PyAV frames), refusing damage and a silent early end.

    The first frame is decoded at once: its display matrix gives the rotation for VideoInfo.
    """

    def __init__(self, path: Path, container: av.container.InputContainer, threads: int):
        self.path = path
        self.container = container
        self.stream = video_stream(container, path)
        for stream in container.streams:
            if stream.type in ("video", "audio"):
                check_complete(stream, path)
        self.stream.thread_type = "AUTO"
        self.stream.codec_context.thread_count = threads
        self.time_base = Fraction(self.stream.time_base)
        self._frames = self._decode()
        self.first = self._next_raw()
        if self.first is None:
            raise InputError(f"{path}: no video frame could be decoded")
        self.rotation = normalise_rotation(self.first.rotation)

    def info(self) -> VideoInfo:
        frame, stream = self.first, self.stream
        width, height = frame.width, frame.height
        upright_size = (height, width) if self.rotation in (90, 270) else (width, height)
        return VideoInfo(
            width=upright_size[0],
            height=upright_size[1],
            coded_width=width,
            coded_height=height,
            rotation=self.rotation,
            time_base=self.time_base,
            average_rate=_rate(stream),
            frame_count=stream.frames or None,
            duration_s=_duration_s(self.container, stream),
            audio_streams=len(self.container.streams.audio),
            codec_name=stream.codec_context.name,
            color=output_color(frame),
            hdr=read_hdr(frame),
        )

    def _next_raw(self) -> av.VideoFrame | None:
        try:
            return next(self._frames, None)
        except av.FFmpegError as exc:
            raise InputError(f"{self.path}: video cannot be decoded ({_reason(exc)}); the file is damaged") from exc

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Raw frames in presentation order; raises InputError on damage or a silent early end."""
        packets = 0
        end = None  # latest pts + duration seen, in time base units
        previous_pts, gap = None, 0  # the last pts step stands in for an unknown frame duration
        for packet in self.container.demux(self.stream):
            if packet.size:
                packets += 1
                if packet.is_corrupt:
                    raise InputError(f"{self.path}: video packet {packets} is damaged; refusing to go on")
            for frame in packet.decode():
                if frame.is_corrupt:
                    at = f" at {float(frame.pts * self.time_base):.3f} s" if frame.pts is not None else ""
                    raise InputError(f"{self.path}: video frame{at} is damaged (decoder reported corruption)")
                if frame.pts is not None:
                    if previous_pts is not None and frame.pts > previous_pts:
                        gap = frame.pts - previous_pts
                    previous_pts = frame.pts
                    frame_end = frame.pts + (frame.duration or gap)
                    end = frame_end if end is None else max(end, frame_end)
                yield frame
        self._check_end(packets, end)

    def _check_end(self, packets: int, end: int | None) -> None:
        stream = self.stream
        if has_full_index(stream):
            return  # checked byte for byte before decoding
        if stream.frames and len(stream.index_entries) == 0 and packets < stream.frames:
            raise InputError(
                f"{self.path}: file is truncated: {packets} of {stream.frames} video frames present"
            )
        announced = expected_end(stream)
        if announced is not None and end is not None:
            rate = _rate(stream) or Fraction(25)
            tolerance = Fraction(1, 2) / rate + 2 * self.time_base + Fraction(1, 1000)
            reached = end * self.time_base
            if reached + tolerance < announced:
                raise InputError(
                    f"{self.path}: file is truncated: video ends at {float(reached):.3f} s "
                    f"but the container announces {float(announced):.3f} s"
                )

    def frames(self) -> Iterator[av.VideoFrame]:
        """All raw frames, starting with the one decoded for probing."""
        frame = self.first
        while frame is not None:
            yield frame
            frame = self._next_raw()


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's stream facts (decodes the first frame for the rotation).

    Raises:
        InputError: missing, a directory, empty, not a video, no video stream, truncated, or no
            frame can be decoded; the message is one line naming the file.
    """
    path = Path(path)
    container = open_input(path)
    try:
        return _Decoder(path, container, threads=0).info()
    finally:
        container.close()


class VideoReader:
    """Iterate a video file's frames, upright and in presentation order.

    Example:
        >>> with VideoReader("in.mp4") as reader:
        ...     for frame in reader:
        ...         process(frame.image, frame.time)

    Args:
        path: the video file.
        threads: decoder threads, 0 = one per core.

    Raises:
        InputError: as :func:`probe_video`; iteration raises it when decoding fails midway.
    """

    def __init__(self, path: str | Path, *, threads: int = 0):
        self.path = Path(path)
        self._container = open_input(self.path)
        try:
            self._decoder = _Decoder(self.path, self._container, threads)
            self.info: VideoInfo = self._decoder.info()
        except BaseException:
            self._container.close()
            raise
        self._started = False

    def __iter__(self) -> Iterator[VideoFrame]:
        if self._started:
            raise RuntimeError("a VideoReader can be iterated only once; open a new one")
        self._started = True
        rotation, time_base = self.info.rotation, self.info.time_base
        step = round(1 / (self.info.average_rate or 25) / time_base) or 1
        last_pts = None
        for index, frame in enumerate(self._decoder.frames()):
            pts = frame.pts
            if pts is None:  # raw elementary streams carry no timestamps: continue the clock
                pts = 0 if last_pts is None else last_pts + step
            last_pts = pts
            yield VideoFrame(None, pts, time_base, index, decoded=frame, rotation=rotation)

    def close(self) -> None:
        """Release the file (idempotent)."""
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


class VideoWriter:
    """Encode frames (H.264 or HEVC) beside ``dst`` and move the file into place on success.

    Use it as a context manager: leaving the block with an exception (KeyboardInterrupt too)
    calls :meth:`abort`, a clean exit calls :meth:`close`.

    Args:
        dst: output path; its extension picks the container (.mp4 .m4v .mov .mkv).
        info: the input's :class:`VideoInfo` (size, rotation, time base, rate, colour).
        audio_from: file whose audio streams are copied (normally the input), or None for none.
        crf: constant rate factor, 0-51 (lower = better).
        preset: x264/x265 preset, one of :data:`X264_PRESETS`.
        threads: encoder threads, 0 = automatic (all cores).
        codec: "h264" or "hevc"; None = HEVC for a 10-bit input, else H.264.

    Raises:
        UsageError: unknown extension or codec, crf/preset out of range, ``dst`` is ``audio_from``.
        OutputError: the temporary file cannot be created (missing or read-only directory).
        InputError: ``audio_from`` cannot be read.
    """

    def __init__(
        self,
        dst: str | Path,
        info: VideoInfo,
        *,
        audio_from: Path | None,
        crf: int = 20,
        preset: str = "veryfast",
        threads: int = 0,
        codec: str | None = None,
    ):
        self.dst = Path(dst)
        self.info = info
        self.codec = codec or default_codec(info.color)
        format_name = output_format(self.dst)
        if self.codec not in ENCODERS:
            raise UsageError(f"unknown codec {self.codec!r}; use one of {', '.join(ENCODERS)}")
        if not 0 <= crf <= 51:
            raise UsageError(f"crf must be between 0 and 51, got {crf}")
        if preset not in X264_PRESETS:
            raise UsageError(f"unknown x264 preset {preset!r}; use one of {', '.join(X264_PRESETS)}")
        if audio_from is not None and _same_file(Path(audio_from), self.dst):
            raise UsageError(f"{self.dst}: output is the input file; refusing to overwrite it")
        if self.dst.is_dir():
            raise OutputError(f"{self.dst}: is a directory")
        with signals_deferred():  # the temp file is owned (and removed on any exit) from its creation on
            self._tmp = self._create_temp()
            self._finalizer = weakref.finalize(self, _unlink, self._tmp)
        self._done = False
        self._frames = 0
        self._last_pts: int | None = None
        self._audio: AudioInterleaver | None = None
        self._out = None
        try:
            options = {"movflags": "+faststart"} if format_name in ("mp4", "mov") else {}
            if format_name == "matroska":  # no random segment/track UIDs or date: one input and one set of
                options["fflags"] = "+bitexact"  # settings give one file, whichever worker wrote it
            self._out = av.open(str(self._tmp), "w", format=format_name, container_options=options)
            self._video = self._add_video(crf, preset, threads)
            if audio_from is not None:
                self._audio = AudioInterleaver(Path(audio_from), self._out)
        except av.FFmpegError as exc:
            self.abort()
            raise OutputError(f"{self.dst}: cannot start writing ({_reason(exc)})") from exc
        except BaseException:
            self.abort()
            raise

    def _create_temp(self) -> Path:
        """A hidden, uniquely named file beside dst with dst's extension (the one naming of
        :mod:`blurcli.media.atomic`, whose stale copies a retry removes)."""
        if not self.dst.parent.is_dir():
            raise OutputError(f"{self.dst.parent}: output directory does not exist")
        return temp_path_beside(self.dst)

    def _add_video(self, crf: int, preset: str, threads: int) -> av.video.stream.VideoStream:
        info = self.info
        stream = add_video_stream(
            self._out,
            codec=self.codec,
            width=info.coded_width + (info.coded_width & 1),
            height=info.coded_height + (info.coded_height & 1),
            rate=info.average_rate or Fraction(30),
            time_base=info.time_base,
            colour=info.color,
            options={"crf": str(crf), "preset": preset},
            threads=threads,
            hdr=info.hdr,
        )
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        if (info.coded_width | info.coded_height) & 1:
            log.info("%s: odd size %dx%d padded to %dx%d for 4:2:0", self.dst, info.coded_width,
                     info.coded_height, stream.width, stream.height)
        return stream

    def _pts(self, frame: VideoFrame) -> int:
        """The frame's pts in the output time base, forced strictly increasing."""
        time_base = self.info.time_base
        pts = frame.pts
        if pts is not None and frame.time_base != time_base:
            pts = round(pts * frame.time_base / time_base)
        if self._last_pts is None:
            return 0 if pts is None else pts
        if pts is None:  # no timestamp: one nominal frame after the previous one
            rate = self.info.average_rate or Fraction(30)
            return self._last_pts + max(1, round(1 / rate / time_base))
        if pts <= self._last_pts:  # the encoder and muxers need strictly increasing pts
            log.warning("%s: frame %d has pts %d, not after %d; moved to %d", self.dst, frame.index, pts,
                        self._last_pts, self._last_pts + 1)
            return self._last_pts + 1
        return pts

    def write(self, frame: VideoFrame) -> None:
        """Encode one upright frame (its image must have the input's upright size).

        Raises:
            ValueError: wrong image shape/dtype, or the writer is already closed.
            OutputError: the encoder or the disk failed.
            InputError: the audio source failed while interleaving.
        """
        if self._done:
            raise ValueError("VideoWriter is closed")
        picture = frame.yuv_frame() if frame.has_planes else None
        video = self._video
        if picture is None or (picture.width, picture.height, picture.format.name) != (
            video.width, video.height, self.info.color.pix_fmt
        ):
            image = frame.image
            expected = (self.info.height, self.info.width, 3)
            if image.shape != expected or image.dtype != np.uint8:
                raise ValueError(f"frame {frame.index}: image is {image.shape} {image.dtype}, expected {expected} uint8")
            picture = bgr_to_frame(pad_to_even(coded(image, self.info.rotation)), self.info.color)
        picture.pts = self._last_pts = self._pts(frame)
        picture.time_base = self.info.time_base
        try:
            for packet in self._video.encode(picture):
                self._mux_video(packet)
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"{self.dst}: cannot write video ({_reason(exc)})") from exc
        self._frames += 1

    def _mux_video(self, packet: av.Packet) -> None:
        if self._audio is not None and packet.dts is not None:
            self._audio.mux_until(float(packet.dts * packet.time_base))
        self._out.mux(packet)

    @property
    def frames_written(self) -> int:
        """Frames passed to :meth:`write` so far."""
        return self._frames

    def close(self) -> None:
        """Flush the encoder, mux the remaining audio and move the file to ``dst`` atomically.

        Raises:
            OutputError: nothing was written, or flushing/renaming failed (the temp file is removed).
        """
        if self._done:
            return
        try:
            if self._frames == 0:
                raise OutputError(f"{self.dst}: no video frames to write")
            for packet in self._video.encode(None):
                self._mux_video(packet)
            if self._audio is not None:
                self._audio.finish()
            self._out.close()
            publish(self._tmp, self.dst)
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"{self.dst}: cannot finish writing ({_reason(exc)})") from exc
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._finalizer.detach()
        log.debug("%s: wrote %d frames", self.dst, self._frames)

    def abort(self) -> None:
        """Drop the output: close and delete the temporary file; ``dst`` is left as it was (idempotent)."""
        if self._done:
            return
        self._done = True
        for closer in (getattr(self._out, "close", None), getattr(self._audio, "close", None)):
            if closer is None:
                continue
            try:
                closer()
            except Exception:  # the file is being thrown away; a failing trailer does not matter
                pass
        _unlink(self._tmp)
        self._finalizer.detach()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
