"""Text commands: ``grammar``, ``parse``, ``validate``, ``convert``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.progress import track

from groundkit.errors import GroundkitError, ParseError
from groundkit.frames import ImageSize
from groundkit.records import TextRecord, read_records
from groundkit.text.formatter import format_trace
from groundkit.text.grammar import get_grammar
from groundkit.text.parser import get_parser

from .app import app

DIALECT = typer.Option("groundkit", "--dialect", "-d", help="Dialect name (see `groundkit plugins`).")
FRAME = typer.Option(None, "--frame", help="Coordinate frame (default: the dialect's), e.g. abs-resized:factor=32.")
TYPES = typer.Option(None, "--types", help="Comma-separated grounding types (default: all the dialect supports).")
SIZE = typer.Option(None, "--image-size", help="Original image size WxH, for pixel frames (records may carry width/height).")
LENIENT = typer.Option(
    False, "--lenient", help="Read leniently: every well-formed grounding anywhere; skipped spans and why go to 'problems'."
)
FIELD = typer.Option(None, "--field", help="JSON field holding the text (default: completion, text, output, response, trace).")


def split_types(types: str | None) -> list[str] | None:
    return [t.strip() for t in types.split(",") if t.strip()] if types else None


def progress(records, description: str):
    """A progress bar on stderr for long inputs (hidden for short ones and non-terminals)."""
    return track(records, description=description, transient=True, disable=not sys.stderr.isatty())


def record_size(rec: TextRecord, default: str | None) -> ImageSize | None:
    return rec.image_size or (ImageSize.parse(default) if default else None)


@app.command("grammar")
def grammar_command(
    dialect: str = DIALECT,
    types: str = TYPES,
    frame: str = FRAME,
    reading: bool = typer.Option(False, "--reading", help="The grammar the parser reads (canonical plus native forms)."),
) -> None:
    """Print the composed Lark grammar of a dialect (what the decoder writes; --reading: what the parser reads).

    Example: groundkit grammar --dialect groundkit --types point,box
    """
    grammar = get_grammar(dialect, frame, split_types(types))
    typer.echo((grammar.for_reading() if reading else grammar).text, nl=False)


@app.command("parse")
def parse_command(
    file: str = typer.Argument(..., help="A text file, a .json / .jsonl of records, or - for stdin."),
    dialect: str = DIALECT,
    frame: str = FRAME,
    types: str = TYPES,
    image_size: str = SIZE,
    field: str = FIELD,
    lenient: bool = LENIENT,
    out: Path = typer.Option(None, "--out", "-o", help="Write JSONL here instead of stdout."),
) -> None:
    """Parse completions into traces (JSON; JSONL for several records).

    Example: groundkit parse completions.jsonl --dialect treevgr -o traces.jsonl
    (--lenient reads what an unconstrained model wrote: groundings anywhere, bad ones skipped)
    """
    parser = get_parser(dialect, frame, split_types(types))
    records = list(read_records(file, field))
    lines, failed = [], 0
    for rec in progress(records, "parsing"):
        try:
            if rec.error:
                raise rec.error
            trace = parser.parse(rec.text or "", record_size(rec, image_size), lenient=lenient)
            lines.append(json.dumps({"id": rec.id, "trace": trace.to_dict()}, ensure_ascii=False))
        except ParseError as exc:
            failed += 1
            print(f"error: {exc.with_record(rec.id)}", file=sys.stderr)
        except GroundkitError as exc:
            failed += 1
            print(f"error: record {rec.id}: {exc}", file=sys.stderr)
    text = "\n".join(lines) + ("\n" if lines else "")
    if len(records) == 1 and lines and out is None:
        text = json.dumps(json.loads(lines[0])["trace"], indent=2, ensure_ascii=False) + "\n"
    if out is not None:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)
    if failed:
        raise typer.Exit(1)


@app.command("validate")
def validate_command(
    file: str = typer.Argument(..., help="A text file, a .json / .jsonl of records, or - for stdin."),
    dialect: str = DIALECT,
    frame: str = FRAME,
    types: str = TYPES,
    image_size: str = SIZE,
    field: str = FIELD,
) -> None:
    """Check that every record parses; one message per bad record (id + line/column), then a summary.

    Example: groundkit validate completions.jsonl --dialect qwen2vl
    """
    parser = get_parser(dialect, frame, split_types(types))
    total = bad = 0
    for rec in progress(list(read_records(file, field)), "validating"):
        total += 1
        try:
            if rec.error:
                raise rec.error
            parser.parse(rec.text or "", record_size(rec, image_size))
        except ParseError as exc:
            bad += 1
            print(f"error: {exc.with_record(rec.id)}", file=sys.stderr)
        except GroundkitError as exc:
            bad += 1
            print(f"error: record {rec.id}: {exc}", file=sys.stderr)
    typer.echo(f"{total} records: {total - bad} valid, {bad} invalid ({dialect})")
    if bad:
        raise typer.Exit(1)


@app.command("convert")
def convert_command(
    file: str = typer.Argument(..., help="A text file, a .json / .jsonl of records, or - for stdin."),
    source: str = typer.Option(..., "--from", help="Dialect of the input."),
    target: str = typer.Option(..., "--to", help="Dialect to write."),
    source_frame: str = typer.Option(None, "--from-frame", help="Frame of the input (default: the dialect's)."),
    target_frame: str = typer.Option(None, "--to-frame", help="Frame to write (default: the dialect's)."),
    image_size: str = SIZE,
    field: str = FIELD,
    lossy: bool = typer.Option(False, "--lossy", help="Drop labels the target dialect cannot hold."),
    out: Path = typer.Option(None, "--out", "-o", help="Write here instead of stdout."),
) -> None:
    """Convert traces between dialects, converting their coordinate frames.

    Example: groundkit convert traces.jsonl --from treevgr --to groundkit
    """
    parser = get_parser(source, source_frame)
    records = list(read_records(file, field))
    outputs, failed = [], 0
    for rec in progress(records, "converting"):
        try:
            if rec.error:
                raise rec.error
            size = record_size(rec, image_size)
            text = format_trace(parser.parse(rec.text or "", size), target, target_frame, image_size=size, lossy=lossy)
        except ParseError as exc:
            failed += 1
            print(f"error: {exc.with_record(rec.id)}", file=sys.stderr)
            continue
        except GroundkitError as exc:
            failed += 1
            print(f"error: record {rec.id}: {exc}", file=sys.stderr)
            continue
        if rec.data:
            outputs.append(json.dumps({**rec.data, rec.field or "completion": text, "dialect": target}, ensure_ascii=False))
        else:
            outputs.append(text)
    result = "\n".join(outputs) + ("\n" if outputs else "")
    if out is not None:
        out.write_text(result, encoding="utf-8")
    else:
        typer.echo(result, nl=False)
    if failed:
        raise typer.Exit(1)
