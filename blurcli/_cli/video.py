"""``blurcli video IN OUT``: videos and folders of videos."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from ..errors import PartialFailure, UsageError
from ..media.codec import ENCODERS
from ..media.video_io import X264_PRESETS
from ..pipeline.batch import check_jobs
from ..pipeline.video import VideoSettings, redact_videos
from ..settings import DetectSettings, IdentitySettings, RedactSettings, Style
from . import app, options
from .common import console, load_plan, progress_bar, reporting
from .progress import FilesProgress
from .reports import check_report_path, print_failures, print_skipped, write_json_report


class _FpsColumn(ProgressColumn):
    """Frames per second of the running pass."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} fps" if speed else "      fps", style="progress.data.speed")


def _detect_every(value: str) -> int | None:
    if value.strip().lower() == "auto":
        return None
    try:
        every = int(value)
    except ValueError:
        raise UsageError(f"--detect-every must be a whole number of frames or 'auto', not {value!r}") from None
    if every < 1:
        raise UsageError("--detect-every must be at least 1")
    return every


@app.command()
def video(
    src: Path = typer.Argument(..., metavar="IN", help="A video, or a folder of videos (searched recursively)."),
    dst: Path = typer.Argument(
        ..., metavar="OUT", help="Output video (.mp4 .m4v .mov .mkv), or output folder for a folder."
    ),
    style: Style = options.STYLE,
    gallery: options.OptionalPath = options.GALLERY,
    tolerance: float = options.TOLERANCE,
    threshold: float = options.THRESHOLD,
    report: options.OptionalPath = options.REPORT,
    crf: int = typer.Option(
        20, "--crf", min=0, max=51, help="Quality (x264/x265 CRF): lower is better and bigger (18-28 is usual)."
    ),
    preset: str = typer.Option(
        "veryfast", "--preset", help=f"Encoder speed preset ({', '.join(X264_PRESETS)}); slower makes smaller files."
    ),
    codec: str = typer.Option(
        "auto", "--codec", metavar="auto|h264|hevc",
        help="Output codec. auto: H.264 for 8-bit input, HEVC Main 10 for 10-bit (HDR) input, which keeps its 10 bits "
        "and plays on phones; h264 on a 10-bit input makes H.264 High 10 (faster, but most phones cannot play it).",
    ),
    detect_every: str = typer.Option(
        "auto", "--detect-every", metavar="N|auto",
        help="Run the face detector on every Nth frame (1 = every frame); auto follows motion and cuts.",
    ),
    detect_size: int = typer.Option(
        0, "--detect-size", min=0, max=4096, metavar="PX",
        help="Longest side of the picture the detector sees (0 = auto: the frame itself up to 1280 px, 960 above, "
        "and 2x-upscaled tiles every 0.5 s where small faces are). A size given here is one pass at that size: "
        "larger finds smaller faces, slower.",
    ),
    preview: float = typer.Option(
        0.0, "--preview", min=0.0, max=60.0, metavar="SECONDS",
        help="Write OUT as a side-by-side clip of the first SECONDS (original with boxes | result) "
        "to check the options; for checking only, it shows the faces.",
    ),
    plan: options.OptionalPath = options.PLAN,
    jobs: Optional[int] = options.JOBS,
    ray: Optional[str] = options.RAY,
    force: bool = options.FORCE,
) -> None:
    """Hide every face in videos except enrolled people; audio, timestamps and rotation are kept."""
    with reporting():
        check_report_path(report, src, dst, *([plan] if plan else []))
        loaded_plan = load_plan(plan, preview)
        if preset not in X264_PRESETS:
            raise UsageError(f"unknown --preset {preset!r}; use one of {', '.join(X264_PRESETS)}")
        if codec not in ("auto", *ENCODERS):
            raise UsageError(f"unknown --codec {codec!r}; use auto, {', '.join(ENCODERS)}")
        settings = VideoSettings(
            detect=replace(DetectSettings(), threshold=threshold),
            redact=replace(RedactSettings(), style=style),
            identity=replace(IdentitySettings(), gallery=gallery, tolerance=tolerance),
            crf=crf,
            preset=preset,
            codec=None if codec == "auto" else codec,
            detect_every=_detect_every(detect_every),
            detect_max_side=detect_size or None,
        )
        reports = []
        with progress_bar(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _FpsColumn(), TimeRemainingColumn()
        ) as progress:
            display = FilesProgress(progress, "videos")

            def on_file(file_report) -> None:
                reports.append(file_report)
                display.file(file_report)

            if preview:
                from ..preview import video_preview

                display.begin(Path(src))
                on_file(video_preview(
                    src, dst, settings, seconds=preview,
                    progress=lambda stage, done, total: display.frames(Path(src), stage, done, total),
                ))
                console.print(f"preview of the first {preview:g} s written to {dst}", markup=False)
                return
            try:
                reports[:] = redact_videos(
                    src, dst, settings, on_start=lambda files: display.start(len(files)), on_begin=display.begin,
                    on_file=on_file, progress=display.frames, jobs=check_jobs(jobs, ray), ray_address=ray, force=force,
                    plan=loaded_plan,
                )
            except PartialFailure as exc:
                reports[:] = exc.reports  # in input order, as on success
                print_skipped(reports)
                print_failures([(r.input, r.error) for r in reports if r.error], len(reports), root=src)
                raise
            finally:
                if report is not None and reports:
                    dicts = [r.to_dict() for r in reports]
                    write_json_report(report, dicts[0] if src.is_file() else dicts)
        print_skipped(reports)
        for r in reports:
            if not r.error and not r.skipped:
                console.print(
                    f"{r.output}: {r.frames} frames, {r.hidden} face track(s) hidden, {r.kept} kept", markup=False
                )
