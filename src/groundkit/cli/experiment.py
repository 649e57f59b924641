"""``groundkit experiment NAME``: run a whole study (scenes -> synth -> train -> eval), resumably."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .app import app


@app.command("experiment")
def experiment_command(
    name: str = typer.Argument(..., help="The experiment, e.g. counting (see `groundkit plugins`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (stages, checkpoints, results.json, report.html)."),
    scale: str = typer.Option("cpu", "--scale", help="cpu (minutes, no GPU), gpu (a real checkpoint, LoRA) or smoke."),
    model: str = typer.Option(None, "--model", help="A local checkpoint folder or tiny:<backbone> (default: the scale's)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of data, initialisation and training."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard finished stages in --out instead of resuming them."),
) -> None:
    """Run an experiment end to end; a rerun resumes after the last finished stage.

    Example: groundkit experiment counting --out runs/counting --scale cpu
    """
    from groundkit.experiments import ExperimentOptions, run_experiment

    console = Console(stderr=True)
    started: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if done == 0:
            started[stage] = time.monotonic()
            console.print(f"[bold]{stage}[/] ...")
        elif stage in started:
            console.print(f"[green]done[/] {stage} ({time.monotonic() - started[stage]:.0f} s)")
        else:
            console.print(f"[dim]resumed[/] {stage}")

    results = run_experiment(name, out, ExperimentOptions(scale=scale, model=model, seed=seed, fresh=fresh), progress)
    arms = results.get("arms", {})
    table = Table(title=f"experiment {name} ({scale}, seed {seed}): {results.get('minutes', 0):.1f} min")
    cols = ["accuracy", "accuracy_in_range", "accuracy_beyond_range", "format_valid", "point_f1", "point_in_mask"]
    table.add_column("arm")
    for c in cols:
        table.add_column(c.replace("accuracy_", "").replace("_", " "))
    for arm, m in arms.items():
        table.add_row(arm, *("–" if m.get(c) is None else f"{m[c]:.3f}" for c in cols))
    Console(file=sys.stdout).print(table)
    base = results.get("baselines", {})
    typer.echo(f"baselines: majority {base.get('majority', float('nan')):.3f}, chance {base.get('chance', float('nan')):.3f}")
    typer.echo(f"results: {out / 'results.json'}  report: {out / 'report.html'}")
