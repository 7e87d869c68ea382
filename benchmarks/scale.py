"""Throughput of a whole folder against workers: ``--jobs 1``, ``--jobs 2`` and a local Ray cluster.

Runs ``blurcli video``/``photo`` on one folder of the shared clips and one of WIDER photos, each
engine as a user runs it (a fresh process: model loading and start-up counted), one after another
in this process's run so that the ratios compare. Then measures, in this process, the costs the
README's scaling model is built from: model load, decode, detect, encode per frame, hashing and the
size of what a node reads and writes per second of video.

Usage:
    python benchmarks/scale.py [--data ../shared/data] [--copies 2] [--photos 24] [--no-ray]
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def blurcli(*args, cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "blurcli", *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"blurcli {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def folders(data: Path, work: Path, copies: int, photos: int) -> tuple[Path, int, Path, int]:
    videos = work / "videos"
    videos.mkdir()
    frames = 0
    for k in range(copies):
        for clip in sorted((data / "video").glob("*.mp4")):
            shutil.copy(clip, videos / f"{clip.stem}-{k}.mp4")
    from blurcli.media.video_io import VideoReader

    for clip in videos.iterdir():
        with VideoReader(clip) as reader:
            frames += sum(1 for _ in reader)
    pictures = work / "photos"
    pictures.mkdir()
    for path in sorted((data / "detect" / "wider_val").rglob("*.jpg"))[:photos]:
        shutil.copy(path, pictures / path.name)
    return videos, frames, pictures, len(list(pictures.iterdir()))


def costs(clip: Path, work: Path) -> dict[str, float]:
    """Seconds of each cost the model needs, measured here on one clip."""
    from blurcli import audit
    from blurcli.media.video_io import VideoReader
    from blurcli.pipeline.video import VideoRedactor, VideoSettings

    result = {}
    started = time.perf_counter()
    redactor = VideoRedactor(VideoSettings())
    result["model_load_s"] = time.perf_counter() - started
    started = time.perf_counter()
    with VideoReader(clip) as reader:
        frames = sum(1 for _ in reader)
    result["decode_ms_per_frame"] = (time.perf_counter() - started) / frames * 1e3
    report = redactor.redact_file(clip, work / "costs.mp4")
    result["analyse_ms_per_frame"] = report.seconds["analyse"] / frames * 1e3
    result["write_ms_per_frame"] = report.seconds["write"] / frames * 1e3
    started = time.perf_counter()
    audit.sha256_file(clip)
    result["sha256_ms_per_mb"] = (time.perf_counter() - started) / (clip.stat().st_size / 1e6) * 1e3
    seconds = frames / 25.0
    with VideoReader(clip) as reader:
        fps = float(reader.info.average_rate or 25)
    seconds = frames / fps
    result["input_mbit_per_s_of_video"] = clip.stat().st_size * 8 / 1e6 / seconds
    result["output_mbit_per_s_of_video"] = (work / "costs.mp4").stat().st_size * 8 / 1e6 / seconds
    result["realtime_factor_per_worker"] = seconds / (report.seconds["analyse"] + report.seconds["write"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--copies", type=int, default=2, help="copies of each shared clip in the folder")
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="blurcli-scale-"))
    videos, frames, photos, pictures = folders(args.data, work, args.copies, args.photos)
    files = len(list(videos.iterdir()))
    print(f"{files} clips ({frames} frames), {pictures} photos; {work}")
    engines = [("--jobs 1", ["--jobs", "1"]), ("--jobs 2", ["--jobs", "2"])]
    ray_bin = Path(sys.executable).with_name("ray")
    address = None
    if not args.no_ray and ray_bin.exists():
        address = f"127.0.0.1:{free_port()}"
        subprocess.run([str(ray_bin), "start", "--head", "--num-cpus", "2", "--node-ip-address", "127.0.0.1",
                        "--port", address.split(":")[1], "--include-dashboard=false", "--disable-usage-stats"],
                       check=True, capture_output=True)
        engines += [("Ray, 1 worker x 2 CPUs", ["--ray", address]),
                    ("Ray, 2 workers x 1 CPU", ["--ray", address, "--jobs", "2"])]
    rows = []
    try:
        for name, extra in engines:
            tag = name.replace(" ", "").replace(",", "_").replace("-", "")
            video_s = blurcli("video", videos, work / f"v-{tag}", *extra, cwd=work)
            photo_s = blurcli("photo", photos, work / f"p-{tag}", *extra, cwd=work)
            rerun_s = blurcli("video", videos, work / f"v-{tag}", *extra, cwd=work)
            rows.append((name, video_s, photo_s, rerun_s))
            print(f"{name:26s} videos {video_s:6.1f} s ({files / video_s:.2f} files/s, {frames / video_s:5.1f} fps)"
                  f"  photos {photo_s:6.1f} s ({pictures / photo_s:.2f}/s)  rerun (all skipped) {rerun_s:5.1f} s")
    finally:
        if address:
            subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True)
    base = rows[0]
    for name, video_s, photo_s, _ in rows[1:]:
        print(f"{name:26s} against --jobs 1: videos {base[1] / video_s:.2f}x, photos {base[2] / photo_s:.2f}x")
    clip = sorted(videos.iterdir())[0]
    measured = costs(clip, work)
    print(json.dumps({k: round(v, 2) for k, v in measured.items()}, indent=1))


if __name__ == "__main__":
    main()
