"""Generate the README's "Every option" section from the CLI itself, so that it cannot drift.

Usage:
    python3 docs/cli_reference.py            # print the section
    python3 docs/cli_reference.py --write    # replace it in README.md
    python3 docs/cli_reference.py --check    # exit 1 when README.md is out of date (tests do this)

The section lies between ``<!-- cli-reference:begin -->`` and ``<!-- cli-reference:end -->``.
It is built from the same Typer/Click objects that ``blurcli COMMAND --help`` prints.
"""
from __future__ import annotations

import argparse
import enum
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN, END = "<!-- cli-reference:begin -->", "<!-- cli-reference:end -->"
ORDER = ("enroll", "faces", "forget", "photo", "video", "stream")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _value(param, ctx) -> str:
    """What an option takes, in words, from the type ``--help`` shows."""
    if getattr(param, "is_flag", False):
        return "flag"
    if param.metavar and param.param_type_name != "argument":
        return f"`{_cell(param.metavar)}`"
    shown = param.display_type(ctx) if callable(param.display_type) else param.display_type
    shown = str(shown or "").strip("<>")
    if "|" in shown:
        return " \\| ".join(f"`{choice}`" for choice in shown.split("|"))
    if shown.startswith("list["):
        inner = shown[5:-1]
        return f"{ {'str': 'text', 'Path': 'path'}.get(inner, inner)}, repeatable"
    if shown.endswith("range"):
        base = "number" if shown.startswith("float") else "integer"
        low, high = param.min, param.max
        if low is not None and high is not None:
            return f"{base} {low}–{high}"
        return f"{base} ≥ {low}" if low is not None else f"{base} ≤ {high}"
    return {"str": "text", "int": "integer", "float": "number"}.get(shown, shown)


def _default(param) -> str:
    if getattr(param, "required", False):
        return "required"
    default = param.default
    if isinstance(default, enum.Enum):
        default = default.value
    if default is None or default == () or default == []:
        text = ""
    elif getattr(param, "is_flag", False) and getattr(param, "secondary_opts", None):
        text = param.opts[0] if default else param.secondary_opts[0]
        text = f"`{text}`"
    elif getattr(param, "is_flag", False):
        text = "" if not default else "on"
    else:
        text = f"`{default}`"
    envvar = getattr(param, "envvar", None)
    if envvar:
        text = f"{text}, or `${envvar}`" if text else f"`${envvar}`"
    return text or "–"


def _names(param) -> str:
    if param.param_type_name == "argument":
        return f"`{param.metavar or param.name.upper()}`"
    opts = sorted(param.opts, key=lambda o: (not o.startswith("--"), o))
    names = ", ".join(f"`{o}`" for o in opts)
    if getattr(param, "secondary_opts", None):
        names += " / " + ", ".join(f"`{o}`" for o in param.secondary_opts)
    return names


def command_section(name: str, command) -> str:
    """Markdown for one command: usage, its help text and a table of every argument and option."""
    import typer

    ctx = typer.main._click.Context(command, info_name=f"blurcli {name}")
    usage = " ".join(command.collect_usage_pieces(ctx)).replace("{", "").replace("}", "").replace("[[", "[").replace("]]", "]")
    help_text = (command.help or "").strip()
    lines = [f"#### `blurcli {name}`", "", f"`blurcli {name} {usage}`", ""]
    for paragraph in help_text.split("\n\n"):
        lines += [" ".join(paragraph.split()), ""]
    lines.pop()
    lines += ["", "| argument / option | takes | default | what it does |", "|---|---|---|---|"]
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        lines.append(f"| {_names(param)} | {_value(param, ctx)} | {_default(param)} | {_cell(getattr(param, 'help', '') or '')} |")
    return "\n".join(lines)


def reference() -> str:
    """The whole generated section (without the markers)."""
    import typer

    from blurcli._cli import app

    group = typer.main.get_command(app)
    names = [n for n in ORDER if n in group.commands] + sorted(set(group.commands) - set(ORDER))
    intro = (
        "_Generated from the CLI by `python3 docs/cli_reference.py --write`; "
        "`blurcli COMMAND --help` prints the same._"
    )
    return "\n\n".join([intro] + [command_section(n, group.commands[n]) for n in names])


def splice(readme: str, section: str) -> str:
    """``readme`` with the text between the markers replaced by ``section``."""
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + section + "\n" + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="update README.md in place")
    group.add_argument("--check", action="store_true", help="exit 1 when README.md is out of date")
    args = parser.parse_args(argv)
    section = reference()
    if not (args.write or args.check):
        print(section)
        return 0
    readme = README.read_text(encoding="utf-8")
    updated = splice(readme, section)
    if args.check:
        if updated != readme:
            print("README.md's option reference is out of date: run python3 docs/cli_reference.py --write", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    sys.exit(main())
