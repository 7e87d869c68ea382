"""The one encode of a live run, and the muxers that take its packets.

A run encodes each picture once (H.264 + AAC) and muxes the same packets into every output: the
RTMP connection, and the local recording beside it (``--record``) or instead of it (``--output``).
Encoding twice would cost a second x264 on cores the detector needs. A new RTMP connection
starts at a keyframe the encoder is asked for (:attr:`Encoder.want_key`), with its own
timestamps from zero, while the recording's timeline runs on untouched.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from fractions import Fraction

import av
import numpy as np

from ..media.codec import add_video_stream
from ..media.colour import STREAM_TAGS, bgr_to_frame
from .settings import AUDIO_BITRATE, AUDIO_CHANNELS, AUDIO_RATE

#: Seconds a network operation may block before the connection counts as dead.
IO_TIMEOUT_S = 10.0
#: Samples per AAC frame; the encoder's first packet is this far before the first sample (priming).
AAC_FRAME = 1024


@dataclass(frozen=True)
class EncoderSettings:
    """How the run encodes.

    Attributes:
        width, height: picture size (even).
        fps: frame rate; the video time base is 1/fps.
        bitrate: video bitrate cap in bit/s (VBV max rate, 1 s buffer).
        keyint: frames between keyframes (exactly; scene cuts add none).
        preset: libx264 preset.
    """

    width: int
    height: int
    fps: int
    bitrate: int
    keyint: int
    preset: str = "veryfast"


class Encoder:
    """H.264 + AAC encoders whose packets any number of :class:`Muxer` take.

    The encoders belong to "null" containers (one each, so that the video encoder can be replaced
    while streaming): starting them opens the encoders with global headers, so every muxer's stream
    is a copy of theirs (SPS/PPS and AudioSpecificConfig included) made by
    :meth:`av.container.OutputContainer.add_stream_from_template`.
    """

    def __init__(self, enc: EncoderSettings) -> None:
        self.settings = enc
        self._audio_container = av.open("", "w", format="null")
        try:
            self.audio = self._audio_container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
            self.audio.bit_rate = AUDIO_BITRATE
            self.audio.time_base = Fraction(1, AUDIO_RATE)
            self._video_container, self.video = _open_video(enc)
            self.audio.codec_context.flags |= av.codec.context.Flags.global_header
            self._audio_container.start_encoding()
        except BaseException:
            self.close()
            raise
        self._pending = np.zeros((AUDIO_CHANNELS, 0), np.float32)
        self._audio_pts = 0
        #: set (by a muxer starting a connection) to make the next picture a keyframe
        self.want_key = False

    def set_preset(self, preset: str) -> list[av.Packet]:
        """Go on with a new x264 at ``preset``; returns the old one's last packets.

        Only a preset whose SPS and PPS equal the current one's may be set (veryfast and
        superfast: see :mod:`blurcli.live.budget`), so every muxer takes the new packets as they
        are. The new encoder starts with an IDR, and the keyframe interval counts from it.
        """
        old_container, old_video = self._video_container, self.video
        settings = replace(self.settings, preset=preset)
        container, video = _open_video(settings)
        if bytes(video.codec_context.extradata or b"") != bytes(old_video.codec_context.extradata or b""):
            container.close()
            raise ValueError(f"x264 {preset} needs other stream headers than {self.settings.preset}")
        packets = list(old_video.encode(None))
        self._video_container, self.video, self.settings = container, video, settings
        with contextlib.suppress(av.FFmpegError):
            old_container.close()
        return packets

    def encode(self, pts: int, image: np.ndarray, samples: np.ndarray) -> list[av.Packet]:
        """One BGR picture at video ``pts`` and its (2, n) audio samples; returns the packets made."""
        frame = bgr_to_frame(image, STREAM_TAGS)
        frame.pts = pts
        if self.want_key:
            frame.pict_type = av.video.frame.PictureType.I  # x264: an IDR, and keyint counts from it
            self.want_key = False
        packets = list(self.video.encode(frame))
        self._pending = np.concatenate([self._pending, samples], axis=1) if self._pending.shape[1] else samples
        while self._pending.shape[1] >= AAC_FRAME:
            chunk, self._pending = self._pending[:, :AAC_FRAME], self._pending[:, AAC_FRAME:]
            packets += self.audio.encode(_audio_frame(chunk, self._audio_pts))
            self._audio_pts += AAC_FRAME
        return packets

    def flush(self) -> list[av.Packet]:
        """The packets still inside the encoders (the last audio padded to a whole frame)."""
        packets = list(self.video.encode(None))
        if self._pending.shape[1]:
            pad = np.zeros((AUDIO_CHANNELS, AAC_FRAME - self._pending.shape[1]), np.float32)
            packets += self.audio.encode(_audio_frame(np.concatenate([self._pending, pad], axis=1), self._audio_pts))
            self._pending = self._pending[:, :0]
        packets += self.audio.encode(None)
        return packets

    def close(self) -> None:
        for container in (getattr(self, "_video_container", None), self._audio_container):
            if container is not None:
                with contextlib.suppress(av.FFmpegError):
                    container.close()


def _open_video(enc: EncoderSettings):
    """A started null container holding one opened x264 stream with global headers."""
    container = av.open("", "w", format="null")
    try:
        video = add_video_stream(
            container,
            width=enc.width,
            height=enc.height,
            rate=enc.fps,
            time_base=Fraction(1, enc.fps),
            colour=STREAM_TAGS,
            options={
                "preset": enc.preset,
                "tune": "zerolatency",
                "profile": "high",
                "x264-params": f"keyint={enc.keyint}:min-keyint={enc.keyint}:scenecut=0:bframes=0",
                "maxrate": str(enc.bitrate),
                "bufsize": str(enc.bitrate),
            },
            bit_rate=enc.bitrate,
            keyint=enc.keyint,
        )
        video.codec_context.flags |= av.codec.context.Flags.global_header
        container.start_encoding()
    except BaseException:
        container.close()
        raise
    return container, video


class Muxer:
    """One output (a connection or a recording) of an :class:`Encoder`'s packets.

    Its timeline starts at zero with the first keyframe it is given: earlier packets are skipped. FFmpeg connects to a URL at the first write, so a refused connection
    surfaces from :meth:`mux`.
    """

    def __init__(self, target: str, fmt: str, encoder: Encoder) -> None:
        self.container = av.open(target, "w", format=fmt, timeout=IO_TIMEOUT_S)
        try:
            self._video = self.container.add_stream_from_template(encoder.video)
            self._audio = self.container.add_stream_from_template(encoder.audio)
        except BaseException:
            self.container.close()
            raise
        self._fps = encoder.settings.fps
        self._waiting = True  # for a keyframe
        self._video_offset = self._audio_offset = 0
        self._last_video = -1  # the last pts written, in this output's timeline
        self._last_audio = -(1 << 62)
        self.bytes = 0
        self.frames = 0

    @property
    def waiting(self) -> bool:
        """Whether this output skips packets until a keyframe (at its start, after a resync)."""
        return self._waiting

    def resync(self) -> None:
        """Packets were lost on the way here: skip to the next keyframe and go on from there
        with no gap in this output's timeline (the viewer sees a jump, never a broken picture)."""
        self._waiting = True

    def mux(self, packets: list[av.Packet]) -> int:
        """Write the packets that belong to this output; returns the video frames written."""
        frames = 0
        for packet in packets:
            video = packet.stream.type == "video"
            if self._waiting:
                if not (video and packet.is_keyframe):
                    continue
                self._waiting = False
                self._video_offset = packet.pts - (self._last_video + 1)
                self._audio_offset = self._video_offset * AUDIO_RATE // self._fps
            offset = self._video_offset if video else self._audio_offset
            if not video and packet.pts - offset < -AAC_FRAME:
                continue  # sound from before this output's first picture
            if not video and packet.pts - offset <= self._last_audio:
                continue  # after a resync: sound already sent
            made = packet.pts, packet.dts, packet.duration, packet.time_base, packet.stream
            packet.pts, packet.dts = made[0] - offset, made[1] - offset
            packet.stream = self._video if video else self._audio
            try:
                self.container.mux(packet)  # rescales the packet to the muxer's time base
            finally:  # the next output gets the packet as the encoder made it
                packet.pts, packet.dts, packet.duration, packet.time_base, packet.stream = made
            if video:
                self._last_video = made[0] - offset
            else:
                self._last_audio = made[0] - offset
            self.bytes += packet.size
            frames += video
        self.frames += frames
        return frames

    def close(self) -> None:
        """Write the trailer and close."""
        self.container.close()

    def abort(self) -> None:
        """Close without caring whether the connection still listens."""
        with contextlib.suppress(av.FFmpegError, OSError):
            self.container.close()


def _audio_frame(samples: np.ndarray, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32), format="fltp", layout="stereo")
    frame.sample_rate = AUDIO_RATE
    frame.pts = pts
    frame.time_base = Fraction(1, AUDIO_RATE)
    return frame
