"""Live streams: capture, hide faces with a short look-ahead, and send H.264 + AAC at a constant rate.

Example:
    >>> from blurcli.live import LiveStream, SourceSpec, StreamSettings
    >>> settings = StreamSettings(SourceSpec.camera(0), rtmp_url="rtmp://a.rtmp.youtube.com/live2/KEY")  # doctest: +SKIP
    >>> LiveStream(settings).run()                                                                     # doctest: +SKIP
"""
from __future__ import annotations

from .runner import LiveStream, Privacy, build_privacy, run_stream
from .settings import RTMP_URL_ENV, SourceSpec, StreamSettings, default_bitrate
from .stats import StreamStats

__all__ = [
    "RTMP_URL_ENV",
    "LiveStream",
    "Privacy",
    "SourceSpec",
    "StreamSettings",
    "StreamStats",
    "build_privacy",
    "default_bitrate",
    "run_stream",
]
