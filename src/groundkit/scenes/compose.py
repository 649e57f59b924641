"""Compose a scene: background, partly overlapping shapes, noise; exact visible masks per object.

Objects are painted in order, so a later object hides what it covers of an earlier one;
each object's mask is what stays visible of it, which is exactly the pixels painted in its
colour. Boxes are the tight boxes of those masks and the interior point is the mask pixel
farthest from the mask's border.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from groundkit.geometry import Box, mask_bbox
from groundkit.scenes.shapes import COLORS, shape_mask

BACKGROUNDS = ("plain", "gradient", "stripes", "checker")


@dataclass(frozen=True)
class ObjectSpec:
    """What to place: a shape kind, a colour name and a size class (``small`` / ``large``)."""

    shape: str
    color: str
    size: str = "small"

    @property
    def label(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass
class PlacedObject:
    """A placed object: its spec, visible mask, tight box, interior point, centroid and area (unit frame)."""

    spec: ObjectSpec
    mask: np.ndarray
    box: Box
    point: tuple[float, float]
    centroid: tuple[float, float]
    area: float

    @property
    def label(self) -> str:
        return self.spec.label


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """The unit-frame centre of the mask pixel farthest from the mask's border (inside by construction)."""
    ys, xs = np.nonzero(mask)
    y0, x0 = ys.min(), xs.min()
    crop = mask[y0 : ys.max() + 1, x0 : xs.max() + 1]
    dist = ndimage.distance_transform_edt(np.pad(crop, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    h, w = mask.shape
    return ((x + x0 + 0.5) / w, (y + y0 + 0.5) / h)


def _neutral(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation background tone, light or dark, that no object colour is close to."""
    base = rng.choice([rng.uniform(170, 245), rng.uniform(25, 80)])
    tint = rng.uniform(-12, 12, size=3)
    return np.clip(base + tint, 0, 255)


def background(rng: np.random.Generator, width: int, height: int, kinds: tuple[str, ...] = BACKGROUNDS) -> np.ndarray:
    """A float (height, width, 3) background of one of ``kinds`` (plain, gradient, stripes, checker) in neutral tones."""
    kind = kinds[int(rng.integers(len(kinds)))]
    a = _neutral(rng)
    b = np.clip(a + rng.uniform(-35, 35), 0, 255)
    img = np.empty((height, width, 3))
    if kind == "plain":
        img[:] = a
    elif kind == "gradient":
        t = np.linspace(0, 1, width if rng.random() < 0.5 else height)
        ramp = a[None, :] * (1 - t[:, None]) + b[None, :] * t[:, None]
        img[:] = ramp[None, :, :] if len(t) == width else ramp[:, None, :]
    else:
        period = max(4, int(rng.integers(max(width, height) // 16, max(width, height) // 6 + 2)))
        yy, xx = np.mgrid[0:height, 0:width]
        cells = (xx // period) if kind == "stripes" else (xx // period + yy // period)
        img[:] = np.where((cells % 2 == 0)[..., None], a, b)
    return img


def place(
    rng: np.random.Generator,
    specs: list[ObjectSpec],
    width: int,
    height: int,
    max_overlap: float = 0.25,
    min_visible: float = 0.7,
    tries: int = 60,
) -> list[PlacedObject] | None:
    """Place every spec (in order) or return None when the layout does not fit.

    A new shape may cover at most ``max_overlap`` of any earlier shape (and be covered as
    little); every object must keep ``min_visible`` of its area visible, in one piece.
    """
    side = min(width, height)
    full: list[np.ndarray] = []
    boxes: list[tuple[int, int, int, int]] = []  # pixel (x0, y0, x1, y1) of each full mask, exclusive
    for spec in specs:
        lo, hi = (0.06, 0.09) if spec.size == "small" else (0.11, 0.15)
        for _ in range(tries):
            r = rng.uniform(lo, hi) * side
            cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
            m = shape_mask(spec.shape, cx, cy, r, rng.uniform(0, 2 * np.pi), width, height)
            area = int(m.sum())
            if area < 12:
                continue
            box = (max(0, int(cx - r) - 1), max(0, int(cy - r) - 1), min(width, int(cx + r) + 2), min(height, int(cy + r) + 2))
            if all(_overlap_ok(m, box, area, f, b, max_overlap) for f, b in zip(full, boxes)):
                full.append(m)
                boxes.append(box)
                break
        else:
            return None
    placed = []
    for k, spec in enumerate(specs):
        covered = np.zeros((height, width), dtype=bool)
        for later in full[k + 1 :]:
            covered |= later
        visible = full[k] & ~covered
        ys, xs = np.nonzero(visible)
        if len(xs) < min_visible * full[k].sum():
            return None
        if ndimage.label(visible[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])[1] != 1:
            return None
        placed.append(
            PlacedObject(
                spec=spec,
                mask=visible,
                box=mask_bbox(visible),  # type: ignore[arg-type]
                point=interior_point(visible),
                centroid=((xs.mean() + 0.5) / width, (ys.mean() + 0.5) / height),
                area=float(visible.sum()) / (width * height),
            )
        )
    return placed


def _overlap_ok(m: np.ndarray, box: tuple[int, int, int, int], area: int, f: np.ndarray, fbox: tuple[int, int, int, int], limit: float) -> bool:
    """Whether two shapes overlap by at most ``limit`` of the smaller one (checked inside the boxes' intersection)."""
    x0, y0, x1, y1 = max(box[0], fbox[0]), max(box[1], fbox[1]), min(box[2], fbox[2]), min(box[3], fbox[3])
    if x0 >= x1 or y0 >= y1:
        return True
    inter = int((m[y0:y1, x0:x1] & f[y0:y1, x0:x1]).sum())
    return inter <= limit * min(area, int(f.sum()))


def paint(rng: np.random.Generator, objects: list[PlacedObject], width: int, height: int, noise: float,
          backgrounds: tuple[str, ...] = BACKGROUNDS) -> Image.Image:
    """The picture: background, each object's visible pixels in its (slightly jittered) colour, then noise."""
    img = background(rng, width, height, backgrounds)
    for o in objects:
        color = np.clip(np.array(COLORS[o.spec.color], float) + rng.uniform(-12, 12, size=3), 0, 255)
        img[o.mask] = color
    if noise > 0:
        img = img + rng.normal(0, rng.uniform(0, noise), size=img.shape)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")
