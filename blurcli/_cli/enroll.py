"""``blurcli enroll``, ``faces`` and ``forget``: manage who stays sharp."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..identity.enroll import enroll as enroll_photos
from ..identity.gallery import Gallery, Person
from . import app, options
from ..errors import UsageError
from .common import console, reporting


@app.command()
def enroll(
    photos: Optional[List[Path]] = typer.Argument(
        None, metavar="[PHOTO]...", help="Photos of one person, one face each, or a short video of them alone (a selfie "
        "clip turning the head: up to 8 varied frames are taken). Several make a stronger match."
    ),
    name: Optional[str] = typer.Option(
        None, "--name", "-n", help="Who this is (default: the first photo's file name: me.jpg -> me). "
        "An existing name gets the new photos added."
    ),
    largest: bool = typer.Option(False, "--largest", help="In a photo with several faces, enrol the largest one."),
    device: Optional[int] = typer.Option(
        None, "--device", "-d", min=0,
        help="Enrol from V4L2 camera N (/dev/videoN) as from a video: look at it, turn your head, step back. Needs --name.",
    ),
    seconds: float = typer.Option(10.0, "--seconds", min=1.0, max=60.0, help="How long --device is watched."),
    gallery: options.OptionalPath = options.GALLERY,
    max_pixels: int = options.MAX_PIXELS,
) -> None:
    """Learn a person's face so it stays sharp. Only face encodings are stored, never the photos."""
    with reporting():
        camera = None
        if device is not None and name is None:
            raise UsageError("give --name with --device: who is in front of the camera")
        if device is not None:
            from ..live.settings import SourceSpec

            camera = SourceSpec.camera(device)
            console.print(f"watching {camera.describe()} for {seconds:g} s: look at it, turn your head slowly, step back")
        with console.status("finding and encoding faces..."):
            result = enroll_photos(
                photos or [], name=name, gallery_path=gallery, largest=largest, max_pixels=max_pixels,
                camera=camera, seconds=seconds,
            )
    person = result.person
    what = "enrolled" if result.created else "added to"
    from_videos = sum(p.at_s is not None for p in result.photos)
    taken = f"{len(result.photos)} photo(s)" if not from_videos else (
        f"{len(result.photos)} sample(s) ({from_videos} from video frames)")
    console.print(
        f"{what} {person.name!r}: {taken}, {person.samples} sample(s) in total "
        f"(gallery: {result.gallery})",
        markup=False, soft_wrap=True,
    )


@app.command()
def faces(
    gallery: options.OptionalPath = options.GALLERY,
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON on stdout."),
) -> None:
    """List who is enrolled: name, number of samples, when enrolled and last updated."""
    with reporting():
        loaded = Gallery.open(gallery)
    people = loaded.people()
    if as_json:
        typer.echo(json.dumps({"gallery": str(loaded.path), "people": [_person_dict(p) for p in people]}, indent=2))
        return
    if not people:
        console.print(
            f"nobody is enrolled in {loaded.path}; every face will be hidden. "
            "Enroll someone with: blurcli enroll PHOTO --name NAME",
            markup=False, soft_wrap=True,
        )
        return
    table = Table(title=f"Enrolled people ({loaded.path})", title_justify="left")
    table.add_column("name")
    table.add_column("samples", justify="right")
    table.add_column("enrolled")
    table.add_column("updated")
    for person in people:
        table.add_row(person.name, str(person.samples), _local(person.created), _local(person.updated))
    Console(highlight=False).print(table)  # the table is the command's output: stdout


@app.command()
def forget(
    name: str = typer.Argument(..., metavar="NAME", help="The person to remove (as listed by blurcli faces)."),
    gallery: options.OptionalPath = options.GALLERY,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove a person and every face encoding of theirs from the gallery."""
    with reporting():
        loaded = Gallery.open(gallery)
        person = loaded.forget(name)  # an unknown name fails here, before asking
        if not yes and not _confirm(f"Forget {person.name!r} ({person.samples} sample(s)) from {loaded.path}?"):
            console.print("nothing was removed (answer y, or pass --yes)", markup=False, soft_wrap=True)
            raise typer.Exit(1)
        loaded.save()
    console.print(f"forgot {person.name!r}: removed {person.samples} sample(s) from {loaded.path}", markup=False, soft_wrap=True)


def _confirm(question: str) -> bool:
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:  # end of input, or Ctrl-C at the prompt
        return False


def _person_dict(person: Person) -> dict:
    return {
        "name": person.name,
        "samples": person.samples,
        "created": person.created.isoformat(),
        "updated": person.updated.isoformat(),
    }


def _local(moment) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")
