"""Live-stream benchmark: a 720p30 clip streamed for 60 s to a local nginx-rtmp, measured as received.

What it does:

1. Builds a 1280x720, 30 fps clip in a temp folder from ``short_hamilton_clip.mp4`` (looped,
   scaled, letterboxed) with each frame's number stamped as a 16-bit code in a black band on top,
   where no face can cover it, and a 440 Hz tone as audio.
2. Starts nginx with the RTMP module (``tests/rtmp_server.py``) and a receiver process that
   plays the stream back from the server with minimal buffering, decodes each frame and reads
   its code.
3. Runs ``LiveStream`` in this process with the clip as a source paced in real time, like a camera
   (everyone hidden: no gallery).

It prints the output frame rate (stream timestamps and arrival times), the spread of frame
intervals, repeated and dropped frames, keyframe intervals, the added latency (arrival at the
viewer minus the moment the frame was "captured", i.e. due in the paced source; p50/p95), how long
each frame had to wait for a detection at or after it (the look-ahead actually needed), and the
CPU the streaming process used.

Usage:
    python benchmarks/stream.py [--seconds 60] [--delay 0.3] [--detect-size 640] [--json out.json]

Timings depend on what else runs on the machine; say how loaded it was when quoting them.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: The code band: BITS blocks of BLOCK px on row CODE_Y, after a white and before a black guard.
WIDTH, HEIGHT, BAND = 1280, 720, 96
BITS, BLOCK, CODE_X, CODE_Y = 16, 16, 32, 12  # high in the band: a face's head ellipse may reach into it


def stamp(image: np.ndarray, number: int) -> None:
    """Write ``number`` into the band: guard white, 16 bits (MSB first), guard black."""
    cells = [1] + [(number >> (BITS - 1 - b)) & 1 for b in range(BITS)] + [0]
    for i, bit in enumerate(cells):
        x = CODE_X + i * BLOCK
        image[CODE_Y : CODE_Y + BLOCK, x : x + BLOCK] = 235 if bit else 16


def read_stamp(luma: np.ndarray) -> int | None:
    """The number in a frame's luma plane, or None when the band is unreadable (hidden whole)."""
    values = []
    for i in range(BITS + 2):
        x = CODE_X + i * BLOCK
        values.append(float(luma[CODE_Y + 4 : CODE_Y + BLOCK - 4, x + 4 : x + BLOCK - 4].mean()))
    bits = [v > 125 for v in values]
    if not bits[0] or bits[-1] or min(abs(v - 125) for v in values) < 50:
        return None
    return int("".join("1" if b else "0" for b in bits[1:-1]), 2)


def make_clip(src: Path, dst: Path, seconds: float, fps: int = 30, size: tuple[int, int] = (WIDTH, HEIGHT)) -> int:
    """Loop ``src`` into a ``seconds`` long clip of ``size`` at exactly ``fps``, stamped; returns frames."""
    with av.open(str(src)) as container:
        pictures = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    return write_clip(pictures, dst, seconds, fps, size)


def write_clip(pictures: list[np.ndarray], dst: Path, seconds: float, fps: int, size: tuple[int, int]) -> int:
    """``pictures`` in turn, letterboxed under the code band, with a 440 Hz tone; returns frames."""
    WIDTH, HEIGHT = size  # noqa: N806 - the module's default size, here the clip's
    inner_h = HEIGHT - BAND
    inner_w = int(round(inner_h * pictures[0].shape[1] / pictures[0].shape[0])) // 2 * 2
    x0 = (WIDTH - inner_w) // 2
    total = int(seconds * fps)
    rate = 48000
    with av.open(str(dst), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "18", "g": str(2 * fps)})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.time_base = Fraction(1, fps)
        audio = out.add_stream("aac", rate=rate, layout="stereo")
        audio.time_base = Fraction(1, rate)
        sent = 0
        for i in range(total):
            image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            image[BAND:, x0 : x0 + inner_w] = cv2.resize(pictures[i % len(pictures)], (inner_w, inner_h), interpolation=cv2.INTER_CUBIC)
            stamp(image, i)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            out.mux(video.encode(frame))
            while sent < (i + 1) * rate // fps:
                t = (sent + np.arange(1024)) / rate
                tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                chunk.sample_rate, chunk.pts = rate, sent
                out.mux(audio.encode(chunk))
                sent += 1024
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return total


def parse_size(value: str | None) -> tuple[int, int] | None:
    return None if value is None else tuple(int(v) for v in value.lower().split("x"))


def crowd_pictures(data: Path, tmp: Path, seconds_each: float = 4.0) -> list[np.ndarray]:
    """Crowd pans (the README's recipe, ``benchmarks/crowdpan.py``) over the WIDER photos, 4 s each."""
    from crowdpan import make_crowd_pan, wider_photos

    pan = make_crowd_pan(data, tmp / "pan.mp4", photos=wider_photos(data)[:6], seconds_per_photo=seconds_each)
    with av.open(str(pan.path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def receive(url: str, out_path: str, clip_size: str = f"{WIDTH}x{HEIGHT}") -> None:
    """Receiver process: play ``url`` with minimal buffering and log every packet as a JSON line."""
    options = {"rtmp_live": "live", "probesize": "65536", "analyzeduration": "500000"}
    container = av.open(url, options=options, timeout=(120.0, 10.0))
    size = parse_size(clip_size)
    video = container.streams.video[0]
    video.thread_type = "SLICE"  # frame threads would hold frames back
    with open(out_path, "w") as log:
        try:
            for packet in container.demux():
                if packet.dts is None:
                    continue
                pts = float(packet.pts * packet.time_base)
                if packet.stream.type == "audio":
                    log.write(json.dumps({"a": pts, "rate": packet.stream.rate}) + "\n")
                    continue
                for frame in packet.decode():
                    luma = frame.to_ndarray()[: frame.height]
                    if luma.shape[::-1] != size:  # scaled on the way (--size): the stamps sit where the clip had them
                        luma = cv2.resize(luma, size, interpolation=cv2.INTER_AREA)
                    log.write(json.dumps({"t": time.monotonic(), "pts": pts, "key": bool(packet.is_keyframe), "n": read_stamp(luma)}) + "\n")
                log.flush()
        except (av.EOFError, OSError, av.FFmpegError):
            pass


def percentile(values, q):
    return float(np.percentile(np.asarray(values, float), q)) if len(values) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--delay", type=float, default=None, help="look-ahead (default: the stream's default)")
    parser.add_argument("--detect-size", type=int, default=None, help="force the detector size (default: blurcli's choice)")
    parser.add_argument("--source-size", default="1280x720", help="size of the clip streamed (e.g. 1920x1080)")
    parser.add_argument("--crowd", action="store_true", help="stream a crowd pan over the WIDER photos instead of the Hamilton clip")
    parser.add_argument("--size", default=None, help="force the output size, as --size does (default: blurcli's choice)")
    parser.add_argument("--preset", default=None, help="force the x264 preset, as --preset does (default: blurcli's choice)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--receive", nargs=3, metavar=("URL", "OUT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        receive(*args.receive)
        return

    from rtmp_server import RtmpServer

    from blurcli.live import LiveStream, Privacy, SourceSpec, StreamSettings
    from blurcli.live.runner import LIVE_THRESHOLD_FACTOR
    from blurcli.live.settings import DEFAULT_DELAY_S
    from blurcli.detect import load_detector
    from blurcli.settings import DetectSettings
    from blurcli.track import CutDetector, FaceTracker

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("blurcli.live").setLevel(logging.INFO)  # the start-up choice and any step-down
    delay = DEFAULT_DELAY_S if args.delay is None else args.delay
    with tempfile.TemporaryDirectory(prefix="blurcli-bench-") as tmp:
        tmp = Path(tmp)
        source_size = parse_size(args.source_size)
        clip = tmp / "clip.mp4"
        what = "crowd pan" if args.crowd else "Hamilton"
        print(f"building a {source_size[0]}x{source_size[1]} 30 fps {what} clip of {args.seconds + 5:.0f} s ...", flush=True)
        if args.crowd:
            write_clip(crowd_pictures(args.data, tmp), clip, args.seconds + 5, 30, source_size)
        else:
            make_clip(args.data / "video" / "short_hamilton_clip.mp4", clip, args.seconds + 5, size=source_size)
        server = RtmpServer(workdir=tmp / "nginx").start()
        url = server.url("live", "benchmark-key")
        received = tmp / "received.jsonl"
        # The viewer is not on the streaming machine in real life: let it yield the CPU first.
        receiver = subprocess.Popen([sys.executable, __file__, "--receive", url, str(received), args.source_size], preexec_fn=lambda: os.nice(5))
        time.sleep(0.5)
        forced = {"size": parse_size(args.size), "preset": args.preset, "detect_size": args.detect_size}
        settings = StreamSettings(
            SourceSpec(str(clip)), rtmp_url=url, duration=args.seconds, delay=delay,
            **{k: v for k, v in forced.items() if v is not None},
        )
        detector = load_detector(DetectSettings(threshold=DetectSettings().threshold * LIVE_THRESHOLD_FACTOR))
        privacy = Privacy(detector, FaceTracker(fps=30), cuts=CutDetector())
        captured: dict[int, float] = {}
        detections: list[tuple[int, float]] = []
        ticks: list[tuple[int, int | None, bool]] = []

        def on_tick(tick, release, repeated):
            if release is not None:
                captured[release.frame.index] = release.frame.time
            ticks.append((tick, None if release is None else release.frame.index, release is not None and release.whole))

        def on_detection(detection):
            detections.append((detection.frame.index, time.monotonic()))
            captured.setdefault(detection.frame.index, detection.frame.time)

        usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        print(f"streaming {args.seconds:.0f} s to {settings.target} (look-ahead {delay:.2f} s) ...", flush=True)
        stream = LiveStream(settings, privacy=privacy, trace=on_tick, on_detection=on_detection)
        stats = stream.run()
        usage1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        receiver.wait(60)
        server.close()
        rows = [json.loads(line) for line in received.read_text().splitlines()]

    video = [r for r in rows if "t" in r]
    audio = [r for r in rows if "a" in r]
    pts = np.array([r["pts"] for r in video])
    arrivals = np.array([r["t"] for r in video])
    intervals_ms = np.diff(pts) * 1000
    arrival_ms = np.diff(arrivals) * 1000
    keys = [i for i, r in enumerate(video) if r["key"]]
    # Received frame j is tick `offset + j` (one connection, every tick sent); the stamps find the offset.
    sent = [index for _, index, _ in ticks]  # source frame sent at each tick (None: repeated)
    shown, last = [], None
    for index in sent:
        last = index if index is not None else last
        shown.append(last)
    position = {index: i for i, index in enumerate(shown) if index is not None}
    offsets = [position[r["n"]] - j for j, r in enumerate(video) if r["n"] in position]
    offset = int(np.bincount(np.asarray(offsets) - min(offsets)).argmax() + min(offsets))
    window = range(max(0, offset), min(len(sent), offset + len(video)))
    repeated = sum(1 for i in window if sent[i] is None)
    released = [sent[i] for i in window if sent[i] is not None]
    skipped = sum(b - a - 1 for a, b in zip(released, released[1:]))
    agree = sum(1 for j, r in enumerate(video) if r["n"] is not None and 0 <= offset + j < len(shown) and r["n"] == shown[offset + j])
    readable = sum(r["n"] is not None for r in video)
    # Latency of each source frame's first appearance, after the receiver's start-up (first 3 s).
    firsts = []
    for j, r in enumerate(video):
        i = offset + j
        if 0 <= i < len(sent) and sent[i] is not None and r["pts"] - pts[0] >= 3.0:
            firsts.append((r["t"] - captured[sent[i]]) * 1000)
    # Look-ahead needed: for each captured frame, time from its capture until a detection of it or
    # a later frame had been folded in.
    need = []
    det_index = np.array([i for i, _ in detections])
    det_time = np.array([t for _, t in detections])
    for index, t in captured.items():
        pos = np.searchsorted(det_index, index)
        if pos < len(det_index):
            need.append((det_time[pos:].min() - t) * 1000)
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    figures = {
        "frames_received": len(video),
        "output_fps_timestamps": (len(pts) - 1) / (pts[-1] - pts[0]),
        "output_fps_arrivals": (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]),
        "interval_ms_timestamps": [float(intervals_ms.min()), float(intervals_ms.max())],
        "interval_ms_arrivals_p5_p50_p95_max": [percentile(arrival_ms, q) for q in (5, 50, 95)] + [float(arrival_ms.max())],
        "longest_arrival_gap_at_s": float(pts[int(arrival_ms.argmax())] - pts[0]),
        "repeated_frames": repeated,
        "repeated_pct": 100.0 * repeated / max(1, len(video)),
        "dropped_source_frames": skipped,
        "hidden_whole_frames": sum(1 for *_, whole in ticks if whole),
        "stamps_read_and_matching": f"{agree}/{readable} of {len(video)}",
        "keyframe_interval_frames": sorted(set(np.diff(keys).tolist())),
        "keyframe_interval_s": sorted({round(float(v), 3) for v in np.diff(pts[keys])}),
        "stream_mbit_s": stats.bytes_sent * 8 / 1e6 / args.seconds,
        "audio_packets": len(audio),
        "audio_rate": audio[0]["rate"] if audio else None,
        "latency_ms_p50": percentile(firsts, 50),
        "latency_ms_p95": percentile(firsts, 95),
        "lookahead_needed_ms_p50_p99_max": [percentile(need, 50), percentile(need, 99), float(max(need)) if need else float("nan")],
        "detection_runs_per_s": len(detections) / (wall1 - wall0),
        "cpu_cores_used": cpu / (wall1 - wall0),
        "stats": {k: v for k, v in vars(stats).items() if isinstance(v, (int, float, str))},
        "delay_s": delay,
        "load_average_1m": os.getloadavg()[0],
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        if isinstance(value, float):
            value = round(value, 3)
        elif isinstance(value, list):
            value = [round(v, 2) if isinstance(v, float) else v for v in value]
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
