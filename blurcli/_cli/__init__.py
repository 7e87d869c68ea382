"""The ``blurcli`` command line. Commands only build settings and call the library."""
from __future__ import annotations

import typer

from .. import __version__
from .common import setup_logging

app = typer.Typer(
    name="blurcli",
    help="Blur every face in photos, videos and live streams except the people you enrolled.\n\n"
    "Full guide: README.md (https://github.com/blurcli/blurcli#readme).",
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
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs (secrets stay masked)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    setup_logging(debug)


def _register() -> None:
    """Import the command modules; each adds its commands to ``app``."""
    import importlib

    for name in ("enroll", "photo", "video", "stream"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a command still being written
            if exc.name != f"{__name__}.{name}":
                raise


_register()


def main() -> None:
    app()
