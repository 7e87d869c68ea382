"""Typed errors raised by the library; only the CLI turns them into exit codes.

Each error carries a one-line message that says what is wrong and what to do about it.
"""
from __future__ import annotations


class BlurcliError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with (documented in the README)."""

    exit_code = 1


class UsageError(BlurcliError):
    """Bad arguments: OUT equal to IN, unknown extension, malformed URL, option out of range."""

    exit_code = 2


class InputError(BlurcliError):
    """An input cannot be read or decoded: missing, unreadable, empty, corrupt, not media."""

    exit_code = 3


class OutputError(BlurcliError):
    """An output cannot be written: directory not writable, disk full."""

    exit_code = 4


class EnrolmentError(BlurcliError):
    """A photo cannot be enrolled: no face, several faces, face too small."""

    exit_code = 5


class GalleryError(BlurcliError):
    """The gallery file is corrupt, locked for too long, or names an unknown person."""

    exit_code = 6


class ModelError(BlurcliError):
    """A model is missing or failed its start-up self-check (wrong OpenCV, damaged weights)."""

    exit_code = 7


class StreamError(BlurcliError):
    """A live stream could not be started or gave up after its retries."""

    exit_code = 8


class PartialFailure(BlurcliError):
    """Folder mode: some files failed, the others were written. ``reports`` holds every file's report."""

    exit_code = 9

    def __init__(self, message: str, reports: list | None = None):
        super().__init__(message)
        self.reports = reports or []


#: Exit code used when the user interrupts (Ctrl-C / SIGTERM), as shells do for SIGINT.
EXIT_INTERRUPTED = 130
