"""What every command shares: the console, logging, and turning errors into exit codes."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Iterator

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress, ProgressColumn
from rich.text import Text

from ..errors import EXIT_INTERRUPTED, BlurcliError
from ..secrets import SecretMaskingFilter, forget_secrets, learn_secrets, mask_exception, mask_secrets

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


def progress_bar(*columns: str | ProgressColumn) -> Progress:
    """A transient progress display on the stderr console, shown only on a terminal.

    Rich writes an empty line when a live display stops on a pipe or a file, which would break
    "one line on stderr" for errors; scripts and CI logs get no progress output at all.
    """
    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)


def _raise_keyboard_interrupt(signum, frame):  # pragma: no cover - exercised via subprocess tests
    raise KeyboardInterrupt


def fail(message: str, code: int) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise.

    The message is printed as plain text: file names like ``[/x].jpg`` are not Rich markup.
    """
    line = Text("error:", style="bold red")
    line.append(" " + mask_secrets(message).replace("\n", " "))
    console.print(line, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _current_context():
    """The running command's click context (Typer ships its own copy of click), or None."""
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # a Typer that uses click itself
        from click import get_current_context
    return get_current_context(silent=True)


def _learn_command_secrets() -> None:
    """Scope masking to this command: learn the secrets in every URL it was given.

    Looks at the command's parameters (``--rtmp`` read from its environment variable included),
    the process arguments and the environment, so that a key is masked even where a message
    quotes it without its URL.
    """
    forget_secrets()
    values: list = list(sys.argv[1:]) + [v for v in os.environ.values() if "://" in v]
    ctx = _current_context()
    while ctx is not None:
        for value in ctx.params.values():
            values.extend(value if isinstance(value, (list, tuple)) else [value])
        ctx = ctx.parent
    for value in values:
        if isinstance(value, str):
            learn_secrets(value)


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """Uncaught errors in worker threads go through the masked logger, not raw to stderr."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    log.error("unexpected error in %s: %s: %s", name, args.exc_type.__name__, args.exc_value,
              exc_info=(args.exc_type, args.exc_value, args.exc_traceback) if state.debug else None)


@contextlib.contextmanager
def reporting() -> Iterator[None]:
    """Map library errors to one stderr line and their exit code; re-raise everything with --debug.

    SIGTERM is turned into KeyboardInterrupt so that both clean up the same way (no partial output).
    """
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(ValueError):  # not in the main thread (some test runners)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    previous_hook, threading.excepthook = threading.excepthook, _log_thread_exception
    _learn_command_secrets()
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
        if state.debug:  # through the logger, so that secrets in the exception chain are masked
            mask_exception(exc)
            log.error("unexpected error", exc_info=True)
            raise fail(f"unexpected {type(exc).__name__}: {exc}", 1) from None
        raise fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1) from None
    finally:
        threading.excepthook = previous_hook
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


def load_plan(path, preview):
    """``--plan``'s file loaded (None without one); a preview decides, so it takes no plan.

    Raises:
        UsageError: the plan cannot be read, or ``--preview`` was asked for too.
    """
    if path is None:
        return None
    from ..errors import UsageError
    from ..review.plan import Plan

    if preview:
        raise UsageError("--plan renders a reviewed plan and --preview shows the tool's own decisions; use one")
    return Plan.load(path)
