"""``blurcli photo IN OUT``: photos and folders of photos."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from ..errors import PartialFailure
from ..pipeline.batch import check_jobs
from ..pipeline.photo import PhotoSettings, redact_photos
from ..preview import preview_photos
from ..settings import DetectSettings, IdentitySettings, RedactSettings, Style
from . import app, options
from .common import console, load_plan, progress_bar, reporting
from .reports import check_report_path, print_failures, print_skipped, write_json_report


@app.command()
def photo(
    src: Path = typer.Argument(..., metavar="IN", help="An image, or a folder of images (searched recursively)."),
    dst: Path = typer.Argument(..., metavar="OUT", help="Output image, or output folder for a folder."),
    style: Style = options.STYLE,
    gallery: options.OptionalPath = options.GALLERY,
    tolerance: float = options.TOLERANCE,
    threshold: float = options.THRESHOLD,
    report: options.OptionalPath = options.REPORT,
    keep_location: bool = typer.Option(False, "--keep-location", help="Keep GPS tags (removed by default)."),
    max_pixels: int = options.MAX_PIXELS,
    sideways: bool = typer.Option(
        True, "--sideways/--upright-only",
        help="Also look for faces lying sideways (a photo turned without EXIF orientation); --upright-only is faster.",
    ),
    preview: bool = typer.Option(
        False, "--preview",
        help="Write OUT as a side-by-side preview (original with boxes: green kept, red hidden | result) instead.",
    ),
    plan: options.OptionalPath = options.PLAN,
    jobs: Optional[int] = options.JOBS,
    ray: Optional[str] = options.RAY,
    force: bool = options.FORCE,
) -> None:
    """Hide every face in photos except enrolled people. EXIF orientation is honoured; GPS is removed."""
    with reporting():
        check_report_path(report, src, dst, *([plan] if plan else []))
        loaded_plan = load_plan(plan, preview)
        settings = PhotoSettings(
            detect=replace(DetectSettings(), threshold=threshold, sideways=sideways),
            redact=replace(RedactSettings(), style=style),
            identity=replace(IdentitySettings(), gallery=gallery, tolerance=tolerance),
            keep_location=keep_location,
            max_pixels=max_pixels,
        )
        reports = []
        with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as progress:
            task = progress.add_task("photos", total=None)

            def on_file(file_report):
                reports.append(file_report)
                progress.update(task, advance=1, description=escape(Path(file_report.input).name))

            try:
                if preview:
                    reports[:] = preview_photos(src, dst, settings, on_start=lambda n: progress.update(task, total=n), on_file=on_file)
                else:
                    reports[:] = redact_photos(
                        src, dst, settings, on_start=lambda n: progress.update(task, total=n), on_file=on_file,
                        jobs=check_jobs(jobs, ray), ray_address=ray, force=force,
                        plan=loaded_plan,
                    )
            except PartialFailure as exc:
                reports[:] = exc.reports  # in input order, as on success
                print_skipped(reports)
                print_failures([(r.input, r.error) for r in reports if r.error], len(reports), root=src if src.is_dir() else None)
                raise
            finally:
                if report is not None and reports:
                    write_json_report(report, [r.to_dict() for r in reports])
        print_skipped(reports)
        hidden = sum(f.action == "hidden" for r in reports for f in r.faces)
        kept = sum(f.action == "kept" for r in reports for f in r.faces)
        console.print(f"{len(reports)} image(s): {hidden} face(s) hidden, {kept} kept")
