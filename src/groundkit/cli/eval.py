"""``groundkit eval``: score completions (or, with the backbone plugins, a model) on benchmarks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from groundkit.errors import GroundkitError
from groundkit.eval import METRICS, EvalConfig, evaluate, summary_table
from groundkit.eval.benchmarks import with_images
from groundkit.eval.runner import bench_specs
from groundkit.rewards.spec import split_reward_spec

from .app import app
from .text import DIALECT, FIELD, FRAME, LENIENT


@app.command("eval")
def eval_command(
    bench: list[str] = typer.Option(..., "--bench", "-b", help="NAME:PATH[:SPLIT][?images=DIR], repeatable (see `groundkit plugins`; docs/benchmarks.md)."),
    images: Path = typer.Option(None, "--images", "--media", help="Folder of the benchmarks' images, for specs that name none."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: results.jsonl, results.json, report.html, gallery/."),
    completions: str = typer.Option(None, "--completions", "-c", help="JSONL of completions keyed by record id (optional bench field)."),
    model: str = typer.Option(None, "--model", "-m", help="Model spec (checkpoint folder or tiny:<backbone>) to generate with."),
    dialect: str = DIALECT,
    frame: str = FRAME,
    constrained: bool = typer.Option(True, "--constrained/--no-constrained", help="Enforce the grammar while generating (--model)."),
    limit: int = typer.Option(None, "--limit", help="At most this many records per benchmark."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="Token budget per completion (--model)."),
    instruction: str = typer.Option("full", "--instruction",
                                    help="The prompt's system message, as the model was trained: full | none (--model)."),
    metrics: str = typer.Option(",".join(METRICS), "--metrics", help="Comma-separated reward terms used as metrics, each name[(param=value, ...)]."),
    field: str = FIELD,
    lenient: bool = LENIENT,
    gallery: int = typer.Option(6, "--gallery", help="Examples per benchmark and status (correct / wrong / invalid) in the report."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming the run in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
) -> None:
    """Evaluate on benchmarks: accuracy, format validity, grounding quality per benchmark, task and grounding type.

    Example: groundkit eval --bench scenes:scenes/ --completions completions.jsonl --dialect groundkit --out eval-out
    (--lenient, for unconstrained models: format validity stays strict, answers and grounding metrics read leniently)
    """
    if limit is not None and limit < 1:
        raise GroundkitError(f"--limit must be at least 1, got {limit}")
    config = EvalConfig(
        bench_specs(with_images(bench, images)), dialect, frame, split_reward_spec(metrics), completions, model, constrained, limit,
        max_new_tokens=max_new_tokens, reading="lenient" if lenient else "strict", instruction=instruction,
    )
    with Progress(
        TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True, disable=not sys.stderr.isatty()
    ) as bar:
        task = bar.add_task("evaluating", total=None)
        run = evaluate(config, out, field, fresh, gallery, progress=lambda done, total: bar.update(task, completed=done, total=total))
    for message in run.problems:
        print(f"error: {message}", file=sys.stderr)
    if not run.rows:
        raise GroundkitError(f"no record could be evaluated ({len(run.problems)} problems)")
    if as_json:
        typer.echo(json.dumps({"summary": run.summary, "problems": len(run.problems), "report": str(run.report)}))
        return
    Console(width=160).print(summary_table(run.summary, config.metric_names))
    typer.echo(f"{len(run.rows)} records ({run.scored_now} scored now, {run.resumed} resumed), {len(run.problems)} problems")
    typer.echo(f"report: {run.report}")
