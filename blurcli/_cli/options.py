"""Options shared by several commands, declared once so names, defaults and ranges agree."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..media.image_io import DEFAULT_MAX_PIXELS
from ..settings import DEFAULT_TOLERANCE, DetectSettings, Style

STYLE = typer.Option(Style.blur, "--style", "-s", help="How hidden faces are drawn.", case_sensitive=False)
GALLERY = typer.Option(
    None, "--gallery", envvar="BLURCLI_GALLERY", help="Gallery file of enrolled people (default: your user data folder).",
    dir_okay=False,
)
TOLERANCE = typer.Option(
    DEFAULT_TOLERANCE, "--tolerance", min=0.2, max=0.6,
    help="Largest face-encoding distance still accepted as an enrolled person. Lower is stricter.",
)
THRESHOLD = typer.Option(
    DetectSettings().threshold, "--threshold", min=0.05, max=0.95,
    help="Detector confidence above which a face is hidden. Lower hides more.",
)
REPORT = typer.Option(None, "--report", help="Write every face found and what was done to this JSON file.", dir_okay=False)
MAX_PIXELS = typer.Option(
    DEFAULT_MAX_PIXELS, "--max-pixels", min=1, help="Refuse images larger than this (decompression bombs)."
)
OptionalPath = Optional[Path]
JOBS = typer.Option(
    None, "--jobs", "-j", min=1, metavar="N",
    help="Files at once (a folder), each in its own process with its own models. Default: one per 2 cores "
    "(one file keeps about 2 cores busy); with --ray, one per 2 CPUs of the cluster.",
)
RAY = typer.Option(
    None, "--ray", metavar="ADDRESS",
    help="Run a folder's files on a Ray cluster whose nodes see the same files (pip install 'blurcli[ray]'); "
    "auto: the cluster RAY_ADDRESS or 'ray start' points at.",
)
FORCE = typer.Option(
    False, "--force",
    help="Redo every file of a folder; by default a file whose output and kept report show the same input and "
    "settings is skipped, so an interrupted run picks up where it stopped.",
)
PLAN = typer.Option(
    None, "--plan", metavar="REPORT.json", dir_okay=False,
    help="Render exactly the actions of this report (from 'blurcli review', its page, or --report, edited or not): "
    "nothing is detected or decided again. A plan made for another file is refused.",
)
