"""Draw a trace's groundings (with labels) over an image."""

from __future__ import annotations

import zlib

from PIL import Image, ImageDraw, ImageFont

from groundkit.frames import ImageSize
from groundkit.trace import Trace

PALETTE = [
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40),
]


def label_color(label: str | None) -> tuple[int, int, int]:
    """A stable colour per label."""
    return PALETTE[zlib.crc32((label or "").encode()) % len(PALETTE)]


def render(trace: Trace, image: Image.Image, show_labels: bool = True) -> Image.Image:
    """A copy of ``image`` with every grounding of ``trace`` drawn by its type's plugin."""
    from groundkit.registry import get_registry

    reg = get_registry()
    base = image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    canvas = ImageDraw.Draw(overlay)
    size = ImageSize(*base.size)
    font = ImageFont.load_default()
    for g in trace.groundings:
        gtype = reg.grounding_type(g.type)
        color = label_color(g.label)
        gtype.draw(canvas, g, size, color)
        if show_labels and g.label:
            x, y = gtype.anchor(g, size)
            x, y = max(0, min(x, size.width - 8)), max(0, min(y, size.height - 12))
            left, top, right, bottom = canvas.textbbox((x, y), g.label, font=font)
            canvas.rectangle([left - 2, top - 1, right + 2, bottom + 1], fill=color + (200,))
            canvas.text((x, y), g.label, fill=(255, 255, 255, 255), font=font)
    return Image.alpha_composite(base, overlay).convert("RGB")
