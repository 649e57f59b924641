"""Geometry in the canonical frame (unit square) and pixel masks (COCO RLE via pycocotools)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from groundkit.errors import DataError

Box = tuple[float, float, float, float]


def box_area(b: Sequence[float]) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 when both are empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def box_contains(b: Sequence[float], x: float, y: float) -> bool:
    return b[0] <= x <= b[2] and b[1] <= y <= b[3]


def polygon_area(xy: Sequence[float]) -> float:
    """Shoelace area of a flat (x, y, x, y, ...) polygon."""
    xs, ys = np.asarray(xy[0::2], float), np.asarray(xy[1::2], float)
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2.0)


def polygon_bbox(xy: Sequence[float]) -> Box:
    xs, ys = xy[0::2], xy[1::2]
    return (min(xs), min(ys), max(xs), max(ys))


def point_in_polygon(xy: Sequence[float], x: float, y: float) -> bool:
    """Even-odd rule test of a point against a flat polygon."""
    inside = False
    n = len(xy) // 2
    for i in range(n):
        x1, y1 = xy[2 * i], xy[2 * i + 1]
        x2, y2 = xy[2 * ((i + 1) % n)], xy[2 * ((i + 1) % n) + 1]
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def rasterize_polygon(xy: Sequence[float], width: int, height: int) -> np.ndarray:
    """Boolean (height, width) mask of a unit-frame polygon drawn at the given pixel size."""
    img = Image.new("1", (width, height), 0)
    pts = [(xy[i] * width, xy[i + 1] * height) for i in range(0, len(xy) - 1, 2)]
    if len(pts) >= 2:
        ImageDraw.Draw(img).polygon(pts, fill=1, outline=1)
    return np.array(img, dtype=bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def mask_bbox(mask: np.ndarray) -> Box | None:
    """Tight unit-frame box (pixel edges) of a boolean mask, None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    return (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE (compressed counts as a str) of a boolean (height, width) mask."""
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


MAX_MASK_PIXELS = 1 << 28
"""Largest mask (height x width) :func:`rle_decode` accepts: 268 M pixels, the same order as PIL's bomb limit."""


def rle_decode(rle: Any, record_id: str | None = None) -> np.ndarray:
    """Boolean mask from COCO RLE (compressed string or uncompressed list counts).

    The RLE is checked before pycocotools sees it (which does not bound-check short counts):
    ``size`` two positive integers within :data:`MAX_MASK_PIXELS`, counts non-negative
    integers summing to height x width. Anything else is a :class:`DataError`.
    """
    from pycocotools import mask as coco_mask

    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise DataError(f"corrupt COCO RLE mask: expected an object with 'size' and 'counts', got {str(rle)[:60]}", record_id)
    size, counts = rle["size"], rle["counts"]
    if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(_is_int(v) and v > 0 for v in size):
        raise DataError(f"corrupt COCO RLE mask: size must be [height, width], two positive integers, got {str(size)[:60]}", record_id)
    h, w = (int(v) for v in size)
    if h * w > MAX_MASK_PIXELS:
        raise DataError(f"COCO RLE mask of {h}x{w} pixels exceeds the limit of {MAX_MASK_PIXELS} pixels", record_id)
    if isinstance(counts, (list, tuple)):
        bad = next((k for k, v in enumerate(counts) if not (_is_int(v) and v >= 0)), None)
        if bad is not None:
            raise DataError(f"corrupt COCO RLE mask: counts[{bad}] must be a non-negative integer, got {counts[bad]!r}", record_id)
        total = sum(int(v) for v in counts)
        code = coco_mask.frPyObjects({"size": [h, w], "counts": [int(v) for v in counts]}, h, w) if total == h * w else None
    elif isinstance(counts, (str, bytes)):
        raw = counts.encode("utf-8") if isinstance(counts, str) else counts
        total = _compressed_total(raw)
        if total is None:
            raise DataError("corrupt COCO RLE mask: counts is not a valid compressed RLE string", record_id)
        code = {"size": [h, w], "counts": raw}
    else:
        raise DataError(f"corrupt COCO RLE mask: counts must be a list or a string, got {type(counts).__name__}", record_id)
    if total != h * w:
        raise DataError(f"corrupt COCO RLE mask: counts sum to {total}, size is {h}x{w} ({h * w} pixels)", record_id)
    try:
        return coco_mask.decode(code).astype(bool)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"corrupt COCO RLE mask: {exc}", record_id) from exc


def _is_int(value: Any) -> bool:
    """An integer or an integral float (JSON writers may write 3.0), never a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()


def _compressed_total(raw: bytes) -> int | None:
    """Sum of the runs of a compressed COCO RLE string, or None when it is malformed.

    The format: each run is a little-endian sequence of 6-bit characters (offset by 48):
    5 value bits, bit 0x20 = more characters follow, bit 0x10 of the last = negative; from
    the third run on, a run is stored as the difference from the run two before it.
    """
    runs: list[int] = []
    value = shift = 0
    for byte in raw:
        c = byte - 48
        if not 0 <= c < 64:
            return None
        value |= (c & 0x1F) << shift
        shift += 5
        if c & 0x20:
            continue
        if c & 0x10:
            value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            return None
        runs.append(value)
        value = shift = 0
    return None if shift else sum(runs)
