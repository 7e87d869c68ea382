"""Pair inputs with outputs for file and folder mode, refusing anything that could overwrite an input."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, OutputError, UsageError


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes."""

    src: Path
    dst: Path


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_not_input(src: Path, dst: Path) -> None:
    if src.resolve() == dst.resolve() or _same(src, dst):
        raise UsageError(f"output {dst} is the input itself; blurcli never overwrites an input, choose another name")


def plan_jobs(src: Path, dst: Path, suffixes: frozenset[str], kind: str) -> tuple[list[Job], bool]:
    """Expand ``src``/``dst`` into jobs.

    A file goes to ``dst`` (or into ``dst`` when that is an existing folder); a folder is walked
    recursively for files with one of ``suffixes`` and mirrored under ``dst`` with the same relative
    names. An output folder inside the input folder is not walked.

    Returns:
        (jobs, folder_mode)

    Raises:
        InputError: ``src`` is missing or a folder holds no matching file.
        UsageError: an output would overwrite an input, or a folder is given a file as output.
        OutputError: the output folder cannot be created.
    """
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    if src.is_file():
        if dst.is_dir():
            dst = dst / src.name
        _check_not_input(src, dst)
        if src.suffix.lower() not in suffixes:
            known = " ".join(sorted(suffixes))
            raise InputError(f"{src}: not a {kind} file by its extension (expected one of: {known})")
        return [Job(src, dst)], False
    if dst.exists() and not dst.is_dir():
        raise UsageError(f"{src} is a folder, so the output must be a folder too, but {dst} is a file")
    if src.resolve() == dst.resolve():
        raise UsageError(f"output folder {dst} is the input folder; blurcli never overwrites an input")
    skip = dst.resolve()
    jobs = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if (Path(root) / d).resolve() != skip and not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if path.suffix.lower() in suffixes and not name.startswith("."):
                jobs.append(Job(path, dst / path.relative_to(src)))
    if not jobs:
        raise InputError(f"{src} holds no {kind} files")
    return jobs, True


def ensure_parent(path: Path) -> None:
    """Create the output's folder, as a clear OutputError when that is impossible."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise OutputError(f"cannot create folder {path.parent}: permission denied") from None
    except OSError as exc:
        raise OutputError(f"cannot create folder {path.parent}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"cannot write in {path.parent}: permission denied; choose another output folder")
