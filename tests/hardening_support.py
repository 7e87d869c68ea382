"""What the hardening tests share: running the CLI two ways, snapshots of folders, pictures with faces.

A failure is judged the same way for every command: the documented exit code, exactly one line on
stderr that names the problem, no traceback, every input byte-for-byte unchanged and nothing new
(no output, no temporary file) in the output folder.
"""
from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from blurcli._cli import app

REPO = Path(__file__).resolve().parents[1]

#: Face boxes [x, y, w, h] in identity/mixed/two_people.jpg (identity/labels.json "mixed").
OBAMA = (235, 29, 177, 177)
BIDEN = (786, 65, 169, 169)
#: Scale applied to two_people.jpg for the small test scenes (faces of ~88 px: quick to detect).
SCENE_SCALE = 0.5

#: Names our writers give temporary files: atomic.py ``.stem.XXXXXXXX.part.ext`` (VideoWriter
#: too), the gallery ``.gallery.json.XXXX.tmp``.
TEMP_NAME = re.compile(r"^\..*(\.part|\.partial|\.tmp)")

runner = CliRunner()


@dataclass
class Outcome:
    """What a CLI run left: exit code and the two output streams."""

    code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None

    def lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def cli(*args, input: str | None = None) -> Outcome:
    """Run ``blurcli ARGS`` in this process (typer's CliRunner), stderr kept apart."""
    result = runner.invoke(app, [str(a) for a in args], input=input)
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return Outcome(result.exit_code, result.stdout, result.stderr, exception)


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for ``python -m blurcli``: this checkout first on the path, no colour, wide lines."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(NO_COLOR="1", TERM="dumb", COLUMNS="200", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run_blurcli(*args, cwd: Path, timeout: float = 180, **env: str) -> Outcome:
    """Run ``python3 -m blurcli ARGS`` as a real process."""
    proc = subprocess.run(
        [sys.executable, "-m", "blurcli", *[str(a) for a in args]],
        cwd=cwd, env=subprocess_env(**env), capture_output=True, text=True, timeout=timeout,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (hidden files included); dirs as 'dir'."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    state = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            state[rel] = "link->" + os.readlink(path)
        elif path.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = _sha256(path)
    return state


def _sha256(path: Path) -> str:
    """Hash with os-level reads, so that a test's simulated ``open()`` refusal does not hit the check."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Temporary files (ours, by name) anywhere under ``folder``."""
    folder = Path(folder)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if TEMP_NAME.match(p.name))


def assert_clean_failure(outcome: Outcome, code: int, message: str, *, usage: bool = False) -> None:
    """Exit ``code``; one stderr line matching ``message`` (regex, case-insensitive); no traceback.

    ``usage`` marks errors found by the argument parser (click); they too are one ``error:`` line
    (Typer's own usage box wraps long paths, and its look changes with rich's version), which
    names the command's ``--help``.
    """
    shown = f"exit {outcome.code}\n--- stderr\n{outcome.stderr}\n--- stdout\n{outcome.stdout}"
    assert outcome.code == code, shown
    assert outcome.exception is None, f"{type(outcome.exception).__name__}: {outcome.exception}\n{shown}"
    assert "Traceback" not in outcome.stderr + outcome.stdout, shown
    assert re.search(message, outcome.stderr, re.IGNORECASE | re.DOTALL), shown
    lines = outcome.lines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}\n{shown}"
    assert lines[0].startswith("error: "), shown
    assert outcome.stderr.splitlines() == lines, f"blank lines on stderr\n{shown}"
    if usage:
        assert "--help" in lines[0], shown


# ---------------------------------------------------------------- simulated permissions (CI runs as root)


def deny_reading(monkeypatch, *paths: Path) -> None:
    """Make ``open()`` and FFmpeg's ``av.open`` fail with EACCES for these files, as chmod 000 would for a user."""
    import av

    denied = {os.path.abspath(p) for p in paths}

    def is_denied(file) -> bool:
        return isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)) in denied

    real_open, real_av_open = builtins.open, av.open

    def fake_open(file, *args, **kwargs):
        if is_denied(file):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    def fake_av_open(file, *args, **kwargs):
        if is_denied(file):
            raise av.error.PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_av_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(av, "open", fake_av_open)


def deny_writing(monkeypatch, folder: Path, *, access_says_yes: bool = False) -> None:
    """Make ``folder`` behave as read-only for this process (no new file or folder inside it, recursively).

    With ``access_says_yes``, ``os.access`` still answers "writable" (as for root on a read-only
    mount): only the attempt to create a file fails.
    """
    folder = os.path.abspath(folder)

    def inside(path) -> bool:
        if not isinstance(path, (str, os.PathLike)):
            return False
        path = os.path.abspath(os.fspath(path))
        return path == folder or path.startswith(folder + os.sep)

    real_access, real_os_open, real_mkdir, real_open = os.access, os.open, os.mkdir, builtins.open

    def fake_access(path, mode, *args, **kwargs):
        if mode & os.W_OK and inside(path):
            return False
        return real_access(path, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if inside(path) and os.path.abspath(os.fspath(path)) != folder:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    def fake_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and inside(file):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    if not access_says_yes:
        monkeypatch.setattr(os, "access", fake_access)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)


# ---------------------------------------------------------------- pictures


def scene(data_dir: Path) -> np.ndarray:
    """two_people.jpg at half size: (330, 563, 3) uint8 BGR with Obama's and Biden's faces."""
    image = cv2.imread(str(Path(data_dir) / "identity" / "mixed" / "two_people.jpg"))
    return cv2.resize(image, None, fx=SCENE_SCALE, fy=SCENE_SCALE, interpolation=cv2.INTER_AREA)


def scene_faces() -> list[tuple[float, float, float, float]]:
    """Both face boxes [x, y, w, h] in :func:`scene`'s pixels."""
    return [tuple(v * SCENE_SCALE for v in box) for box in (OBAMA, BIDEN)]


def text_file(path: Path) -> Path:
    path.write_text("this is not media, only text\n")
    return path


def bomb_png(path: Path, side: int = 40_000) -> Path:
    """A tiny PNG whose header claims ``side`` x ``side`` pixels (1.6 G by default): a decompression bomb.

    Only the first rows are compressed (the reader must refuse it from the header, before decoding).
    """
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * ((side + 1) * 4), 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path
