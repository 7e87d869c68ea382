"""Shared CLI output: JSON reports, written atomically, and the folder-mode summary table."""
from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from ..errors import OutputError
from ..media.atomic import atomic_output
from ..secrets import mask_secrets
from .common import console


def write_json_report(path: Path, payload) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically, secrets masked."""
    text = mask_secrets(json.dumps(payload, indent=2, default=str))
    try:
        with atomic_output(Path(path)) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write report {path}: {exc.strerror or exc}") from None


def print_failures(failures: list[tuple[str, str]], total: int) -> None:
    """Summary table of the files that failed in folder mode."""
    if not failures:
        return
    table = Table(title=f"{len(failures)} of {total} files failed", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("problem", overflow="fold")
    for name, problem in failures:
        table.add_row(name, problem)
    console.print(table)
