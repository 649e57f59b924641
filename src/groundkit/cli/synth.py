"""``groundkit synth``: SFT data for grounded thinking (distil, extract, ground, derive, align)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from groundkit.synth import SynthSummary, load_config, run_synth

from .app import app


def summary_table(s: SynthSummary) -> Table:
    table = Table(title=f"synth: {s.kept} kept of {s.total} -> {s.out}", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("kept", str(s.kept))
    for reason, n in s.dropped.items():
        table.add_row(f"dropped: {reason}", str(n))
    table.add_row("objects per trace (mean)", str(s.objects_per_trace["mean"]))
    table.add_row("objects per trace (histogram)", " ".join(f"{k}:{v}" for k, v in s.objects_per_trace["histogram"].items()) or "-")
    for kind, n in s.grounding_types.items():
        table.add_row(f"groundings: {kind}", str(n))
    table.add_row("ambiguous phrases resolved", str(s.ambiguous_phrases))
    table.add_row("processed now / resumed", f"{s.processed_now} / {s.resumed}")
    return table


@app.command("synth")
def synth_command(
    config: Path = typer.Option(..., "--config", "-c", help="YAML config (see docs/synth.md)."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming the run in the config's out folder."),
    limit: int = typer.Option(None, "--limit", help="Override the config's limit (records read from the input)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
) -> None:
    """Synthesise grounded SFT data: distil correct teacher traces, extract their objects, ground them, align.

    Writes data.jsonl (kept records, masks as COCO RLE), dropped.jsonl (one reason per dropped record)
    and summary.json; a killed run resumes where it stopped.

    Example: groundkit synth --config synth.yaml
    """
    cfg = load_config(config)
    if limit is not None:
        cfg.limit = limit
    with Progress(TextColumn("synthesising"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("synth", total=None)
        summary = run_synth(cfg, fresh, progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        typer.echo(json.dumps(summary.to_dict()))
        return
    Console(width=120).print(summary_table(summary))
