"""The typer app and its error boundary: a GroundkitError is one clear message and exit code 1."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from groundkit.errors import GroundkitError

DEBUG_ENV = "GROUNDKIT_DEBUG"

#: Help width when output is not a terminal (a pipe, a file, CliRunner): wide enough that the
#: example lines and defaults are never wrapped or cut (``TERMINAL_WIDTH`` / ``COLUMNS`` override).
HELP_WIDTH = 160


def _help_width() -> int:
    for var in ("TERMINAL_WIDTH", "COLUMNS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return HELP_WIDTH


def _plain_help(command: Any) -> None:
    """Plain click help for ``command`` and its subcommands: without a terminal, typer's rich
    panels wrap at 80 columns, cut long defaults with '…' and show flags as ``--help <bool>``."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


class GroundkitGroup(TyperGroup):
    """Turns groundkit errors into one message and a non-zero exit (``GROUNDKIT_DEBUG=1`` re-raises);
    without a terminal, help is plain text at :data:`HELP_WIDTH` columns (complete, nothing cut)."""

    def main(self, *args: Any, **extra: Any) -> Any:  # type: ignore[override]
        if not sys.stdout.isatty():
            _plain_help(self)
            width = _help_width()
            extra.setdefault("terminal_width", width)
            extra.setdefault("max_content_width", width)
        return super().main(*args, **extra)

    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except GroundkitError as exc:
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=GroundkitGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="groundkit: grounded-thought formats, plugins, constrained decoding, rewards.",
)
