"""The console script's entry point: a Ctrl-C while the libraries load exits quietly with 130."""
import sys


def main() -> None:
    try:
        from blurcli._cli import main as cli_main
    except KeyboardInterrupt:  # nothing was written yet
        sys.exit(130)
    cli_main()
