"""Opening images from data: every way a file can be unusable becomes a :class:`DataError`
naming the record (missing, truncated, not an image, a decompression bomb)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from groundkit.errors import DataError

#: What PIL raises for an unusable image file.
IMAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError, SyntaxError, Image.DecompressionBombError)


def open_rgb(source: Any, record_id: str | None = None) -> Image.Image:
    """An RGB copy of ``source`` (a PIL image or a path), fully loaded."""
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    try:
        with Image.open(Path(source)) as img:
            return img.convert("RGB")
    except IMAGE_ERRORS as exc:
        raise DataError(f"cannot open image {str(source)!r}: {type(exc).__name__}: {exc}", record_id) from exc


def image_size(source: Any, record_id: str | None = None) -> tuple[int, int]:
    """(width, height) of ``source`` (a PIL image or a path), reading only the header."""
    if hasattr(source, "size") and not isinstance(source, (str, Path)):
        return tuple(source.size)  # type: ignore[return-value]
    try:
        with Image.open(Path(source)) as img:
            return img.size
    except IMAGE_ERRORS as exc:
        raise DataError(f"cannot open image {str(source)!r}: {type(exc).__name__}: {exc}", record_id) from exc
