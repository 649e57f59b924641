"""Reading text records (completions) from JSONL / JSON / plain text files, naming each record."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundkit.errors import DataError
from groundkit.frames import ImageSize

TEXT_FIELDS = ("completion", "text", "output", "response", "trace")


@dataclass
class TextRecord:
    """One record: its id, the text to parse, optional image size and the original JSON object."""

    id: str
    text: str | None
    image_size: ImageSize | None = None
    image: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    error: DataError | None = None
    field: str | None = None


def _size(obj: dict[str, Any], rid: str) -> ImageSize | None:
    try:
        if "image_size" in obj:
            w, h = obj["image_size"]
            return ImageSize(int(w), int(h))
        if "width" in obj and "height" in obj:
            return ImageSize(int(obj["width"]), int(obj["height"]))
    except (TypeError, ValueError) as exc:
        raise DataError(f"bad image size: {exc}", rid) from exc
    return None


def record_from_object(obj: Any, default_id: str, text_field: str | None = None) -> TextRecord:
    """A :class:`TextRecord` from a JSON value (an object with a text field, or a bare string)."""
    if isinstance(obj, str):
        return TextRecord(default_id, obj)
    if not isinstance(obj, dict):
        return TextRecord(default_id, None, error=DataError(f"expected an object or a string, got {type(obj).__name__}", default_id))
    rid = str(obj.get("id", default_id))
    fields = (text_field,) if text_field else TEXT_FIELDS
    name = next((f for f in fields if f in obj), None)
    if name is None or not isinstance(obj[name], str):
        wanted = " or ".join(repr(f) for f in fields)
        return TextRecord(rid, None, data=obj, error=DataError(f"no text field {wanted}", rid))
    try:
        size = _size(obj, rid)
    except DataError as exc:
        return TextRecord(rid, obj[name], data=obj, error=exc, field=name)
    return TextRecord(rid, obj[name], size, obj.get("image"), obj, field=name)


def read_records(path: str | Path, text_field: str | None = None) -> Iterator[TextRecord]:
    """Records of a ``.jsonl`` (one per line), ``.json`` (object or list) or text file (``-`` = stdin).

    A line that is not JSON yields a record with ``error`` set (id ``line N``), never stops the read.
    """
    name = str(path)
    if name == "-":
        content = sys.stdin.read()
        suffix = ".jsonl" if content.lstrip().startswith("{") else ".txt"
    else:
        p = Path(path)
        if not p.exists():
            raise DataError(f"file not found: {p}")
        content = p.read_text(encoding="utf-8")
        suffix = p.suffix.lower()
    if suffix == ".jsonl":
        for n, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield TextRecord(f"line {n}", None, error=DataError(f"not JSON ({exc.msg}, column {exc.colno})", f"line {n}"))
                continue
            yield record_from_object(obj, f"line {n}", text_field)
    elif suffix == ".json":
        try:
            obj = json.loads(content)
        except json.JSONDecodeError as exc:
            raise DataError(f"{name}: not JSON ({exc.msg}, line {exc.lineno}, column {exc.colno})") from exc
        items = obj if isinstance(obj, list) else [obj]
        for n, item in enumerate(items, 1):
            yield record_from_object(item, f"{Path(name).stem}[{n}]", text_field)
    else:
        yield TextRecord(Path(name).name, content)
