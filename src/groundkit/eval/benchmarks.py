"""Benchmark adapters: read local copies of public benchmarks into the ground-truth schema.

An adapter (a plugin, see ``register_benchmark_adapters``) turns the files a benchmark is
published as (JSONL, JSON, parquet, or a ``datasets`` ``save_to_disk`` folder) into
:class:`GroundTruth` records. Nothing is downloaded: the user points at files. Images
embedded in the data (parquet / HF ``Image`` columns) are written once under a media
folder so reports can show them; images referenced by name are looked up beside the data.
A bad row yields a :class:`DataError` naming it and the read goes on.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundkit.errors import DataError, GroundkitError
from groundkit.rewards.groundtruth import GroundTruth

HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_LETTER = re.compile(r"^\s*\(?([A-Za-z])\)?[.:]?\s*$")


@dataclass
class Row:
    """One row of a benchmark file: its position-based id, its fields and the file it came from."""

    id: str
    data: dict[str, Any]
    source: Path


def read_rows(path: str | Path) -> Iterator[Row | DataError]:
    """Rows of a JSONL / JSON / parquet file, a ``datasets`` ``save_to_disk`` folder, or a folder of data files."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"benchmark data not found: {p}")
    if p.is_dir():
        if any((p / m).exists() for m in HF_MARKERS):
            yield from _hf_rows(p)
            return
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in DATA_SUFFIXES and f.name != "manifest.json")
        if not files:
            raise DataError(f"no .jsonl, .json or .parquet files in {p}")
        n = 0
        for f in files:
            for row in _file_rows(f):
                n += 1
                if isinstance(row, Row):
                    row.id = str(n)
                yield row
        return
    yield from _file_rows(p)


def _file_rows(p: Path) -> Iterator[Row | DataError]:
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - pyarrow comes with datasets
            raise GroundkitError("reading parquet needs pyarrow (pip install pyarrow)") from exc
        n = 0
        for batch in pq.ParquetFile(p).iter_batches(batch_size=64):
            for data in batch.to_pylist():
                n += 1
                yield Row(str(n), data, p)
    elif suffix == ".jsonl":
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield DataError(f"{p.name}: not JSON ({exc.msg}, column {exc.colno})", f"line {n}")
                continue
            yield Row(str(n), data, p) if isinstance(data, dict) else DataError(f"{p.name}: expected an object", f"line {n}")
    elif suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{p}: not JSON ({exc.msg}, line {exc.lineno})") from exc
        if isinstance(data, Mapping):
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else [data]
        for n, item in enumerate(data, 1):
            yield Row(str(n), item if isinstance(item, dict) else {"value": item}, p)
    else:
        raise DataError(f"unsupported benchmark file {p.name} (expected .jsonl, .json, .parquet or a folder)")


def _hf_rows(p: Path) -> Iterator[Row | DataError]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets comes with trl
        raise GroundkitError("reading a save_to_disk folder needs the `datasets` package") from exc
    loaded = datasets.load_from_disk(str(p))
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    for split, ds in parts:
        for n, data in enumerate(ds, 1):
            yield Row(f"{split}/{n}" if split else str(n), dict(data), p)


def find_image(name: str, bases: Sequence[Path]) -> Path | None:
    """The first existing file ``name`` under one of ``bases`` (also tried: ``images/name`` and the bare file name)."""
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate if candidate.exists() else None
    for base in bases:
        for rel in (candidate, Path("images") / candidate, Path("images") / candidate.name, Path(candidate.name)):
            if (base / rel).is_file():
                return base / rel
    return None


def image_file(value: Any, rid: str, row: Row, media_dir: Path | None, bases: Sequence[Path] = ()) -> tuple[str | None, tuple[int, int] | None]:
    """Where a row's image is (absolute path, or None) and its (width, height), from a path,
    an HF image struct (``{"bytes", "path"}``) or a PIL image. Embedded images are written
    to ``media_dir`` (once); without a media folder only their size is read."""
    from PIL import Image

    if value is None:
        return None, None
    if isinstance(value, Image.Image):
        buf = io.BytesIO()
        value.save(buf, format=value.format or "PNG")
        value = {"bytes": buf.getvalue(), "path": None}
    if isinstance(value, Mapping) and value.get("bytes"):
        data: bytes = value["bytes"]
        try:
            img = Image.open(io.BytesIO(data))
            size, fmt = img.size, (img.format or "png").lower()
        except Exception as exc:
            raise DataError(f"embedded image is not readable: {exc}", rid) from exc
        if media_dir is None:
            return None, size
        media_dir.mkdir(parents=True, exist_ok=True)
        target = media_dir / f"{_UNSAFE.sub('_', rid)}.{'jpg' if fmt == 'jpeg' else fmt}"
        if not target.exists():
            target.write_bytes(data)
        return str(target.resolve()), size
    name = value.get("path") if isinstance(value, Mapping) else value
    if not isinstance(name, str) or not name:
        raise DataError(f"image must be a path or an embedded image, got {str(value)[:60]}", rid)
    found = find_image(name, [*bases, row.source.parent, row.source.parent.parent])
    if found is None:
        return None, None
    try:
        with Image.open(found) as img:
            return str(found.resolve()), img.size
    except Exception as exc:
        raise DataError(f"image {found} is not readable: {exc}", rid) from exc


def option_letter(answer: Any, n_choices: int, rid: str) -> str:
    """``"(B)"`` / ``"B"`` / ``"b."`` -> ``"B"``, checked against the number of choices."""
    m = _LETTER.match(str(answer)) if answer is not None else None
    if m is None or not 0 <= ord(m.group(1).upper()) - 65 < max(n_choices, 1):
        raise DataError(f"answer {answer!r} is not one of the {n_choices} option letters", rid)
    return m.group(1).upper()


def truth_from_fields(fields: dict[str, Any], rid: str) -> GroundTruth | DataError:
    """A validated :class:`GroundTruth` from schema fields, or the :class:`DataError` naming the record."""
    try:
        return GroundTruth.from_dict({"id": rid, **fields}, rid)
    except DataError as exc:
        return exc


def parse_bench_spec(spec: str) -> tuple[str, Path]:
    """``"NAME:PATH"`` -> (name, path)."""
    name, sep, path = spec.partition(":")
    if not sep or not name or not path:
        raise GroundkitError(f"a benchmark is NAME:PATH (e.g. cv-bench-2d:data/test_2d.parquet), got {spec!r}")
    return name.strip(), Path(path)


def load_benchmark(name: str, path: str | Path, media_dir: str | Path | None = None, limit: int | None = None) -> Iterator[GroundTruth | DataError]:
    """Records of benchmark ``name`` (a registered adapter) read from ``path``; at most ``limit``."""
    from groundkit.registry import get_registry

    adapter = get_registry().benchmark_adapter(name)
    n = 0
    for item in adapter.load(Path(path), Path(media_dir) if media_dir is not None else None):
        if limit is not None and n >= limit:
            return
        n += 1
        yield item
