"""Geometry in the canonical frame (unit square) and pixel masks (COCO RLE via pycocotools)."""

from __future__ import annotations

from collections.abc import Sequence
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


def rle_decode(rle: dict[str, Any], record_id: str | None = None) -> np.ndarray:
    """Boolean mask from COCO RLE (compressed string or uncompressed list counts)."""
    from pycocotools import mask as coco_mask

    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
        if isinstance(counts, list):
            if sum(counts) != h * w:
                raise ValueError(f"counts sum to {sum(counts)}, size is {h}x{w}")
            rle = coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        else:
            rle = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        return coco_mask.decode(rle).astype(bool)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"corrupt COCO RLE mask: {exc}", record_id) from exc
