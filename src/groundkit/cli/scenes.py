"""``groundkit scenes``: procedural pictures with exact ground truth (counting and spatial questions)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.progress import Progress

from groundkit.scenes import SIZES, generate_scenes

from .app import app


@app.command("scenes")
def scenes_command(
    n: int = typer.Option(500, "--n", help="Number of scenes."),
    seed: int = typer.Option(0, "--seed", help="Random seed; scene i of a seed is always the same."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (images/ + one JSONL per split + manifest.json)."),
    split: str = typer.Option(None, "--split", help="Shares per split, e.g. train=0.9,test=0.1 (default: one scenes.jsonl)."),
    size: str = typer.Option("base", "--size", help=f"Preset ({', '.join(SIZES)}) or WxH."),
) -> None:
    """Generate synthetic scenes: shapes with COCO RLE masks, boxes, interior points, and questions.

    Example: groundkit scenes --n 500 --seed 0 --out scenes --split train=0.9,test=0.1 --size small
    """
    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("rendering scenes", total=n)
        manifest = generate_scenes(out, n, seed, size, split, on_scene=lambda _i: bar.advance(task))
    for name, info in manifest["splits"].items():
        typer.echo(f"{name}: {info['count']} scenes -> {out / info['file']}")
    typer.echo(json.dumps({"out": str(out), "n": n, "seed": seed, "size": manifest["size"]}))
