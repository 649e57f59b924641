"""Built-in benchmark adapters: scenes, countbenchqa, pixmo-count, cv-bench-2d, vsr, blink, whatsup.

Each reads a local copy in the layouts its authors publish (the Hugging Face parquet with
embedded images, and the repository / download form with images on disk; a ``datasets``
``save_to_disk`` export works too), one split at a time, and yields ground-truth records with
``task`` = ``counting`` or ``spatial``. Record ids come from the data (``idx``, image hash,
image id + caption), not from row positions, so they do not move when files are mixed.
"""

from __future__ import annotations

import hashlib
import logging
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
    image_bases,
    image_file,
    missing_image,
    option_letter,
    read_image_size,
    read_rows,
    truth_from_fields,
)

Item = GroundTruth | DataError
log = logging.getLogger("groundkit.benchmarks")
RELATIONS = ("left", "right", "in front of", "behind", "on top of", "above", "below", "under", "beneath", "next to", "inside",
             "front", "top", "bottom", "on", "in")
IMAGE_EXTS = ("", ".jpg", ".jpeg", ".png", ".webp", ".gif")


def _options(question: str, choices: list[str]) -> str:
    return question.rstrip() + "\n" + "\n".join(f"({chr(65 + k)}) {c}" for k, c in enumerate(choices))


def _int(value: Any, what: str, rid: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or not str(value).strip().lstrip("-").isdigit():
        raise DataError(f"{what} must be an integer, got {value!r}", rid)
    return int(value)


def _relation(caption: str) -> str | None:
    """The spatial preposition of a caption (the first of RELATIONS it contains)."""
    low = caption.lower()
    return next((r for r in RELATIONS if re.search(rf"\b{r}\b", low)), None)


def _sized(fields: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    return {**fields, "width": size[0], "height": size[1]}


class _Ids:
    """Record ids from the data; a repeat gets ``~2``, ``~3``, ... in reading order."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, base: str) -> str:
        n = self.seen[base] = self.seen.get(base, 0) + 1
        return base if n == 1 else f"{base}~{n}"


class Scenes(BenchmarkAdapter):
    name = "scenes"
    description = "ground-truth JSONL as `groundkit scenes` writes it (or any file in the ground-truth schema)"
    formats = "a .jsonl file, or a `groundkit scenes` folder (test.jsonl, else scenes.jsonl; :SPLIT picks SPLIT.jsonl)"

    def load(self, path: Path, media_dir: Path | None = None, split: str | None = None, images: Path | None = None) -> Iterator[Item]:
        if path.is_dir():
            names = [f"{split}.jsonl"] if split else ["test.jsonl", "scenes.jsonl"]
            found = [path / n for n in names if (path / n).exists()] or ([] if split else sorted(path.glob("*.jsonl")))
            if not found:
                raise DataError(f"no {' or '.join(names)} ground truth in {path}")
            path = found[0]
        for row in read_rows(path):
            if isinstance(row, DataError):
                yield row
                continue
            d = dict(row.data)
            rid = str(d.get("id", f"line {row.id}"))
            if isinstance(d.get("image"), str):
                found_image = find_image(d["image"], image_bases(row, images))
                d["image"] = str(found_image.resolve()) if found_image else d["image"]
            yield truth_from_fields(d, rid)


class CountBenchQA(BenchmarkAdapter):
    name = "countbenchqa"
    description = "CountBenchQA: image, question, number (counting)"
    formats = "the published parquet (image struct, text, question, number), or a JSONL with an image path"

    def load(self, path: Path, media_dir: Path | None = None, split: str | None = None, images: Path | None = None) -> Iterator[Item]:
        for row in read_rows(path, split):
            if isinstance(row, DataError):
                yield row
                continue
            d, rid = row.data, str(row.data.get("idx", row.id))
            try:
                number = _int(d.get("number"), "number", rid)
                if not isinstance(d.get("question"), str):
                    raise DataError("question is missing", rid)
                image, size = image_file(d.get("image"), rid, row, media_dir, image_bases(row, images))
            except DataError as exc:
                yield exc
                continue
            yield truth_from_fields(_sized(
                {"image": image, "question": d["question"], "answer": str(number), "answer_type": "count", "task": "counting",
                 "caption": d.get("text")}, size), rid)


def _pixmo_points(points: Any, rid: str) -> list[tuple[float, float]]:
    """PixMo points: HF stores its sequence of {x, y} as a struct of lists {x: [...], y: [...]};
    a list of {x, y} is read too. Absent (the validation and test splits): no points."""
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
        raise DataError(f"points must be {{x: [...], y: [...]}} or a list of {{x, y}} in pixels: {exc}", rid) from exc


class PixMoCount(BenchmarkAdapter):
    name = "pixmo-count"
    description = "PixMo-Count: image, label, count, points in pixels (counting; points become point-only objects)"
    formats = ("the published parquet (data/{train,validation,test}-*.parquet: image_url, image_sha256, count, points, label) "
               "with images saved by Molmo's downloader as sha256(image_url) (no extension) or as <image_sha256>.<ext>, "
               "beside the data, one folder up or in --images; or an image column")
    SUBDIRS = ("", "images", "pixmo_images")

    def load(self, path: Path, media_dir: Path | None = None, split: str | None = None, images: Path | None = None) -> Iterator[Item]:
        ids = _Ids()
        for row in read_rows(path, split):
            if isinstance(row, DataError):
                yield row
                continue
            d = row.data
            url = str(d.get("image_url") or "")
            key = str(d.get("image_sha256") or (hashlib.sha256(url.encode()).hexdigest() if url else f"row{row.id}"))
            label = d.get("label")
            rid = str(d.get("id") or ids(f"{key[:16]}-{re.sub(r'[^A-Za-z0-9]+', '_', str(label or '')).strip('_') or 'unlabelled'}"))
            try:
                yield self._record(d, rid, row, url, media_dir, images)
            except DataError as exc:
                yield exc

    def _image(self, d: dict[str, Any], rid: str, row: Row, url: str, media_dir: Path | None, images: Path | None) -> tuple[str | None, tuple[int, int]]:
        if d.get("image") is not None or d.get("image_path"):
            return image_file(d.get("image") or d.get("image_path"), rid, row, media_dir, image_bases(row, images), self.SUBDIRS)
        stems = ([hashlib.sha256(url.encode()).hexdigest()] if url else []) + ([str(d["image_sha256"])] if d.get("image_sha256") else [])
        if not stems:
            raise DataError("the row has no image, image_url or image_sha256", rid)
        bases = image_bases(row, images)
        for name in (s + ext for s in stems for ext in IMAGE_EXTS):
            found = find_image(name, bases, self.SUBDIRS)
            if found is not None:
                return read_image_size(found, rid)
        raise DataError(missing_image(f"{stems[0]} (sha256 of image_url, as Molmo's downloader names it)", bases), rid)

    def _record(self, d: dict[str, Any], rid: str, row: Row, url: str, media_dir: Path | None, images: Path | None) -> Item:
        label = d.get("label")
        if not isinstance(label, str) or not label.strip():
            raise DataError("label is missing", rid)
        count = _int(d.get("count"), "count", rid)
        points = _pixmo_points(d.get("points"), rid)
        path, (w, h) = self._image(d, rid, row, url, media_dir, images)
        objects = [{"label": label, "points": [[min(max(x / w, 0.0), 1.0), min(max(y / h, 0.0), 1.0)]]} for x, y in points] or None
        return truth_from_fields(
            {"image": path, "width": w, "height": h, "question": f"How many {label} are there?", "answer": str(count),
             "answer_type": "count", "objects": objects, "task": "counting", "target": label}, rid)


class CVBench2D(BenchmarkAdapter):
    name = "cv-bench-2d"
    description = "CV-Bench 2D: Count and Relation tasks, multiple choice (3D rows are skipped)"
    formats = ("the Hugging Face repo folder (test_2d.parquet with embedded images, read once even beside test_2d.jsonl; "
               "older copies: test.parquet / test.jsonl + img/), or one of those files")
    TASKS = {"count": "counting", "relation": "spatial"}

    def load(self, path: Path, media_dir: Path | None = None, split: str | None = None, images: Path | None = None) -> Iterator[Item]:
        kept = skipped = 0
        for row in read_rows(path, split, prefer=("test_2d", "test")):
            if isinstance(row, DataError):
                yield row
                continue
            d, rid = row.data, str(row.data.get("idx", row.id))
            task = self.TASKS.get(str(d.get("task", "")).lower())
            if str(d.get("type", "2D")).upper() != "2D" or task is None:
                skipped += 1
                continue
            kept += 1
            try:
                choices = [str(c) for c in d.get("choices") or []]
                letter = option_letter(d.get("answer"), len(choices), rid)
                image, size = image_file(d.get("image") or d.get("filename"), rid, row, media_dir, image_bases(row, images))
            except DataError as exc:
                yield exc
                continue
            yield truth_from_fields(_sized(
                {"image": image, "question": _options(str(d.get("question", "")), choices), "answer": letter,
                 "answer_type": "multiple_choice", "choices": choices, "task": task, "source_dataset": d.get("source_dataset")}, size), rid)
        if skipped and not kept:
            yield DataError(f"cv-bench-2d reads the 2D Count and Relation rows; {path}{f' split {split}' if split else ''} has none ({skipped} other rows)")


class VSR(BenchmarkAdapter):
    name = "vsr"
    description = "Visual Spatial Reasoning: is the caption true of the image (yes/no)"
    formats = ("the GitHub repo (data/splits/{random,zeroshot}/{train,dev,test}.jsonl; images in data/images/, "
               "data/trainval2017/ or COCO train2017/ val2017/ by image_link) or the Hugging Face vsr_random / vsr_zeroshot JSONL")

    def load(self, path: Path, media_dir: Path | None = None, split: str | None = None, images: Path | None = None) -> Iterator[Item]:
        ids = _Ids()
        for row in read_rows(path, split):
            if isinstance(row, DataError):
                yield row
                continue
            d = row.data
            caption = d.get("caption")
            rid = str(d.get("id") or ids(f"{Path(str(d.get('image') or 'row')).stem}-{zlib.crc32(str(caption).encode()):08x}"))
            label = d.get("label")
            truth = {1: "yes", 0: "no", "1": "yes", "0": "no", "true": "yes", "false": "no"}.get(str(label).lower() if isinstance(label, (bool, str)) else label)
            if not isinstance(caption, str) or truth is None:
                yield DataError(f"needs a caption and a label 0/1 (got label {label!r})", rid)
                continue
            link_dir = str(d.get("image_link") or "").rstrip("/").rsplit("/", 2)[-2:-1]  # ".../train2017/x.jpg" -> ["train2017"]
            subdirs = ("", "images", "trainval2017", *link_dir, *(f"coco/{f}" for f in link_dir), *(f"coco/images/{f}" for f in link_dir))
            try:
                image, size = image_file(d.get("image"), rid, row, media_dir, image_bases(row, images, up=3), subdirs)
            except DataError as exc:
                yield exc
                continue
            yield truth_from_fields(_sized(
                {"image": image, "question": f"Is this statement about the image true: \"{caption}\"? Answer yes or no.",
                 "answer": truth, "answer_type": "yes_no", "task": "spatial", "relation": d.get("relation")}, size), rid)


class Blink(BenchmarkAdapter):
    name = "blink"
    description = "BLINK Counting, Spatial_Relation and Relative_Depth subtasks (multiple choice; test answers are hidden: generation only)"
    formats = "the Hugging Face repo folder (<Subtask>/{val,test}-00000-of-00001.parquet: idx, question, sub_task, image_1..4, choices, answer) or one subtask's file"
    TASKS = {"counting": "counting", "spatial_relation": "spatial", "relative_depth": "spatial"}

    def load(self, path: Path, media_dir: Path | None = None, split: str | None = None, images: Path | None = None) -> Iterator[Item]:
        kept, hidden, skipped = 0, 0, {}
        for row in read_rows(path, split, subsets_by_folder=True):
            if isinstance(row, DataError):
                yield row
                continue
            d, rid = row.data, str(row.data.get("idx", row.id))
            sub = str(d.get("sub_task") or row.source.parent.name).replace(" ", "_")
            task = self.TASKS.get(sub.lower())
            if task is None:
                skipped[sub] = skipped.get(sub, 0) + 1
                continue
            kept += 1
            answer = str(d.get("answer") or "").strip()
            try:
                choices = [str(c) for c in d.get("choices") or []]
                letter = None if answer.lower() in ("", "hidden") else option_letter(answer, len(choices), rid)
                image, size = image_file(d.get("image_1"), rid, row, media_dir, image_bases(row, images))
            except DataError as exc:
                yield exc
                continue
            hidden += letter is None
            yield truth_from_fields(_sized(
                {"image": image, "question": _options(str(d.get("question", "")), choices), "answer": letter,
                 "answer_type": "multiple_choice", "choices": choices, "task": task, "sub_task": sub}, size), rid)
        if hidden:
            log.warning("blink: %d records have hidden answers (BLINK's test split): generation only, not scored; use the val split to score", hidden)
        if skipped:
            names = ", ".join(f"{k} ({v})" for k, v in sorted(skipped.items()))
            if kept:
                log.warning("blink: subtasks not read (not counting or spatial): %s", names)
            else:
                yield DataError(f"BLINK subtask {names} is not supported (supported: Counting, Spatial_Relation, Relative_Depth)")


class WhatsUp(BenchmarkAdapter):
    name = "whatsup"
    description = "What'sUp: pick the caption with the right spatial preposition (first option is correct; options are shuffled per record)"
    formats = ("the authors' data/ folder: controlled_images_dataset.json, controlled_clevr_dataset.json, "
               "coco_qa_{one,two}_obj.json, vg_qa_{one,two}_obj.json ([image_id, true_caption, false_caption]; "
               "images in val2017/{id:012d}.jpg and vg_images/{id}.jpg); :SPLIT picks subsets (A, B, coco, gqa or file stems, comma-separated)")
    FILES = ("controlled_images_dataset", "controlled_clevr_dataset", "coco_qa_one_obj", "coco_qa_two_obj", "vg_qa_one_obj", "vg_qa_two_obj")
    GROUPS = {"a": FILES[0:1], "b": FILES[1:2], "controlled": FILES[0:2], "coco": FILES[2:4], "gqa": FILES[4:6], "vg": FILES[4:6]}
    QA_IMAGES = {"coco": ("val2017", "{:012d}.jpg"), "vg": ("vg_images", "{}.jpg")}

    def _files(self, path: Path, split: str | None) -> list[Path]:
        if path.is_file():
            return [path]
        if not path.exists():
            raise DataError(f"benchmark data not found: {path}")
        wanted: list[str] = []
        for part in (split.split(",") if split else self.FILES):
            part = part.strip().lower().removesuffix(".json")
            names = self.GROUPS.get(part) or [f for f in self.FILES if f == part or f == f"{part}_dataset"]
            if not names:
                raise DataError(f"whatsup has no subset {part!r} (subsets: A, B, controlled, coco, gqa, or {', '.join(self.FILES)})")
            wanted += names
        folders = [path, path / "data"]
        found = [next((d / f"{n}.json" for d in folders if (d / f"{n}.json").is_file()), None) for n in dict.fromkeys(wanted)]
        if split and None in found:
            raise DataError(f"{', '.join(n for n, f in zip(dict.fromkeys(wanted), found) if f is None)}.json not found in {path} or {path / 'data'}")
        files = [f for f in found if f is not None]
        if not files:
            raise DataError(f"no What'sUp files ({', '.join(self.FILES)}.json) in {path} or {path / 'data'}")
        return files

    def load(self, path: Path, media_dir: Path | None = None, split: str | None = None, images: Path | None = None) -> Iterator[Item]:
        for f in self._files(path, split):
            subset, ids = f.stem.removesuffix("_dataset"), _Ids()
            for row in read_rows(f):
                if isinstance(row, DataError):
                    yield row
                    continue
                try:
                    yield self._record(row, subset, ids, media_dir, images)
                except DataError as exc:
                    yield exc

    def _record(self, row: Row, subset: str, ids: _Ids, media_dir: Path | None, images: Path | None) -> Item:
        d, bases = row.data, image_bases(row, images)
        if isinstance(d.get("value"), list):  # COCO-spatial / GQA-spatial: [image_id, true_caption, false_caption]
            value = d["value"]
            rid = ids(f"{subset}/{value[0] if value else 'row' + row.id}")
            if len(value) < 3 or not all(isinstance(c, str) for c in value[1:]) or isinstance(value[0], bool) or not str(value[0]).isdigit():
                raise DataError(f"{subset} rows are [image_id, true_caption, false_caption], got {str(value)[:80]}", rid)
            folder, pattern = self.QA_IMAGES["vg" if subset.startswith("vg") else "coco"]
            name = pattern.format(int(value[0]))
            options = [str(c) for c in value[1:]]
            image, size = image_file(name, rid, row, media_dir, bases, (folder, "", "images"))
        else:  # Controlled-A / -B: {"image_path": "data/controlled_images/x.jpeg", "caption_options": [...]}
            options, image_path = d.get("caption_options"), d.get("image_path")
            rid = ids(f"{subset}/{Path(str(image_path or 'row' + row.id)).stem}")
            if not isinstance(options, list) or len(options) < 2 or not isinstance(image_path, str):
                raise DataError("needs image_path and at least two caption_options", rid)
            image, size = image_file(image_path, rid, row, media_dir, bases, ("", "images", subset))
        order = sorted(range(len(options)), key=lambda k: zlib.crc32(f"{rid}/{k}".encode()))
        choices = [str(options[k]) for k in order]
        return truth_from_fields(_sized(
            {"image": image, "question": _options("Which caption describes the image?", choices), "answer": chr(65 + order.index(0)),
             "answer_type": "multiple_choice", "choices": choices, "task": "spatial", "subset": subset,
             "relation": _relation(str(options[0]))}, size), rid)


ADAPTERS = (Scenes(), CountBenchQA(), PixMoCount(), CVBench2D(), VSR(), Blink(), WhatsUp())


@hookimpl
def register_benchmark_adapters(register):
    for adapter in ADAPTERS:
        register(adapter)
