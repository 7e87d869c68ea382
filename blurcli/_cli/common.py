"""What every command shares: the console, logging, and turning errors into exit codes."""
from __future__ import annotations

import contextlib
import logging
import signal
import sys
from typing import Iterator

import typer
from rich.console import Console
from rich.logging import RichHandler

from ..errors import EXIT_INTERRUPTED, BlurcliError
from ..secrets import SecretMaskingFilter, mask_secrets

log = logging.getLogger("blurcli")

#: Messages and progress go to stderr; stdout stays free for data (``faces --json``).
console = Console(stderr=True, highlight=False)


class _State:
    debug = False


state = _State()


def setup_logging(debug: bool) -> None:
    """One RichHandler on the stderr console, with stream keys masked in every record."""
    state.debug = debug
    logger = logging.getLogger("blurcli")
    for handler in list(logger.handlers):
        if getattr(handler, "_blurcli", False):
            logger.removeHandler(handler)
    handler = RichHandler(console=console, show_time=False, show_path=debug, markup=False, rich_tracebacks=debug)
    handler._blurcli = True  # type: ignore[attr-defined]
    handler.addFilter(SecretMaskingFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)


def _raise_keyboard_interrupt(signum, frame):  # pragma: no cover - exercised via subprocess tests
    raise KeyboardInterrupt


def fail(message: str, code: int) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    console.print(f"[bold red]error:[/] {mask_secrets(message)}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def reporting() -> Iterator[None]:
    """Map library errors to one stderr line and their exit code; re-raise everything with --debug.

    SIGTERM is turned into KeyboardInterrupt so that both clean up the same way (no partial output).
    """
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(ValueError):  # not in the main thread (some test runners)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    except BlurcliError as exc:
        if state.debug:
            log.debug("traceback", exc_info=True)
        raise fail(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        console.print("interrupted: no partial output was left behind")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        if state.debug:
            raise
        raise fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1) from None
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)
