"""Reading text records (completions) from JSONL / JSON / plain text files, naming each record."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundkit.errors import DataError, FrameError
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
            return ImageSize(w, h)
        if "width" in obj and "height" in obj:
            return ImageSize(obj["width"], obj["height"])
    except FrameError as exc:
        raise DataError(f"bad image size: {exc}", rid) from exc
    except (TypeError, ValueError) as exc:
        raise DataError(f"bad image size: image_size must be [width, height], got {str(obj['image_size'])[:60]}", rid) from exc
    return None


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes (``-`` = stdin); a :class:`DataError` when it does not exist or cannot be read."""
    if str(path) == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file not found: {p}")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc.strerror or exc}") from exc


def decode_text(data: bytes, where: str) -> str:
    """UTF-8 text (a BOM is dropped); a :class:`DataError` naming the first bad byte and its line/column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise DataError(f"{where}: not UTF-8 (byte 0x{bad} at line {line}, column {column}); re-save the file as UTF-8") from None


def jsonl_values(data: bytes, where: str, what: str = "") -> Iterator[tuple[int, Any]]:
    """``(line number, JSON value or DataError)`` for each non-blank line of JSONL bytes.

    Lines are split on ``\\n`` only (a JSON string may hold U+2028) and decoded one by one, so a
    line that is not UTF-8 or not JSON becomes a :class:`DataError` (id ``line N``) and the
    other lines still read. ``what`` starts the messages (``"ground truth is "``).
    """
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        rid = f"line {n}"
        try:
            line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1].hex()
            yield n, DataError(f"{what}not UTF-8 (byte 0x{bad} at column {exc.start + 1}); re-save the file as UTF-8", rid)
            continue
        yield n, loads_json(line, rid, what)


def loads_json(text: str, record_id: str | None, what: str = "") -> Any:
    """A JSON value, or a :class:`DataError` (returned, not raised) naming the record."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return DataError(f"{what}not JSON ({exc.msg}, column {exc.colno})", record_id)
    except RecursionError:
        return DataError(f"{what}not readable JSON (nested too deeply)", record_id)
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        return DataError(f"{what}not readable JSON ({exc})", record_id)


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

    A line that is not UTF-8 or not JSON yields a record with ``error`` set (id ``line N``),
    never stops the read. A whole ``.json`` or text file that cannot be read raises :class:`DataError`.
    """
    name = str(path)
    data = read_bytes(path)
    if name == "-":
        suffix = ".jsonl" if data.lstrip().startswith(b"{") else ".txt"
    else:
        suffix = Path(path).suffix.lower()
    if suffix == ".jsonl":
        for n, obj in jsonl_values(data, name):
            if isinstance(obj, DataError):
                yield TextRecord(f"line {n}", None, error=obj)
            else:
                yield record_from_object(obj, f"line {n}", text_field)
        return
    content = decode_text(data, name)
    if suffix == ".json":
        obj = loads_json(content, None)
        if isinstance(obj, DataError):
            raise DataError(f"{name}: {obj}")
        items = obj if isinstance(obj, list) else [obj]
        for n, item in enumerate(items, 1):
            yield record_from_object(item, f"{Path(name).stem}[{n}]", text_field)
    else:
        yield TextRecord(Path(name).name, content)
