"""``groundkit generate``: one image + question, or a JSONL of them (batched, resumable)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.progress import Progress

from groundkit.backbones import load_model
from groundkit.backbones.generation import GenerationRequest, GenerationResult, SamplingConfig, generate
from groundkit.errors import DataError
from groundkit.render import render

from .app import app
from .text import FRAME, TYPES, split_types


def read_requests(path: Path) -> list[GenerationRequest]:
    """Records ``{"id", "image", "question"}``; image paths are relative to the file's folder."""
    if not path.exists():
        raise DataError(f"file not found: {path}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"not JSON ({exc.msg})", f"line {n}") from exc
        rid = str(rec.get("id", f"line {n}"))
        if "image" not in rec or "question" not in rec:
            raise DataError("needs 'image' and 'question'", rid)
        out.append(GenerationRequest(path.parent / rec["image"], rec["question"], rid))
    return out


def done_ids(out: Path) -> set[str]:
    """Ids already written to ``out`` (a resumed run skips them)."""
    if not out.exists():
        return set()
    ids = set()
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            ids.add(str(json.loads(line)["id"]))
        except (json.JSONDecodeError, KeyError):
            continue  # a line cut by a kill is redone
    return ids


def append_results(out: Path, results: list[GenerationResult]) -> None:
    """Append results and fsync; a line cut by an earlier kill is closed first (and redone)."""
    cut = out.exists() and out.stat().st_size > 0 and not out.read_bytes().endswith(b"\n")
    with out.open("a", encoding="utf-8") as f:
        if cut:
            f.write("\n")
        for r in results:
            f.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


@app.command("generate")
def generate_command(
    model: str = typer.Option(..., "--model", help="Local checkpoint directory or tiny:<backbone>."),
    image: Path = typer.Option(None, "--image", help="One image (with --question)."),
    question: str = typer.Option(None, "--question", help="The question about --image."),
    input: Path = typer.Option(None, "--input", help="JSONL of {id, image, question} records (batched, resumable)."),
    backbone: str = typer.Option(None, "--backbone", help="Backbone name when it cannot be detected from config.json."),
    dialect: str = typer.Option(None, "--dialect", "-d", help="Dialect (default: the backbone's native one)."),
    frame: str = FRAME,
    types: str = TYPES,
    constrained: bool = typer.Option(True, "--constrained/--no-constrained", help="Grammar-constrained decoding."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
    instruction: str = typer.Option("full", "--instruction",
                                    help="The prompt's system message, as the model was trained: full | none."),
    sample: bool = typer.Option(False, "--sample/--greedy", help="Sample instead of greedy decoding."),
    temperature: float = typer.Option(1.0, "--temperature"),
    top_k: int = typer.Option(None, "--top-k"),
    top_p: float = typer.Option(None, "--top-p"),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(8, "--batch-size"),
    dtype: str = typer.Option(None, "--dtype", help="e.g. bfloat16, float16, auto."),
    device: str = typer.Option(None, "--device", help="e.g. cuda, cuda:0, auto."),
    out: Path = typer.Option(None, "--out", "-o", help="trace.json (one image) or results.jsonl (--input)."),
    render_to: Path = typer.Option(None, "--render", help="PNG with the groundings drawn (one image)."),
) -> None:
    """Generate grounded reasoning with a backbone, constrained to the dialect's grammar.

    Example: groundkit generate --model tiny:qwen2.5-vl --image cat.png --question "How many cats?" --render out.png
    """
    if (input is None) == (image is None):
        raise DataError("give either --image with --question, or --input records.jsonl")
    if image is not None and not question:
        raise DataError("--image needs --question")
    loaded = load_model(model, backbone=backbone, dtype=dtype, device=device, seed=seed)
    sampling = SamplingConfig(sample, temperature, top_k, top_p, seed)
    options = dict(dialect=dialect, frame=frame, types=split_types(types), constrained=constrained,
                   max_new_tokens=max_new_tokens, sampling=sampling, batch_size=batch_size,
                   instruction=instruction)
    if image is not None:
        result = generate(loaded, [GenerationRequest(image, question, "0")], **options)[0]
        payload = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
        if out:
            out.write_text(payload + "\n", encoding="utf-8")
        typer.echo(payload)
        if render_to and result.trace is not None:
            from PIL import Image

            with Image.open(image) as img:
                render(result.trace, img).save(render_to)
            typer.echo(f"wrote {render_to}")
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
            raise typer.Exit(1)
        return
    out = out or input.with_name(input.stem + ".generated.jsonl")
    requests = read_requests(input)
    finished = done_ids(out)
    todo = [r for r in requests if r.id not in finished]
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("generating", total=len(todo))
        generate(loaded, todo, on_batch=lambda rs: (append_results(out, rs), progress.advance(task, len(rs))), **options)
    typer.echo(f"{len(todo)} generated, {len(finished)} already done -> {out}")
