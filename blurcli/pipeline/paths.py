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


def check_not_input(src: Path, dst: Path) -> None:
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
        OutputError: the output folder cannot be created or written (checked before any work).
    """
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    if src.is_file():
        if dst.is_dir():
            dst = dst / src.name
        check_not_input(src, dst)
        if src.suffix.lower() not in suffixes:
            known = " ".join(sorted(suffixes))
            raise InputError(f"{src}: not a {kind} file by its extension (expected one of: {known})")
        check_writable(dst.parent)
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
    refuse_overwriting_inputs(jobs)
    check_writable(dst)
    return jobs, True


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def refuse_overwriting_inputs(jobs: list[Job]) -> None:
    """Refuse a plan in which some job's output is another job's input (same path, link or hard link).

    Happens when the output folder is the input folder's parent: ``photo A/B A`` would write
    ``A/B/B/x.jpg`` to ``A/B/x.jpg``.

    Raises:
        UsageError: naming the first such output.
    """
    sources = {job.src.resolve() for job in jobs}
    inodes = {_identity(job.src) for job in jobs} - {None}
    for job in jobs:
        if job.dst.resolve() in sources or (job.dst.exists() and _identity(job.dst) in inodes):
            raise UsageError(
                f"output {job.dst} (for {job.src}) is also an input; blurcli never overwrites an input, "
                "choose an output folder outside the input folder"
            )


def check_writable(folder: Path) -> None:
    """Fail early when outputs cannot be written under ``folder`` (which may not exist yet).

    Looks at the nearest existing ancestor: it must be a folder this process may write in.

    Raises:
        OutputError: a file stands where a folder is needed, or the folder is not writable.
    """
    folder = Path(os.path.abspath(folder))
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot create folder {folder}: {existing} is a file; choose another output folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "write in" if existing == folder else "create folder"
        target = existing if existing == folder else folder
        raise OutputError(f"cannot {what} {target}: permission denied; choose another output folder")


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
