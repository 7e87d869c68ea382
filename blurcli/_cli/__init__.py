"""The ``blurcli`` command line. Commands only build settings and call the library."""
from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from .. import __version__
from .common import fail, setup_logging

# Typer >= 0.29 (required) carries its own copy of click and no longer installs click itself.
from typer._click.exceptions import ClickException, NoArgsIsHelpError

#: One line per command in ``blurcli --help`` (each command's own help keeps the full text), so
#: that the overview fits a 80x24 terminal.
_SHORT_HELP = {
    "enroll": "Learn a person from photos so that their face stays sharp.",
    "faces": "List who is enrolled.",
    "forget": "Remove a person and their face encodings.",
    "photo": "Hide faces in a photo or a folder of photos.",
    "video": "Hide faces in a video or a folder of videos (audio kept).",
    "stream": "Stream a camera, file or URL live with faces hidden.",
    "review": "Check and edit every decision on a page before publishing.",
}
_OPTION_HELP = {
    "install_completion": "Install tab completion for your shell.",
    "show_completion": "Print the completion script.",
}


class _Group(TyperGroup):
    """The root command: one-line command summaries, short completion help, one-line usage errors."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Run the CLI; a usage error is one ``error:`` line like every other error.

        Typer draws usage errors in a Rich box whose width follows the terminal, so a long path
        wraps over several lines (and its look changed with rich 15). blurcli prints every error
        as one plain line on stderr, usage errors included, and exits 2 for them as click does.
        """
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:  # bare ``blurcli``: the help text, as before
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(exc.exit_code)
        except ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            fail(exc.format_message().rstrip(".") + hint, exc.exit_code)
            if not standalone_mode:
                raise
            sys.exit(exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            fail("aborted", 1)
            sys.exit(1)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if param.name in _OPTION_HELP:
                param.help = _OPTION_HELP[param.name]
        return params

    def get_command(self, ctx, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        if command is not None and command.short_help is None and cmd_name in _SHORT_HELP:
            command.short_help = _SHORT_HELP[cmd_name]
        return command


app = typer.Typer(
    name="blurcli",
    cls=_Group,
    help="Blur every face in photos, videos and streams except enrolled people.\n\n"
    "Full guide: README.md",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"blurcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    setup_logging(debug)


def _register() -> None:
    """Import the command modules; each adds its commands to ``app``."""
    import importlib

    for name in ("enroll", "photo", "video", "review", "stream"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a command still being written
            if exc.name != f"{__name__}.{name}":
                raise


_register()


def main() -> None:
    app()
