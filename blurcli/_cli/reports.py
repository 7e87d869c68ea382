"""Shared CLI output: JSON reports, written atomically, and the folder-mode summary table."""
from __future__ import annotations

import json
import os
from pathlib import Path

from rich.table import Table
from rich.text import Text

from ..errors import OutputError, UsageError
from ..media.atomic import atomic_output
from ..secrets import mask_secrets
from .common import console


def check_report_path(path: Path | None, *inputs_and_outputs: Path) -> None:
    """Refuse a ``--report`` path that would replace an input, an output or any file that is not a report.

    Call it before any work; :func:`write_json_report` checks again before writing.

    Raises:
        UsageError: the path is one of ``inputs_and_outputs``, or an existing file that is not JSON.
    """
    if path is None:
        return
    path = Path(path)
    for other in inputs_and_outputs:
        if path.resolve() == Path(other).resolve() or _same_file(path, Path(other)):
            raise UsageError(f"--report {path} is also the input or output; give the report its own .json file")
    _refuse_non_report(path)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _refuse_non_report(path: Path) -> None:
    """An existing file is replaced only when it is (empty or) JSON: a photo or video never is."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256).lstrip()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return
    except OSError:
        return  # unreadable: writing will say what is wrong
    if head and not head.startswith((b"{", b"[")):
        raise UsageError(
            f"--report {path} is an existing file that is not a JSON report; refusing to overwrite it "
            "(give the report its own .json file)"
        )


def write_json_report(path: Path, payload) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically, secrets masked.

    Raises:
        UsageError: ``path`` holds a file that is not a JSON report (an input, say): never replaced.
        OutputError: the report cannot be written.
    """
    _refuse_non_report(Path(path))
    text = mask_secrets(json.dumps(payload, indent=2, default=str))
    try:
        with atomic_output(Path(path)) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write report {path}: {exc.strerror or exc}") from None


def print_failures(failures: list[tuple[str, str]], total: int, *, root: Path | str | None = None) -> None:
    """Summary table of the files that failed in folder mode.

    Args:
        failures: (input path, error message) per failed file.
        total: how many files were tried.
        root: the input folder; names are shown relative to it (default: to the failed files'
            common folder). The message's own copy of the path is dropped, so that each row fits.
    """
    if not failures:
        return
    if root is None:
        parents = [os.path.dirname(os.path.abspath(name)) for name, _ in failures]
        root = os.path.commonpath(parents)
    table = Table(title=f"{len(failures)} of {total} files failed", title_justify="left")
    table.add_column("file", overflow="fold", no_wrap=False)
    table.add_column("problem", overflow="fold", ratio=1)
    for name, problem in failures:
        # Text cells: a file named "[red]x.jpg" is a name, not Rich markup
        table.add_row(Text(mask_secrets(_relative(name, root))), Text(mask_secrets(_without_path(problem or "", name))))
    console.print(table)


def _relative(name: str, root: Path | str) -> str:
    try:
        rel = os.path.relpath(os.path.abspath(name), os.path.abspath(root))
    except ValueError:  # another drive (Windows)
        return name
    return name if rel.startswith("..") else rel


def _without_path(problem: str, name: str) -> str:
    """``"/a/b/x.jpg is empty"`` -> ``"is empty"``: the table's first column already names the file."""
    for prefix in (f"{name}: ", f"{name} "):
        if problem.startswith(prefix):
            return problem[len(prefix):]
    return problem


def print_skipped(reports: list) -> None:
    """One line for the files an earlier run had already done (resume), so that a user knows why
    they were quick and how to redo them."""
    skipped = sum(bool(getattr(r, "skipped", False)) for r in reports)
    if skipped:
        console.print(
            f"{skipped} of {len(reports)} file(s) were already done with the same input and settings "
            "and were skipped (--force redoes them)",
            markup=False,
        )
