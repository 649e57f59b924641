"""The typer app and its error boundary: a GroundkitError is one clear message and exit code 1."""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from groundkit.errors import GroundkitError

DEBUG_ENV = "GROUNDKIT_DEBUG"



class GroundkitGroup(TyperGroup):
    """Turns groundkit errors into one message and a non-zero exit (``GROUNDKIT_DEBUG=1`` re-raises)."""

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
