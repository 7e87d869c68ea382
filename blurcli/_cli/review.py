"""``blurcli review IN DIR``: every decision on a page to check and edit before publishing."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from ..errors import PartialFailure
from ..pipeline.photo import PhotoSettings
from ..pipeline.video import VideoSettings
from ..settings import DetectSettings, IdentitySettings
from . import app, options
from .common import console, progress_bar, reporting
from .progress import FilesProgress
from .reports import print_failures
from .video import _detect_every


@app.command()
def review(
    src: Path = typer.Argument(..., metavar="IN", help="A photo, a video, or a folder of them (searched recursively)."),
    out_dir: Path = typer.Argument(
        ..., metavar="DIR", help="Folder for report.json, index.html and its thumbnails (created private, 0700).",
        file_okay=False,
    ),
    gallery: options.OptionalPath = options.GALLERY,
    tolerance: float = options.TOLERANCE,
    threshold: float = options.THRESHOLD,
    max_pixels: int = options.MAX_PIXELS,
    sideways: bool = typer.Option(
        True, "--sideways/--upright-only", help="Photos: also look for faces lying sideways (as blurcli photo)."
    ),
    detect_every: str = typer.Option(
        "auto", "--detect-every", metavar="N|auto", help="Videos: run the detector on every Nth frame (as blurcli video)."
    ),
    detect_size: int = typer.Option(
        0, "--detect-size", min=0, max=4096, metavar="PX",
        help="Videos: longest side of the picture the detector sees (0 = auto, as blurcli video).",
    ),
) -> None:
    """Decide every face as blurcli photo/video would, without writing them: a page to check each decision,
    toggle it, add missed regions, and save a plan for --plan."""
    from ..review import review as run_review

    with reporting():
        identity = replace(IdentitySettings(), gallery=gallery, tolerance=tolerance)
        photo_settings = PhotoSettings(
            detect=replace(DetectSettings(), threshold=threshold, sideways=sideways), identity=identity,
            max_pixels=max_pixels,
        )
        video_settings = VideoSettings(
            detect=replace(DetectSettings(), threshold=threshold), identity=identity,
            detect_every=_detect_every(detect_every), detect_max_side=detect_size or None,
        )
        results = []
        with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as progress:
            display = FilesProgress(progress, "files")
            try:
                results = run_review(
                    src, out_dir, photo_settings, video_settings, on_start=lambda files: display.start(len(files)),
                    on_file=display.file, progress=display.frames,
                )
            except PartialFailure as exc:
                print_failures([(r.input, r.error) for r in exc.reports if r.error], len(exc.reports), root=src)
                _written(out_dir, exc.reports)
                raise
        _written(out_dir, [item.report for item in results])


def _written(out_dir: Path, reports: list) -> None:
    faces = sum(len(getattr(r, "tracks", None) or getattr(r, "faces", None) or []) for r in reports if not r.error)
    videos = any(hasattr(r, "tracks") for r in reports)
    page = out_dir / "index.html"
    console.print(f"{faces} face{' track' if videos else ''}(s) to review: open {page} in a browser", markup=False, soft_wrap=True)
    console.print(
        f"It shows the faces unblurred: {out_dir} is private (0700); keep it off shared folders and delete it "
        "when you are done.",
        markup=False, soft_wrap=True,
    )
    command = "video" if videos else "photo"
    console.print(f"Save the plan from the page, then: blurcli {command} IN OUT --plan plan.json", markup=False, soft_wrap=True)
