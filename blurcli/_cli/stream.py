"""``blurcli stream``: a camera, file or URL to an RTMP server (or a recording), faces hidden live."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer
from rich.live import Live
from rich.text import Text

from ..errors import UsageError
from ..media.codec import X264_PRESETS
from ..live import RTMP_URL_ENV, LiveStream, SourceSpec, StreamSettings, StreamStats
from ..live.reconnect import DEFAULT_SOURCE_TIMEOUT_S, load_slate
from ..live.settings import DEFAULT_DELAY_S, ENROLLED_DELAY_S, MAX_DELAY_S
from ..settings import DetectSettings, IdentitySettings, RedactSettings, Style
from . import app, options
from .common import console, reporting


class _StatusLine:
    """Rich renderable: the stream's one-line status, recomputed at every refresh."""

    def __init__(self, stats: StreamStats) -> None:
        self.stats = stats

    def __rich__(self) -> Text:
        return Text(self.stats.line(), no_wrap=True, overflow="ellipsis")


def _parse_size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 1280x720, got {value!r}") from None
    if w % 2 or h % 2:
        raise UsageError(f"--size must be even on both sides (H.264 4:2:0), got {value}")
    return w, h


def _parse_options(values: list[str]) -> dict[str, str]:
    parsed = {}
    for item in values:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--input-option must look like KEY=VALUE, got {item!r}")
        parsed[key] = val
    return parsed


@app.command()
def stream(
    source: Optional[str] = typer.Argument(
        None, metavar="[SOURCE]",
        help="A video file (paced in real time), a URL FFmpeg opens (rtsp://, udp://, rtmp://) or, with "
        "--format lavfi, a filter graph. Omit it to use --device.",
    ),
    device: Optional[int] = typer.Option(None, "--device", "-d", min=0, help="V4L2 camera index: 0 is /dev/video0."),
    input_format: Optional[str] = typer.Option(None, "--format", "-f", help="Input format of SOURCE (v4l2, lavfi, ...)."),
    input_option: List[str] = typer.Option(
        [], "--input-option", "-o", metavar="KEY=VALUE",
        help="FFmpeg input option, repeatable (video_size=1280x720, framerate=30, rtsp_transport=tcp).",
    ),
    loop: bool = typer.Option(False, "--loop", help="Play a file SOURCE again from the start when it ends."),
    rtmp: Optional[str] = typer.Option(
        None, "--rtmp", envvar=RTMP_URL_ENV, show_envvar=True, show_default=False,
        help="Ingest URL rtmp[s]://host/app/STREAM_KEY. Prefer the environment variable: it keeps the key "
        "out of your shell history. The key is masked in every message.",
    ),
    output: Optional[Path] = typer.Option(None, "--output", help="Record to this .flv or .mp4 instead of streaming.", dir_okay=False),
    record: Optional[Path] = typer.Option(
        None, "--record", dir_okay=False,
        help="With --rtmp: also keep what is sent in this .flv or .mp4 (the same encode; kept whatever ends the run).",
    ),
    fps: int = typer.Option(30, "--fps", min=1, max=120, help="Constant output frame rate."),
    size: Optional[str] = typer.Option(
        None, "--size", metavar="WxH",
        help="Output size, e.g. 1280x720 (default: the largest this machine sustains, up to the source's; measured at start).",
    ),
    preset: Optional[str] = typer.Option(
        None, "--preset",
        help=f"x264 preset ({', '.join(X264_PRESETS)}); default: chosen with the size, and stepped down to superfast "
        "if the machine falls behind.",
    ),
    bitrate: Optional[int] = typer.Option(
        None, "--bitrate", min=200, metavar="KBPS",
        help="Video bitrate cap in kbit/s (default by resolution, as YouTube recommends: 4500 for 720p30).",
    ),
    delay: Optional[float] = typer.Option(
        None, "--delay", min=0.0, max=MAX_DELAY_S,
        help=f"Look-ahead in seconds: each frame waits this long for a detection of itself or a later frame, "
        f"and for its faces' identity (default {DEFAULT_DELAY_S} s, or {ENROLLED_DELAY_S} s when someone is enrolled).",
    ),
    fail_open: bool = typer.Option(
        False, "--fail-open",
        help="When detection falls behind, send frames with the last known faces hidden instead of hiding the whole frame.",
    ),
    max_retries: Optional[int] = typer.Option(
        None, "--max-retries", min=0, help="Give up (exit 8) after this many failed connections in a row (default: never)."
    ),
    audio_device: Optional[str] = typer.Option(None, "--audio-device", help="Audio input, e.g. 'default' or 'hw:1' (ALSA)."),
    audio_format: str = typer.Option("alsa", "--audio-format", help="Input format of --audio-device (alsa, pulse, lavfi...)."),
    duration: Optional[float] = typer.Option(None, "--duration", min=0.1, help="Stop after this many seconds."),
    source_timeout: float = typer.Option(
        DEFAULT_SOURCE_TIMEOUT_S, "--source-timeout", min=0.0, metavar="SECONDS",
        help="When a live source drops, keep the stream going with the slate and silence while it is opened again "
        "(a listening source listens again); end cleanly if it stays away this long (0: wait for ever).",
    ),
    slate: Optional[Path] = typer.Option(
        None, "--slate", metavar="IMAGE", dir_okay=False,
        help="Picture to send while the source is away (default: the last picture, hidden whole).",
    ),
    detect_size: int = typer.Option(
        640, "--detect-size", min=160, max=4096, help="Longest side the detector sees: smaller is faster, larger finds smaller faces."
    ),
    small_faces: bool = typer.Option(False, "--small-faces", help="Also search upscaled tiles for faces under 20 px (slow)."),
    style: Style = options.STYLE,
    gallery: options.OptionalPath = options.GALLERY,
    tolerance: float = options.TOLERANCE,
    threshold: float = options.THRESHOLD,
    status: bool = typer.Option(True, "--status/--no-status", help="Show the live status line."),
) -> None:
    """Stream a camera, file or URL live with every face hidden except enrolled people.

    Output is H.264 + AAC at a constant frame rate with a keyframe every 2 s, sent to an RTMP server (a copy kept with --record) or recorded with --output. Lost connections are retried with backoff, a live source that drops is opened again while a slate goes out; Ctrl-C stops cleanly.
    """
    with reporting():
        if device is not None and source is not None:
            raise UsageError("give SOURCE or --device, not both")
        opts = _parse_options(input_option)
        if device is not None:
            spec = SourceSpec.camera(device, opts)
        elif source is not None:
            spec = SourceSpec(source, input_format, opts, loop=loop)
        else:
            raise UsageError("give a SOURCE or --device N")
        if preset is not None and preset not in X264_PRESETS:
            raise UsageError(f"unknown --preset {preset!r}; use one of {', '.join(X264_PRESETS)}")
        audio = SourceSpec(audio_device, audio_format) if audio_device else None
        settings = StreamSettings(
            spec,
            audio=audio,
            rtmp_url=rtmp or None,
            output=output,
            record=record,
            fps=fps,
            size=_parse_size(size),
            preset=preset,
            bitrate=None if bitrate is None else bitrate * 1000,
            delay=delay,
            fail_open=fail_open,
            max_retries=max_retries,
            duration=duration,
            source_timeout=source_timeout,
            slate=slate,
            detect_size=detect_size,
            small_faces=small_faces,
            detect=replace(DetectSettings(), threshold=threshold),
            redact=replace(RedactSettings(), style=style),
            identity=replace(IdentitySettings(), gallery=gallery, tolerance=tolerance),
        )
        if slate is not None:
            load_slate(slate)  # a picture that cannot be read fails now, not when the source drops
        live = LiveStream(settings)
        interrupted = False
        display = Live(_StatusLine(live.stats), console=console, refresh_per_second=2, transient=True) if status else None
        try:
            if display is not None:
                with display:
                    live.run()
            else:
                live.run()
        except KeyboardInterrupt:
            interrupted = True
        stats = live.stats
        how = "stopped (Ctrl-C)" if interrupted else "finished"
        where = f"recorded to {settings.output}" if settings.output else f"sent to {settings.target}"
        if settings.record:
            where += f" ({stats.recorded} recorded to {settings.record})"
        if stats.source == "gave up":
            how = f"finished (the source stayed away for {source_timeout:g} s)"
        away = f", {stats.slate} slate frames over {stats.source_drops} source drop(s)" if stats.source_drops else ""
        if interrupted and not stats.ticks:
            console.print("stopped (Ctrl-C) before the first frame: nothing was sent or recorded")
            return
        console.print(
            f"{how}: {stats.sent} frames {where}; {stats.repeated} repeated, {stats.dropped} dropped, "
            f"{stats.whole_hidden} hidden whole, {stats.reconnects} reconnection(s){away}"
        )
