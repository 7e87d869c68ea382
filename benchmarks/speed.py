"""Speed and protection of ``blurcli video`` beside a plain transcode and deface, in one run.

For every clip, in this one process and one after the other on the same files:

* ``blurcli``: ``blurcli.pipeline.video.redact_video`` with default settings, nobody enrolled;
* ``transcode``: a plain PyAV decode -> libx264 encode with the same crf/preset, audio copied
  (the ffmpeg-style floor; ``benchmarks/transcode_baseline.py``);
* ``deface``: deface 1.5.0 (CenterFace on every frame at full resolution), installed by this script
  into a throwaway virtual environment and run as ``deface IN -o OUT --keep-audio``.

Protection: a reference pass runs CenterFace at full resolution on every input frame; for each
reference box, the DESIGN.md scorer (shared/tools/redaction.py) says whether the output frame hides
it (detail correlation < 0.5). The share of hidden reference faces is printed for blurcli and deface.

Usage:
    python benchmarks/speed.py [--data ../shared/data] [--seconds 6] [--no-deface] [--backends int8 opencv]

Besides the shared clips, four are made here: a 720p30 talking head and its 1080p30 twin (from
shared/data/video/facenet_video.mp4, resampled in time to 30 fps), a 720p crowd pan over four
WIDER photos (benchmarks/crowdpan.py; protection is scored against its ground truth), and a 4K
HEVC portrait phone clip (3840x2160 stored, a 90 degree display matrix, 30 fps, AAC audio: what a
phone records). blurcli runs each clip in a fresh child process (models loaded before the clock starts), so each
row's peak resident memory is that clip's own, models included. Ratios are only meaningful between columns of the same run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from blurcli.detect import load_detector  # noqa: E402
from blurcli.detect.backends import BACKEND_NAMES  # noqa: E402
from blurcli.pipeline.video import VideoSettings, redact_video  # noqa: E402
from blurcli.settings import DetectSettings, IdentitySettings  # noqa: E402
from transcode_baseline import transcode  # noqa: E402

DEFACE_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "blurcli-bench" / "deface-1.5.0"


def deface_command() -> Path:
    """Install deface 1.5.0 (+ onnxruntime, as users get it) into a throwaway venv once; return its CLI."""
    exe = DEFACE_VENV / "bin" / "deface"
    if not exe.exists():
        venv.create(DEFACE_VENV, with_pip=True, clear=True)
        subprocess.run(
            [str(DEFACE_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "deface==1.5.0", "onnxruntime", "onnx"],
            check=True,
        )
    return exe


def run_deface(src: Path, dst: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [str(deface_command()), str(src), "-o", str(dst), "--keep-audio", "--ep", "CPUExecutionProvider"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def resample_clip(src: Path, dst: Path, size: tuple[int, int], fps: int, seconds: float) -> Path:
    """Scale ``src`` to ``size`` and re-time it to a constant ``fps`` (frames repeated as needed), no audio."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream_in = inp.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in inp.decode(stream_in)]
        src_fps = float(stream_in.average_rate or 25)
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for i in range(int(seconds * fps)):
            image = frames[min(int(i / fps * src_fps), len(frames) - 1)]
            frame = av.VideoFrame.from_ndarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def make_phone_clip(
    src: Path, dst: Path, seconds: float = 3.0, fps: int = 30, *, upright_size=(2160, 3840), hlg: bool = False
) -> Path:
    """A 4K HEVC portrait clip as a phone stores it: the upright 2160x3840 picture is written turned
    to 3840x2160 with a 90 degree display matrix, 10 Mbit/s-ish x265, AAC stereo. With ``hlg``:
    10-bit BT.2020 HLG, what an iPhone records by default."""
    from blurcli.media._pixels import coded

    with av.open(str(src)) as inp:
        stream_in = inp.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in inp.decode(stream_in)]
        src_fps = float(stream_in.average_rate or 25)
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx265", rate=fps)
        stream.width, stream.height = upright_size[1], upright_size[0]
        stream.pix_fmt = "yuv420p10le" if hlg else "yuv420p"
        stream.options = {"crf": "24", "preset": "ultrafast", "x265-params": "log-level=error"}
        if hlg:
            context = stream.codec_context
            context.color_primaries, context.color_trc, context.colorspace, context.color_range = 9, 18, 9, 1
        stream.set_display_rotation(90)
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        samples = 0
        for i in range(int(seconds * fps)):
            image = frames[min(int(i / fps * src_fps), len(frames) - 1)]
            h, w = image.shape[:2]
            crop = image[:, (w - h * 9 // 16) // 2 :][:, : h * 9 // 16]  # the portrait middle
            picture = cv2.resize(crop, upright_size, interpolation=cv2.INTER_CUBIC)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(coded(picture, 90)), format="bgr24")
            if hlg:
                frame = frame.reformat(format="yuv420p10le", dst_colorspace=9, dst_color_range=1)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
            while samples < (i + 1) * 48000 // fps:
                t = (samples + np.arange(1024)) / 48000
                chunk = np.tile((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), (2, 1))
                piece = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                piece.sample_rate, piece.pts = 48000, samples
                for packet in audio.encode(piece):
                    out.mux(packet)
                samples += 1024
        for packet in stream.encode():
            out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    return dst


def _blurcli_child(clip: str, dst: str, settings, conn) -> None:
    """Child process: load the models, time ``redact_video`` on one clip, report its peak memory.

    The peak is VmHWM, which starts afresh at exec; ``ru_maxrss`` would carry over the parent's
    footprint from the fork before it.
    """
    load_detector(settings.detect)  # model load and self-check are not part of the clip's time
    start = time.perf_counter()
    redact_video(Path(clip), Path(dst), settings)
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:")), float("nan"))
    conn.send((seconds, peak))
    conn.close()


def run_blurcli(clip: Path, dst: Path, settings) -> tuple[float, float]:
    """(seconds, peak resident MB) of ``blurcli video`` on ``clip``, in a fresh process of its own so
    that the peak is this clip's alone (models included, as a user's run has them)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_blurcli_child, args=(str(clip), str(dst), settings, send))
    child.start()
    send.close()
    result = receive.recv()
    child.join()
    return result


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [cv2.cvtColor(f.to_ndarray(format="bgr24"), cv2.COLOR_BGR2GRAY) for f in container.decode(video=0)]


def protection(src: Path, outputs: dict[str, Path], scorer) -> dict[str, tuple[int, int]]:
    """Share of reference faces (CenterFace, full resolution, every frame) hidden in each output."""
    # The float network, whatever blurcli runs: the reference must not move with the detector it scores.
    detector = load_detector(DetectSettings(threshold=0.5, max_side=4096, upscale_small=False, backend="opencv"))
    reference = []
    with av.open(str(src)) as container:
        for frame in container.decode(video=0):
            bgr = frame.to_ndarray(format="bgr24")
            faces = detector.detect(bgr)
            reference.append([[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in faces.xyxy.tolist()])
    inputs = frames_of(src)
    result = {}
    for name, path in outputs.items():
        produced = frames_of(path)
        hidden = total = 0
        for i, boxes in enumerate(reference):
            if not boxes:
                continue
            total += len(boxes)
            h, w = inputs[i].shape
            if i >= len(produced) or produced[i].shape[0] < h or produced[i].shape[1] < w:
                continue  # a missing or shrunk frame hides nothing we can prove
            output = produced[i][:h, :w]  # deface's encoder pads to a multiple of 16 px
            for _, corr in scorer.score_image(inputs[i], output, boxes):
                hidden += corr is not None and corr < scorer.HIDDEN
        result[name] = (hidden, total)
    return result


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BLURCLI_TEST_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the made 720p30 clip")
    parser.add_argument("--no-deface", action="store_true", help="skip deface (no venv install)")
    parser.add_argument("--clips", nargs="*", type=Path, help="clips to time (default: shared videos + made 720p/1080p)")
    parser.add_argument("--backends", nargs="*", default=["auto"], choices=BACKEND_NAMES,
                        help="detector runtimes to time side by side, one blurcli row each (default: the one blurcli picks)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str((args.data / ".." / "tools").resolve()))
    import redaction

    work = Path(tempfile.mkdtemp(prefix="blurcli-speed-"))
    clips = args.clips or sorted((args.data / "video").glob("*.mp4"))
    pans = {}
    if not args.clips:
        facenet = args.data / "video" / "facenet_video.mp4"
        clips.append(resample_clip(facenet, work / "facenet_720p30.mp4", (1280, 720), 30, args.seconds))
        clips.append(resample_clip(facenet, work / "facenet_1080p30.mp4", (1920, 1080), 30, args.seconds))
        from crowd import pick
        from crowdpan import make_crowd_pan, wider_photos

        pan = make_crowd_pan(args.data, work / "crowd_720p.mp4", photos=pick(wider_photos(args.data), 4))
        pans[pan.path] = pan
        clips.append(pan.path)
        clips.append(make_phone_clip(facenet, work / "phone_4k_portrait_hevc.mp4"))
    settings = VideoSettings(identity=IdentitySettings(gallery=work / "empty-gallery.json"))
    rows = []
    for clip in clips:
        frames = frame_count(clip)
        with av.open(str(clip)) as c:
            size = f"{c.streams.video[0].width}x{c.streams.video[0].height}"
        outputs, runs = {}, {}
        for backend in args.backends:
            name = "blurcli" if backend == "auto" else f"blurcli ({backend})"
            outputs[name] = work / f"{clip.stem}.blurcli-{backend}.mp4"
            runs[name] = run_blurcli(clip, outputs[name], replace(settings, detect=replace(settings.detect, backend=backend)))
        start = time.perf_counter()
        transcode(clip, work / f"{clip.stem}.transcode.mp4", settings.crf, settings.preset)
        t_transcode = time.perf_counter() - start
        t_deface = None
        if not args.no_deface:
            outputs["deface"] = work / f"{clip.stem}.deface.mp4"
            t_deface = run_deface(clip, outputs["deface"])
        if clip in pans:
            scores = {name: _pan_score(pans[clip], path, redaction) for name, path in outputs.items()}
        elif max(int(v) for v in size.split("x")) > 1920:
            scores = {name: None for name in outputs}  # a full-resolution reference pass at 4K takes minutes
        else:
            scores = protection(clip, outputs, redaction)
        for name, (t_blurcli, rss) in runs.items():
            rows.append((clip.name, name, size, frames, t_blurcli, t_transcode, t_deface, scores, rss))
            print(markdown_row(rows[-1]), flush=True)
    print()
    print("| clip | tool | size | frames | blurcli fps | transcode fps | deface fps | blurcli / transcode | blurcli / deface | hidden blurcli | hidden deface | blurcli peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(markdown_row(row))
    print(f"\noutputs in {work}")
    return 0


def _pan_score(pan, output: Path, scorer) -> tuple[int, int]:
    """(hidden, total) faces of 10 px and more of a crowd pan, against its own ground truth."""
    from crowdpan import score_pan

    buckets = score_pan(pan, output, scorer).buckets
    kept = [v for name, v in buckets.items() if not name.startswith("tiny")]
    return sum(h for h, _ in kept), sum(t for _, t in kept)


def _share(score):
    if score is None:
        return "not scored"
    hidden, total = score
    return f"{100 * hidden / total:.1f}% of {total}" if total else "no faces"


def markdown_row(row) -> str:
    name, tool, size, frames, tb, tt, td, scores, rss = row
    fps_b, fps_t = frames / tb, frames / tt
    fps_d = frames / td if td else None
    d = f"{fps_d:.1f}" if fps_d else "–"
    rd = f"{fps_b / fps_d:.1f}x" if fps_d else "–"
    sd = _share(scores["deface"]) if "deface" in scores else "–"
    memory = f"{rss / 1024:.2f} GB" if rss else "–"
    return (
        f"| {name} | {tool} | {size} | {frames} | {fps_b:.1f} | {fps_t:.1f} | {d} | {fps_b / fps_t:.2f} | {rd} "
        f"| {_share(scores[tool])} | {sd} | {memory} |"
    )


if __name__ == "__main__":
    raise SystemExit(main())
