"""Draw a trace's groundings (with labels) over an image.

Shapes are drawn by their type's plugin in a stable colour per label. Labels go on top of
every shape: text on an opaque box outlined in the label's colour, near-black or near-white,
whichever contrasts more with that colour (readable on any shape or image), moved inside the image when the anchor is near an edge and shortened
with "..." when wider than the image.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from groundkit.frames import ImageSize
from groundkit.trace import Trace

PALETTE = [
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40),
]
DARK, LIGHT = (16, 16, 16), (250, 250, 250)
PAD = 3  # pixels between the text and the edge of its box


def label_color(label: str | None) -> tuple[int, int, int]:
    """A stable colour per label."""
    return PALETTE[zlib.crc32((label or "").encode()) % len(PALETTE)]


def _luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG relative luminance."""
    lin = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def label_colors(color: tuple[int, int, int]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(box, text) colours for a label whose shape is ``color``: the box is whichever of near-black
    and near-white contrasts more with the shape, the text the other."""
    on_dark = (_luminance(color) + 0.05) / (_luminance(DARK) + 0.05)
    on_light = (_luminance(LIGHT) + 0.05) / (_luminance(color) + 0.05)
    return (DARK, LIGHT) if on_dark >= on_light else (LIGHT, DARK)


def label_font(size: ImageSize) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The default font, scaled with the image (11 px up to 1/45 of its short side)."""
    return ImageFont.load_default(size=max(11, min(size.width, size.height) // 45))


@dataclass(frozen=True)
class LabelBox:
    """Where a label is drawn: its text (possibly shortened), the text origin and its box (pixels, inclusive)."""

    text: str
    origin: tuple[float, float]
    box: tuple[int, int, int, int]


def place_label(text: str, anchor: tuple[float, float], size: ImageSize, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> LabelBox:
    """The label's box at ``anchor`` (its top-left), moved inside the image; a label wider than
    the image is shortened with "..." (an image too small for any text keeps the box at 0, 0)."""
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))

    def extent(s: str) -> tuple[int, int, int, int]:
        return tuple(int(v) for v in probe.textbbox((0, 0), s, font=font))  # type: ignore[return-value]

    room = size.width - 2 * PAD - 1
    for keep in range(len(text), 0, -1):
        shown = text if keep == len(text) else text[:keep].rstrip() + "..."
        left, top, right, bottom = extent(shown)
        if right - left <= room:
            break
    w, h = right - left + 2 * PAD, bottom - top + 2 * PAD
    x = int(min(max(anchor[0], 0), max(size.width - 1 - w, 0)))
    y = int(min(max(anchor[1], 0), max(size.height - 1 - h, 0)))
    return LabelBox(shown, (x + PAD - left, y + PAD - top), (x, y, x + w, y + h))


def render(trace: Trace, image: Image.Image, show_labels: bool = True) -> Image.Image:
    """A copy of ``image`` with every grounding of ``trace`` drawn by its type's plugin, labels on top."""
    from groundkit.registry import get_registry

    reg = get_registry()
    base = image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    canvas = ImageDraw.Draw(overlay)
    size = ImageSize(*base.size)
    labels: list[tuple[str, tuple[float, float], tuple[int, int, int]]] = []
    for g in trace.groundings:
        gtype = reg.grounding_type(g.type)
        color = label_color(g.label)
        gtype.draw(canvas, g, size, color)
        if show_labels and g.label:
            labels.append((g.label, gtype.anchor(g, size), color))
    out = Image.alpha_composite(base, overlay)
    if labels:
        font = label_font(size)
        draw = ImageDraw.Draw(out)
        for text, anchor, color in labels:
            placed = place_label(text, anchor, size, font)
            box, ink = label_colors(color)
            draw.rectangle(placed.box, fill=box + (255,), outline=color + (255,), width=1)
            draw.text(placed.origin, placed.text, fill=ink + (255,), font=font)
    return out.convert("RGB")
