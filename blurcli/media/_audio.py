"""Carry every audio stream of the source into the output, interleaved with the video by time.

Packets are copied untouched (``add_stream_from_template``), so the output's audio is
byte-identical to the input's. Only when the output container refuses a codec (Opus or FLAC in
.mov, for example) is that stream decoded and re-encoded to AAC, with a warning.

The source is opened a second time and only its audio packets are read, lazily: the writer asks
for "everything up to time t" before it muxes a video packet at t, so memory stays flat and the
muxer's own interleaving queue stays short.
"""
from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from blurcli.errors import InputError
from blurcli.media._containers import _reason, check_complete, open_input

log = logging.getLogger("blurcli.media")

#: Sample rates the AAC encoder accepts.
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


@dataclass
class _Route:
    """Where one source audio stream goes: copied as is, or decoded by ``source`` and re-encoded."""

    out: av.stream.Stream
    transcode: bool


def copy_accepted(format_name: str, template: av.stream.Stream) -> bool:
    """Whether ``format_name`` can hold packets of ``template``'s codec unchanged.

    FFmpeg's codec table says yes to some codecs that its muxer then refuses when it writes the
    header (Opus or FLAC in .mov); trying the header on an in-memory file is the reliable test.
    """
    probe = av.open(io.BytesIO(), "w", format=format_name)
    try:
        probe.add_stream_from_template(template)
        probe.start_encoding()
        return True
    except (ValueError, av.FFmpegError):
        return False
    finally:
        try:
            probe.close()
        except (ValueError, av.FFmpegError):
            pass


#: Streams that are neither picture nor sound are left out on purpose: subtitles and timecode
#: tracks can name or place people, GPS/telemetry data streams say where the footage was shot, and
#: an attached picture (cover art, a thumbnail) would show the faces unblurred.
LEFT_OUT = ("subtitle", "data", "attachment")


def _log_left_out(container: av.container.InputContainer, source: Path) -> None:
    """Say which streams of ``source`` the output will not carry (see :data:`LEFT_OUT`)."""
    pictures = [s for s in container.streams.video if s.disposition & av.stream.Disposition.attached_pic]
    moving = [s for s in container.streams.video if s not in pictures]
    extra = [s for s in container.streams if s.type in LEFT_OUT] + pictures + moving[1:]
    for stream in extra:
        name = getattr(stream.codec_context, "name", None) or stream.type
        log.warning("%s: stream #%d (%s %s) is not copied: only the picture and the sound are", source,
                 stream.index, stream.type, name)


class AudioInterleaver:
    """Feeds the audio of ``source`` into ``out`` as the video advances.

    Args:
        source: the file to take the audio from (normally the input video).
        out: the output container; the audio streams are added to it now, before its header.
        slack_s: audio up to this much later than the video packet is muxed with it.

    Raises:
        InputError: the source cannot be opened or its audio is cut short.
    """

    def __init__(self, source: Path, out: av.container.OutputContainer, *, slack_s: float = 0.05):
        self._source = Path(source)
        self._out = out
        self._slack = slack_s
        self._in = open_input(self._source)
        self._routes: dict[int, _Route] = {}
        self._pending: tuple[float, av.Packet] | None = None
        try:
            _log_left_out(self._in, self._source)
            for stream in self._in.streams.audio:
                check_complete(stream, self._source)
                route = self._add_route(stream)
                if route is not None:
                    self._routes[stream.index] = route
        except BaseException:
            self._in.close()
            raise
        self._packets = self._generate() if self._routes else iter(())

    @property
    def streams(self) -> int:
        """Number of audio streams carried."""
        return len(self._routes)

    def _add_route(self, stream: av.stream.Stream) -> _Route | None:
        if copy_accepted(self._out.format.name, stream):
            out = self._out.add_stream_from_template(stream)
            transcode = False
        elif stream.codec_context is None:  # FFmpeg has no decoder for it either
            log.warning("%s: audio stream #%d has an unknown codec that %s cannot hold; it is left out",
                        self._source, stream.index, self._out.format.name)
            return None
        else:
            rate = stream.codec_context.sample_rate
            rate = rate if rate in _AAC_RATES else 48000
            layout = stream.codec_context.layout.name
            if stream.codec_context.channels not in (1, 2, 6, 8):
                layout = "stereo"
            out = self._out.add_stream("aac", rate=rate, layout=layout)
            out.codec_context.bit_rate = min(96_000 * out.codec_context.channels, 512_000)
            transcode = True
            log.warning(
                "%s: audio stream #%d (%s) cannot be stored in %s; re-encoding it to AAC (not a bit-exact copy)",
                self._source, stream.index, stream.codec_context.name, self._out.format.name,
            )
        language = stream.metadata.get("language")
        if language:
            out.metadata["language"] = language
        return _Route(out=out, transcode=transcode)

    def _generate(self) -> Iterator[tuple[float, av.Packet]]:
        """Yield (time in seconds, packet ready to mux) in source order."""
        sources = [self._in.streams[i] for i in self._routes]
        for packet in self._in.demux(*sources):
            if packet.dts is None:  # demuxer flush packets carry no data
                continue
            route = self._routes[packet.stream.index]
            if not route.transcode:
                time = float(packet.dts * packet.time_base)
                packet.stream = route.out
                yield time, packet
            else:
                for frame in packet.decode():
                    yield from self._encode(route, frame)
        for source in sources:
            route = self._routes[source.index]
            if route.transcode:
                for frame in source.decode(None):
                    yield from self._encode(route, frame)
                yield from self._encode(route, None)

    @staticmethod
    def _encode(route: _Route, frame: av.AudioFrame | None) -> Iterator[tuple[float, av.Packet]]:
        if frame is not None and frame.pts is not None:
            rate = route.out.codec_context.sample_rate
            frame.pts = round(frame.pts * frame.time_base * rate)
            frame.time_base = Fraction(1, rate)
        for packet in route.out.encode(frame):
            time = float(packet.dts * packet.time_base) if packet.dts is not None else -math.inf
            yield time, packet

    def _next(self) -> tuple[float, av.Packet] | None:
        try:
            return next(self._packets, None)
        except av.FFmpegError as exc:
            raise InputError(f"{self._source}: audio cannot be read ({_reason(exc)}); the file is damaged") from exc

    def mux_until(self, time_s: float) -> None:
        """Mux every pending audio packet whose time is at most ``time_s`` (+ slack)."""
        limit = time_s + self._slack
        while True:
            if self._pending is None:
                self._pending = self._next()
                if self._pending is None:
                    return
            time, packet = self._pending
            if time > limit:
                return
            self._pending = None
            self._out.mux(packet)

    def finish(self) -> None:
        """Mux all remaining audio, then close the source."""
        self.mux_until(math.inf)
        self.close()

    def close(self) -> None:
        """Close the source (idempotent)."""
        self._in.close()
