"""Training data: ground-truth / trace JSONL or an HF dataset directory -> TRL rows with images.

A record is a :mod:`groundkit.rewards.groundtruth` record (``id``, ``image``, ``question``, ``answer``,
``objects``, ...). SFT also needs a trace: the text in ``data.trace_field`` (written in
``data.trace_dialect``, default the training dialect; converted to the training dialect and
frame), or ``data.traces: oracle`` to write a correct grounded trace from the ground truth.

Rows (conversational, as TRL expects for vision-language models; TRL inserts the image)::

    SFT:  {"prompt": [system, user], "completion": [assistant], "images": [image]}
    GRPO: {"prompt": [system, user], "images": [image], "ground_truth": "<json>", "sample_id": id}
          (+ "textual_prompt" in dual-stream mode)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from groundkit.backbones import prompt_instruction
from groundkit.errors import DataError, GroundkitError
from groundkit.frames import ImageSize
from groundkit.images import image_size, open_rgb
from groundkit.rewards.groundtruth import GroundTruth
from groundkit.text.formatter import format_trace
from groundkit.text.grammar import ComposedGrammar
from groundkit.text.parser import TraceParser, get_parser
from groundkit.trace import Grounding, Trace

TRACE_FIELDS = ("completion", "trace", "text", "output", "response")
TEXTUAL_INSTRUCTION = (
    "Answer the question about the image. First reason step by step in words only (do not write "
    "coordinates or any grounding markup); then give only the final answer. Use exactly this format:\n"
    "<think>your reasoning</think><answer>your answer</answer>"
)


@dataclass
class Example:
    """One training sample: its ground truth, image (a path or a PIL image), size and optional trace text."""

    truth: GroundTruth
    image: Any
    size: ImageSize
    trace: str | None = None


def _open_size(image: Any, rid: str) -> ImageSize:
    return ImageSize(*image_size(image, rid))


def _example(record: Mapping[str, Any], default_id: str, image_root: Path, trace_field: str) -> Example:
    rec = dict(record)
    image = rec.get("image", rec.get("images"))
    if isinstance(image, (list, tuple)):
        image = image[0] if image else None
    if image is None:
        raise DataError("has no image", str(rec.get("id", default_id)))
    if isinstance(image, str):
        image = image_root / image
        rec["image"] = str(image)
    else:
        rec.pop("image", None)
    rec.pop("images", None)
    fields = (trace_field, *TRACE_FIELDS)
    trace = next((rec[f] for f in fields if isinstance(rec.get(f), str)), None)
    for f in fields:
        rec.pop(f, None)
    if isinstance(rec.get("ground_truth"), (str, Mapping)):  # a nested ground-truth column
        inner = rec.pop("ground_truth")
        inner = json.loads(inner) if isinstance(inner, str) else dict(inner)
        rec = {**rec, **inner}
    truth = GroundTruth.from_dict(rec, default_id)
    if not truth.question:
        raise DataError("has no question", truth.id)
    size = ImageSize(truth.width, truth.height) if truth.image_size else _open_size(image, truth.id)
    if not truth.image_size:
        truth = replace(truth, width=size.width, height=size.height)
    return Example(truth, image, size, trace)


def read_examples(path: str | Path, images: str | Path | None = None, trace_field: str = "completion",
                  split: str = "train", limit: int | None = None) -> list[Example]:
    """Examples from a JSONL/JSON file (image paths relative to ``images`` or the file's folder)
    or from an HF dataset directory saved with ``save_to_disk`` (``split`` of a DatasetDict)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"training data not found: {p} (config key data.train)")
    root = Path(images) if images else (p if p.is_dir() else p.parent)
    out: list[Example] = []
    for n, (rid, record) in enumerate(_records(p, split)):
        if limit is not None and n >= limit:
            break
        out.append(_example(record, rid, root, trace_field))
    if not out:
        raise DataError(f"no training records in {p}")
    return out


def _records(p: Path, split: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if p.is_dir():
        import datasets

        try:
            ds = datasets.load_from_disk(str(p))
        except (FileNotFoundError, ValueError) as exc:
            raise DataError(f"{p} is not a dataset saved with save_to_disk: {exc}") from exc
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise DataError(f"{p} has no split {split!r} (config key data.split); splits: {', '.join(ds)}")
            ds = ds[split]
        for i, row in enumerate(ds):
            yield f"{p.name}[{i}]", row
        return
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json":
        items = json.loads(text)
        for i, item in enumerate(items if isinstance(items, list) else [items], 1):
            yield f"{p.stem}[{i}]", item
        return
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield f"line {n}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}: not JSON ({exc.msg})", f"line {n}") from exc


def prompt_messages(question: str, instruction: str | None) -> list[dict[str, str]]:
    """The conversational prompt (TRL puts the image before the user text); no system message
    when ``instruction`` is None."""
    system = [] if instruction is None else [{"role": "system", "content": instruction}]
    return [*system, {"role": "user", "content": question}]


def oracle_trace(ex: Example, grammar: ComposedGrammar) -> str:
    """A correct grounded trace from the ground truth (points for counting, boxes for the rest),
    keeping only the grammar's grounding types, in its dialect and frame."""
    from groundkit.scenes.simulate import NoisyOracle

    dialect = grammar.dialect.name
    text = NoisyOracle(wrong=0.0, invalid=0.0, jitter=0.0, dialect=dialect).complete(ex.truth)
    trace = get_parser(dialect).parse(text, ex.size)
    allowed = {t.name for t in grammar.types}
    kept = tuple(s for s in trace.think if not isinstance(s, Grounding) or s.type in allowed)
    return format_trace(Trace(kept, trace.answer), dialect, grammar.frame.name, image_size=ex.size, lossy=True)


def target_trace(ex: Example, grammar: ComposedGrammar, parser: TraceParser, source_dialect: str | None) -> str:
    """The example's trace in the training dialect and frame; a DataError names the record if it does not fit."""
    if ex.trace is None:
        raise DataError("has no trace for SFT (set data.trace_field, or data.traces: oracle)", ex.truth.id)
    text = ex.trace
    try:
        if source_dialect is not None and source_dialect != grammar.dialect.name:
            trace = get_parser(source_dialect).parse(text, ex.size)
            text = format_trace(trace, grammar.dialect.name, grammar.frame.name, image_size=ex.size)
        parser.parse(text, ex.size)
    except GroundkitError as exc:
        raise DataError(f"trace does not fit dialect {grammar.dialect.name!r} / frame {grammar.frame.name!r} "
                        f"/ types {[t.name for t in grammar.types]}: {exc}", ex.truth.id) from exc
    return text


def _dataset(rows: list[dict[str, Any]]) -> Any:
    import datasets

    ds = datasets.Dataset.from_list(rows)
    if rows and isinstance(rows[0]["images"][0], str):
        ds = ds.cast_column("images", datasets.Sequence(datasets.Image()))
    return ds


def _image_value(ex: Example) -> Any:
    return str(ex.image) if isinstance(ex.image, (str, Path)) else ex.image


def sft_dataset(examples: list[Example], grammar: ComposedGrammar, traces: str = "dataset",
                trace_dialect: str | None = None, instruction: str = "full") -> Any:
    """A prompt/completion ``datasets.Dataset`` for TRL's SFTTrainer (loss on completion tokens only)."""
    parser = TraceParser(grammar)
    rows = []
    for ex in examples:
        text = oracle_trace(ex, grammar) if traces == "oracle" else target_trace(ex, grammar, parser, trace_dialect)
        rows.append({
            "prompt": prompt_messages(ex.truth.question or "", prompt_instruction(instruction, grammar, ex.size)),
            "completion": [{"role": "assistant", "content": text}],
            "images": [_image_value(ex)],
        })
    return _dataset(rows)


def grpo_dataset(examples: list[Example], grammar: ComposedGrammar, dual_stream: bool = False,
                 textual_instruction: str | None = None, instruction: str = "full") -> Any:
    """A prompt-only ``datasets.Dataset`` for TRL's GRPOTrainer, ground truth in the ``ground_truth`` column."""
    rows = []
    for ex in examples:
        truth = ex.truth.to_dict()
        truth.pop("image", None)
        row = {
            "prompt": prompt_messages(ex.truth.question or "", prompt_instruction(instruction, grammar, ex.size)),
            "images": [_image_value(ex)],
            "ground_truth": json.dumps(truth, sort_keys=True),
            "sample_id": ex.truth.id,
        }
        if dual_stream:
            row["textual_prompt"] = prompt_messages(ex.truth.question or "", textual_instruction or TEXTUAL_INSTRUCTION)
        rows.append(row)
    return _dataset(rows)


def reference_rows(examples: list[Example], grammar: ComposedGrammar, n: int, instruction: str = "full") -> list[dict[str, Any]]:
    """Up to ``n`` SFT-style rows (prompt, reference completion, images) for diagnostics during GRPO:
    the example's own trace when it fits the grammar, else an oracle trace from its ground truth."""
    parser = TraceParser(grammar)
    rows: list[dict[str, Any]] = []
    for ex in examples:
        if len(rows) == n:
            break
        try:
            text = target_trace(ex, grammar, parser, None) if ex.trace is not None else oracle_trace(ex, grammar)
        except GroundkitError:
            continue
        rows.append({
            "prompt": prompt_messages(ex.truth.question or "", prompt_instruction(instruction, grammar, ex.size)),
            "completion": [{"role": "assistant", "content": text}],
            "images": [ex.image if not isinstance(ex.image, (str, Path)) else _open_image(ex.image)],
        })
    return rows


def _open_image(path: str | Path) -> Any:
    return open_rgb(path)
