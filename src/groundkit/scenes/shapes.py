"""Shape kinds and colours of synthetic scenes, drawn as exact (aliasing-free) pixel masks."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "diamond")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 210),
    "yellow": (235, 205, 30),
    "orange": (240, 130, 20),
    "purple": (135, 50, 175),
    "cyan": (30, 190, 200),
}


def _regular(n: int, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(angle + 2 * math.pi * k / n), cy + r * math.sin(angle + 2 * math.pi * k / n)) for k in range(n)]


def outline(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]] | None:
    """Pixel-space vertices of a shape of circumradius ``r`` (None for a circle)."""
    if shape == "circle":
        return None
    if shape == "square":
        return _regular(4, cx, cy, r, angle + math.pi / 4)
    if shape == "diamond":  # a rhombus, taller than wide
        return [(cx, cy - r), (cx + 0.6 * r, cy), (cx, cy + r), (cx - 0.6 * r, cy)]
    if shape == "triangle":
        return _regular(3, cx, cy, r, angle - math.pi / 2)
    if shape == "hexagon":
        return _regular(6, cx, cy, r, angle)
    if shape == "star":
        outer = _regular(5, cx, cy, r, angle - math.pi / 2)
        inner = _regular(5, cx, cy, 0.45 * r, angle - math.pi / 2 + math.pi / 5)
        return [p for pair in zip(outer, inner) for p in pair]
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def shape_patch(shape: str, cx: float, cy: float, r: float, angle: float) -> tuple[np.ndarray, int, int]:
    """Boolean mask of one shape on a small canvas around it, with the canvas' (x0, y0) offset."""
    x0, y0 = int(math.floor(cx - r)) - 1, int(math.floor(cy - r)) - 1
    size = int(math.ceil(2 * r)) + 3
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    points = outline(shape, cx - x0, cy - y0, r, angle)
    if points is None:
        draw.ellipse([cx - x0 - r, cy - y0 - r, cx - x0 + r, cy - y0 + r], fill=255)
    else:
        draw.polygon(points, fill=255)
    return np.asarray(img) > 0, x0, y0


def shape_mask(shape: str, cx: float, cy: float, r: float, angle: float, width: int, height: int) -> np.ndarray:
    """Boolean (height, width) mask of one shape (clipped to the image); the image paints exactly these pixels."""
    patch, x0, y0 = shape_patch(shape, cx, cy, r, angle)
    out = np.zeros((height, width), dtype=bool)
    ys, xs = np.nonzero(patch)
    ys, xs = ys + y0, xs + x0
    keep = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    out[ys[keep], xs[keep]] = True
    return out
