"""Write outputs under a temporary name beside the target and rename on success.

A crash, an error or Ctrl-C then leaves either the previous file or nothing under the output
name, never a half-written one, and the temp file is removed.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
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


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the few statements inside, then act on them as usual.

    Creating a temp file and recording its name are two steps; a signal between them (the CLI
    turns both into KeyboardInterrupt) would leave a file nobody deletes. The test that signals
    a folder run as soon as an output appears hit exactly that moment, when the next file's temp
    (or its kept report's) was being created. Only the main thread can swap handlers; elsewhere
    this does nothing (signals are handled in the main thread anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for signum in caught[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


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
    tmp = None
    try:
        with signals_deferred():  # Ctrl-C between creating the file and owning it would leak it
            tmp = temp_path_beside(target)
        yield tmp
        publish(tmp, target, mode)
    except BaseException:
        if tmp is not None:
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
