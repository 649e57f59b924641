"""``groundkit plugins``: every plugin, its origin, version and what it registered."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from groundkit.cli.app import app
from groundkit.registry import get_registry


@app.command("plugins")
def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List every plugin (built-in and third-party) and what it registered.

    Example: groundkit plugins --json
    """
    reg = get_registry()
    infos = sorted(reg.plugins.values(), key=lambda p: (not p.builtin, p.name))
    if as_json:
        out = {
            "plugins": [p.to_dict() for p in infos],
            "failures": [{"name": f.name, "distribution": f.distribution, "error": f.error} for f in reg.failures],
        }
        typer.echo(json.dumps(out, indent=2))
        return
    table = Table(title="groundkit plugins")
    for col in ("plugin", "origin", "version", "registered"):
        table.add_column(col)
    for p in infos:
        what = ", ".join(f"{kind}: {name}" for kind, name in p.registered) or "-"
        table.add_row(p.name, "builtin" if p.builtin else p.distribution, p.version, what)
    console = Console(width=160)
    console.print(table)
    for f in reg.failures:
        console.print(f"[red]failed to load[/] plugin {f.name!r} from {f.distribution}: {f.error}")
