"""``groundkit render``: draw a trace's groundings over an image."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from groundkit.errors import DataError
from groundkit.frames import ImageSize
from groundkit.images import open_rgb
from groundkit.render import render
from groundkit.text.parser import get_parser
from groundkit.trace import Trace

from .app import app
from .text import DIALECT, FIELD, FRAME


def load_trace(path: Path, dialect: str, frame: str | None, size: ImageSize, field: str | None) -> Trace:
    """A trace from trace JSON (``{"think": ...}``), a record with a text field, or raw text."""
    if not path.exists():
        raise DataError(f"file not found: {path}")
    content = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".json", ".jsonl"):
        try:
            obj = json.loads(content.splitlines()[0] if path.suffix.lower() == ".jsonl" else content)
        except (json.JSONDecodeError, IndexError) as exc:
            raise DataError(f"{path}: not JSON ({exc})") from exc
        if isinstance(obj, dict) and "trace" in obj:
            obj = obj["trace"]
        if isinstance(obj, dict) and "think" in obj:
            return Trace.from_dict(obj)
        from groundkit.records import record_from_object

        rec = record_from_object(obj, path.name, field)
        if rec.error:
            raise rec.error
        content = rec.text or ""
    return get_parser(dialect, frame).parse(content, size)


@app.command("render")
def render_command(
    trace: Path = typer.Argument(..., help="Trace JSON, a record, or completion text in --dialect."),
    image: Path = typer.Option(..., "--image", help="The image the trace grounds."),
    out: Path = typer.Option(..., "--out", "-o", help="PNG to write."),
    dialect: str = DIALECT,
    frame: str = FRAME,
    field: str = FIELD,
) -> None:
    """Draw the groundings of a trace (with labels) over its image.

    Example: groundkit render trace.txt --image scene.png -o out.png
    """
    if not image.exists():
        raise DataError(f"image not found: {image}")
    img = open_rgb(image)
    t = load_trace(trace, dialect, frame, ImageSize(*img.size), field)
    render(t, img).save(out)
    typer.echo(f"wrote {out} ({len(t.groundings)} groundings)")
