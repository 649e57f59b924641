"""``groundkit plugins``: every plugin, its origin, version and what it registered."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from groundkit.cli.app import app
from groundkit.registry import STRICT_ENV, get_registry


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
        out = {"plugins": [p.to_dict() for p in infos], "failures": [f.to_dict() for f in reg.failures]}
        typer.echo(json.dumps(out, indent=2))
        return
    table = Table(title="groundkit plugins")
    for col in ("plugin", "origin", "version", "registered", "status"):
        table.add_column(col)
    failed: dict[str, int] = {}
    for f in reg.failures:
        failed[f.name] = failed.get(f.name, 0) + 1
    for p in infos:
        what = ", ".join(f"{kind}: {name}" for kind, name in p.registered) or "-"
        status = f"[red]failed ({failed[p.name]})[/]" if p.name in failed else "ok"
        table.add_row(p.name, "builtin" if p.builtin else p.distribution, p.version, what, status)
    console = Console(width=160)
    console.print(table)
    for f in reg.failures:  # import failures, hooks that raised, rejected registrations (duplicates, broken rules)
        console.print(f"[red]failed[/] plugin {f.name!r} ({f.distribution}): {f.error}", markup=True, highlight=False)
    if reg.failures:
        console.print(f"only the failed parts are unavailable; set {STRICT_ENV}=1 to make these errors")
