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
    python benchmarks/speed.py [--data ../shared/data] [--seconds 6] [--no-deface]

A 720p30 clip and a 1080p clip are made from shared/data/video/facenet_video.mp4 (resampled in time to
30 fps for 720p). Ratios are only meaningful between columns of the same run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import venv
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from blurcli.detect import load_detector  # noqa: E402
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


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [cv2.cvtColor(f.to_ndarray(format="bgr24"), cv2.COLOR_BGR2GRAY) for f in container.decode(video=0)]


def protection(src: Path, outputs: dict[str, Path], scorer) -> dict[str, tuple[int, int]]:
    """Share of reference faces (CenterFace, full resolution, every frame) hidden in each output."""
    detector = load_detector(DetectSettings(threshold=0.5, max_side=4096, upscale_small=False))
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
    args = parser.parse_args(argv)
    sys.path.insert(0, str((args.data / ".." / "tools").resolve()))
    import redaction

    work = Path(tempfile.mkdtemp(prefix="blurcli-speed-"))
    clips = args.clips or sorted((args.data / "video").glob("*.mp4"))
    if not args.clips:
        facenet = args.data / "video" / "facenet_video.mp4"
        clips.append(resample_clip(facenet, work / "facenet_720p30.mp4", (1280, 720), 30, args.seconds))
    settings = VideoSettings(identity=IdentitySettings(gallery=work / "empty-gallery.json"))
    load_detector(settings.detect)  # model load and self-check are not part of any clip's time
    rows = []
    for clip in clips:
        frames = frame_count(clip)
        with av.open(str(clip)) as c:
            size = f"{c.streams.video[0].width}x{c.streams.video[0].height}"
        outputs = {}
        start = time.perf_counter()
        redact_video(clip, work / f"{clip.stem}.blurcli.mp4", settings)
        t_blurcli = time.perf_counter() - start
        outputs["blurcli"] = work / f"{clip.stem}.blurcli.mp4"
        start = time.perf_counter()
        transcode(clip, work / f"{clip.stem}.transcode.mp4", settings.crf, settings.preset)
        t_transcode = time.perf_counter() - start
        t_deface = None
        if not args.no_deface:
            outputs["deface"] = work / f"{clip.stem}.deface.mp4"
            t_deface = run_deface(clip, outputs["deface"])
        scores = protection(clip, outputs, redaction)
        rows.append((clip.name, size, frames, t_blurcli, t_transcode, t_deface, scores))
        print(markdown_row(rows[-1]), flush=True)
    print()
    print("| clip | size | frames | blurcli fps | transcode fps | deface fps | blurcli / transcode | blurcli / deface | hidden blurcli | hidden deface |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(markdown_row(row))
    print(f"\noutputs in {work}")
    return 0


def _share(score):
    hidden, total = score
    return f"{100 * hidden / total:.1f}% of {total}" if total else "no faces"


def markdown_row(row) -> str:
    name, size, frames, tb, tt, td, scores = row
    fps_b, fps_t = frames / tb, frames / tt
    fps_d = frames / td if td else None
    d = f"{fps_d:.1f}" if fps_d else "–"
    rd = f"{fps_b / fps_d:.1f}x" if fps_d else "–"
    sd = _share(scores["deface"]) if "deface" in scores else "–"
    return f"| {name} | {size} | {frames} | {fps_b:.1f} | {fps_t:.1f} | {d} | {fps_b / fps_t:.2f} | {rd} | {_share(scores['blurcli'])} | {sd} |"


if __name__ == "__main__":
    raise SystemExit(main())
