"""Built-in benchmark adapters: scenes, countbenchqa, pixmo-count, cv-bench-2d, vsr, blink, whatsup.

Each reads a local copy in the benchmark's published layout (field names as published; a
``datasets`` ``save_to_disk`` export or a JSONL of the same rows works too) and yields
ground-truth records with ``task`` = ``counting`` or ``spatial``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from groundkit import (
    BenchmarkAdapter,
    DataError,
    GroundTruth,
    Row,
    find_image,
    hookimpl,
    image_file,
    option_letter,
    read_rows,
    truth_from_fields,
)

Item = GroundTruth | DataError
RELATIONS = re.compile(r"\b(left of|right of|in front of|behind|on top of|on|under|above|below|next to|inside|in)\b", re.I)


def _options(question: str, choices: list[str]) -> str:
    return question.rstrip() + "\n" + "\n".join(f"({chr(65 + k)}) {c}" for k, c in enumerate(choices))


def _rows(path: Path) -> Iterator[tuple[Row | None, DataError | None]]:
    for row in read_rows(path):
        yield (None, row) if isinstance(row, DataError) else (row, None)


def _int(value: Any, what: str, rid: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or not str(value).strip().lstrip("-").isdigit():
        raise DataError(f"{what} must be an integer, got {value!r}", rid)
    return int(value)


class Scenes(BenchmarkAdapter):
    name = "scenes"
    description = "ground-truth JSONL as `groundkit scenes` writes it (or any file in the ground-truth schema)"
    formats = "a .jsonl file, or a `groundkit scenes` folder (test.jsonl, else scenes.jsonl)"

    def load(self, path: Path, media_dir: Path | None = None) -> Iterator[Item]:
        if path.is_dir():
            found = [path / n for n in ("test.jsonl", "scenes.jsonl") if (path / n).exists()] or sorted(path.glob("*.jsonl"))
            if not found:
                raise DataError(f"no .jsonl ground truth in {path}")
            path = found[0]
        for row, err in _rows(path):
            if err is not None or row is None:
                yield err  # type: ignore[misc]
                continue
            d = dict(row.data)
            rid = str(d.get("id", f"line {row.id}"))
            if isinstance(d.get("image"), str):
                found_image = find_image(d["image"], [row.source.parent])
                d["image"] = str(found_image.resolve()) if found_image else d["image"]
            yield truth_from_fields(d, rid)


class CountBenchQA(BenchmarkAdapter):
    name = "countbenchqa"
    description = "CountBenchQA: image, question, number (counting)"
    formats = "the published parquet (image struct, text, question, number), or a JSONL with an image path"

    def load(self, path: Path, media_dir: Path | None = None) -> Iterator[Item]:
        for row, err in _rows(path):
            if row is None:
                yield err  # type: ignore[misc]
                continue
            d, rid = row.data, str(row.data.get("idx", row.id))
            try:
                image, size = image_file(d.get("image"), rid, row, media_dir)
                number = _int(d.get("number"), "number", rid)
                if not isinstance(d.get("question"), str):
                    raise DataError("question is missing", rid)
            except DataError as exc:
                yield exc
                continue
            yield truth_from_fields(
                {"image": image, "width": size and size[0], "height": size and size[1], "question": d["question"],
                 "answer": str(number), "answer_type": "count", "task": "counting", "caption": d.get("text")}, rid)


def _pixmo_points(points: Any, rid: str) -> list[tuple[float, float]]:
    """PixMo points as a list of {x, y} or, as HF stores a sequence of structs, {x: [...], y: [...]}."""
    if points is None:
        return []
    if isinstance(points, dict):
        xs, ys = points.get("x") or [], points.get("y") or []
        if len(xs) != len(ys):
            raise DataError("points.x and points.y differ in length", rid)
        return [(float(x), float(y)) for x, y in zip(xs, ys)]
    try:
        return [(float(p["x"]), float(p["y"])) for p in points]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"points must be a list of {{x, y}} in pixels: {exc}", rid) from exc


class PixMoCount(BenchmarkAdapter):
    name = "pixmo-count"
    description = "PixMo-Count: image, label, count, points in pixels (counting; points become point-only objects)"
    formats = "the published parquet/JSONL (image_url, image_sha256, label, count, points) with images saved as images/<sha256>.<ext> or an image column"

    def load(self, path: Path, media_dir: Path | None = None) -> Iterator[Item]:
        for row, err in _rows(path):
            if row is None:
                yield err  # type: ignore[misc]
                continue
            d = row.data
            rid = str(d.get("id") or f"{str(d.get('image_sha256') or 'row')[:16]}-{row.id}")
            try:
                yield self._record(d, rid, row, media_dir)
            except DataError as exc:
                yield exc

    def _record(self, d: dict[str, Any], rid: str, row: Row, media_dir: Path | None) -> Item:
        label = d.get("label")
        if not isinstance(label, str) or not label.strip():
            raise DataError("label is missing", rid)
        count = _int(d.get("count"), "count", rid)
        image = d.get("image") or d.get("image_path")
        if image is None and d.get("image_sha256"):
            sha = str(d["image_sha256"])
            url_name = str(d.get("image_url") or "").rsplit("/", 1)[-1]
            names = [sha + ext for ext in (".jpg", ".jpeg", ".png", ".webp")] + ([url_name] if url_name else [])
            image = next((str(f) for n in names if (f := find_image(n, [row.source.parent])) is not None), None)
        path, size = image_file(image, rid, row, media_dir) if image is not None else (None, None)
        points = _pixmo_points(d.get("points"), rid)
        objects = None
        if points:
            if size is None:
                raise DataError("points are in pixels and the image is not found (save it as images/<image_sha256>.jpg beside the data)", rid)
            w, h = size
            objects = [{"label": label, "points": [[min(max(x / w, 0.0), 1.0), min(max(y / h, 0.0), 1.0)]]} for x, y in points]
        return truth_from_fields(
            {"image": path, "width": size and size[0], "height": size and size[1], "question": f"How many {label} are there?",
             "answer": str(count), "answer_type": "count", "objects": objects, "task": "counting", "target": label}, rid)


class CVBench2D(BenchmarkAdapter):
    name = "cv-bench-2d"
    description = "CV-Bench 2D: Count and Relation tasks, multiple choice (3D rows are skipped)"
    formats = "test_2d.parquet / test.parquet / test.jsonl (idx, type, task, image or filename, question, choices, answer '(A)')"
    TASKS = {"count": "counting", "relation": "spatial"}

    def load(self, path: Path, media_dir: Path | None = None) -> Iterator[Item]:
        for row, err in _rows(path):
            if row is None:
                yield err  # type: ignore[misc]
                continue
            d, rid = row.data, str(row.data.get("idx", row.id))
            task = self.TASKS.get(str(d.get("task", "")).lower())
            if str(d.get("type", "2D")).upper() != "2D" or task is None:
                continue
            try:
                choices = [str(c) for c in d.get("choices") or []]
                letter = option_letter(d.get("answer"), len(choices), rid)
                image, size = image_file(d.get("image") or d.get("filename"), rid, row, media_dir)
            except DataError as exc:
                yield exc
                continue
            yield truth_from_fields(
                {"image": image, "width": size and size[0], "height": size and size[1], "question": _options(str(d.get("question", "")), choices),
                 "answer": letter, "answer_type": "multiple_choice", "choices": choices, "task": task,
                 "source_dataset": d.get("source_dataset")}, rid)


class VSR(BenchmarkAdapter):
    name = "vsr"
    description = "Visual Spatial Reasoning: is the caption true of the image (yes/no)"
    formats = "the published JSONL (image, caption, label 0/1, relation); images beside it or under images/"

    def load(self, path: Path, media_dir: Path | None = None) -> Iterator[Item]:
        for row, err in _rows(path):
            if row is None:
                yield err  # type: ignore[misc]
                continue
            d = row.data
            rid = str(d.get("id") or f"{Path(str(d.get('image', 'row'))).stem}-{row.id}")
            label = d.get("label")
            truth = {1: "yes", 0: "no", "1": "yes", "0": "no", "true": "yes", "false": "no"}.get(str(label).lower() if isinstance(label, (bool, str)) else label)
            if not isinstance(d.get("caption"), str) or truth is None:
                yield DataError(f"needs a caption and a label 0/1 (got label {label!r})", rid)
                continue
            try:
                image, size = image_file(d.get("image"), rid, row, media_dir)
            except DataError as exc:
                yield exc
                continue
            yield truth_from_fields(
                {"image": image, "width": size and size[0], "height": size and size[1],
                 "question": f"Is this statement about the image true: \"{d['caption']}\"? Answer yes or no.",
                 "answer": truth, "answer_type": "yes_no", "task": "spatial", "relation": d.get("relation")}, rid)


class Blink(BenchmarkAdapter):
    name = "blink"
    description = "BLINK Counting and Spatial_Relation subtasks (multiple choice; other subtasks are skipped)"
    formats = "the published parquet folders (Counting/, Spatial_Relation/; idx, question, sub_task, image_1, choices, answer '(A)')"
    TASKS = {"counting": "counting", "spatial_relation": "spatial"}

    def load(self, path: Path, media_dir: Path | None = None) -> Iterator[Item]:
        for row, err in _rows(path):
            if row is None:
                yield err  # type: ignore[misc]
                continue
            d, rid = row.data, str(row.data.get("idx", row.id))
            sub = str(d.get("sub_task") or row.source.parent.name).replace(" ", "_").lower()
            task = self.TASKS.get(sub)
            if task is None:
                continue
            try:
                choices = [str(c) for c in d.get("choices") or []]
                if not str(d.get("answer") or "").strip():
                    raise DataError("no answer (BLINK's test split hides its answers; use val)", rid)
                letter = option_letter(d.get("answer"), len(choices), rid)
                image, size = image_file(d.get("image_1"), rid, row, media_dir)
            except DataError as exc:
                yield exc
                continue
            yield truth_from_fields(
                {"image": image, "width": size and size[0], "height": size and size[1], "question": _options(str(d.get("question", "")), choices),
                 "answer": letter, "answer_type": "multiple_choice", "choices": choices, "task": task}, rid)


class WhatsUp(BenchmarkAdapter):
    name = "whatsup"
    description = "What'sUp: pick the caption with the right spatial preposition (first option is correct; options are shuffled per record)"
    formats = "controlled_images_dataset.json / controlled_clevr_dataset.json (image_path, caption_options)"

    def load(self, path: Path, media_dir: Path | None = None) -> Iterator[Item]:
        for row, err in _rows(path):
            if row is None:
                yield err  # type: ignore[misc]
                continue
            d = row.data
            options = d.get("caption_options")
            rid = str(d.get("id") or f"{Path(str(d.get('image_path', 'row'))).stem}")
            if not isinstance(options, list) or len(options) < 2 or not isinstance(d.get("image_path"), str):
                yield DataError("needs image_path and at least two caption_options", rid)
                continue
            order = sorted(range(len(options)), key=lambda k: zlib.crc32(f"{rid}/{k}".encode()))
            choices = [str(options[k]) for k in order]
            try:
                image, size = image_file(d["image_path"], rid, row, media_dir)
            except DataError as exc:
                yield exc
                continue
            relation = RELATIONS.search(str(options[0]))
            yield truth_from_fields(
                {"image": image, "width": size and size[0], "height": size and size[1],
                 "question": _options("Which caption describes the image?", choices), "answer": chr(65 + order.index(0)),
                 "answer_type": "multiple_choice", "choices": choices, "task": "spatial",
                 "relation": relation.group(1).lower() if relation else None}, rid)


ADAPTERS = (Scenes(), CountBenchQA(), PixMoCount(), CVBench2D(), VSR(), Blink(), WhatsUp())


@hookimpl
def register_benchmark_adapters(register):
    for adapter in ADAPTERS:
        register(adapter)
