"""groundkit's command line: a thin face over the Python API (one module per command group)."""

from __future__ import annotations

from groundkit.cli import eval, experiment, generate, plugins, render, scenes, score, synth, text, train  # noqa: F401  (commands register on import)
from groundkit.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
