"""Write outputs under a temporary name beside the target and rename on success.

A crash, an error or Ctrl-C then leaves either the previous file or nothing under the output
name, never a half-written one, and the temp file is removed.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import OutputError


def temp_path_beside(target: Path) -> Path:
    """A fresh hidden path in the target's directory with the same suffix (muxers pick by suffix)."""
    target = Path(target)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    except FileNotFoundError:
        raise OutputError(f"output folder {target.parent} does not exist") from None
    except PermissionError:
        raise OutputError(f"cannot write in {target.parent}: permission denied; choose another output folder") from None
    except OSError as exc:
        raise OutputError(f"cannot write in {target.parent}: {exc.strerror}") from None
    os.close(fd)
    return Path(name)


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask(0) would let
    another thread create a world-writable file meanwhile)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def publish(tmp: Path, target: Path, mode: int | None = None) -> None:
    """Give the finished temp file its permissions (``mode``, else the umask's default), fsync it
    and rename it to ``target``."""
    os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_output(target: Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temp path to write; on clean exit fsync and rename it to ``target``, else delete it.

    Args:
        target: the final output path; its folder must exist.
        mode: file permissions to set before the rename (e.g. 0o600), or None for the umask default.
    """
    target = Path(target)
    tmp = temp_path_beside(target)
    try:
        yield tmp
        publish(tmp, target, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def remove_stale_parts(target: Path) -> list[Path]:
    """Delete the temp files a killed process left beside ``target`` (``temp_path_beside`` names).

    A process killed with SIGKILL (out of memory, a cluster node lost) cannot remove its temp file;
    the next attempt at the same output removes it. Returns the removed paths.
    """
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.stem)}\.[A-Za-z0-9_]{{8}}\.part{re.escape(target.suffix)}")
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        if pattern.fullmatch(name):
            with contextlib.suppress(OSError):
                (target.parent / name).unlink()
                removed.append(target.parent / name)
    return removed
