"""Labels drawn by ``groundkit.render``: on a contrasting box, fully inside the image, on top of every shape."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

import groundkit as gk
from groundkit.frames import ImageSize
from groundkit.render import PAD, PALETTE, label_color, label_colors, label_font, place_label

W, H = 240, 160
LONG = "a rather long label"


def luminance(rgb) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(float(v)) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def ink(image: Image.Image, box, color) -> int:
    """Text pixels (far from the box colour) inside a label box."""
    x0, y0, x1, y1 = box
    grey = np.asarray(image.convert("L"))[y0 + 1 : y1, x0 + 1 : x1].astype(int)
    return int((abs(grey - int(np.mean(label_colors(color)[0]))) > 128).sum())


def expected_ink(text: str, font, color) -> int:
    """Text pixels of the text drawn alone, with nothing cut."""
    box, text_rgb = label_colors(color)
    canvas = Image.new("RGB", (2000, 200), box)
    ImageDraw.Draw(canvas).text((50, 50), text, fill=text_rgb, font=font)
    return ink(canvas, (0, 0, 1999, 199), color)


# grounding text (groundkit dialect, rel-1000) -> where its label's anchor falls
EDGE_CASES = {
    "top-right": f'<point label="{LONG}">(998, 2)</point>',
    "right": f'<point label="{LONG}">(999, 500)</point>',
    "bottom-right": f'<box label="{LONG}">[900, 950, 999, 999]</box>',
    "bottom-left": f'<mask label="{LONG}">[(0, 990), (50, 999), (20, 960)]</mask>',
    "top-left": f'<box label="{LONG}">[0, 0, 100, 100]</box>',
    "left": f'<point label="{LONG}">(0, 500)</point>',
}


@pytest.mark.parametrize("where", list(EDGE_CASES))
def test_a_label_near_each_edge_is_drawn_whole_inside_the_image_on_a_contrasting_box(where):
    text = f"<think>{EDGE_CASES[where]}</think><answer>1</answer>"
    trace = gk.parse(text, "groundkit")
    g = trace.groundings[0]
    shape = label_color(LONG)
    image = Image.new("RGB", (W, H), shape)  # the label's own colour everywhere: the old orange-on-orange case
    out = gk.render(trace, image)
    size = ImageSize(W, H)
    font = label_font(size)
    placed = place_label(LONG, gk.get_registry().grounding_type(g.type).anchor(g, size), size, font)
    x0, y0, x1, y1 = placed.box
    assert 0 <= x0 < x1 <= W - 1 and 0 <= y0 < y1 <= H - 1
    assert placed.text == LONG  # fits: moved inside, not shortened
    assert ink(out, placed.box, shape) == expected_ink(LONG, font, shape)  # every text pixel drawn, none cut by the edge
    pixels = np.asarray(out)
    background = tuple(int(v) for v in pixels[y0 + 1, x0 + 1])
    inside = pixels[y0 + 1 : y1, x0 + 1 : x1].reshape(-1, 3).astype(int)
    text_rgb = inside[np.argmax(np.abs(inside - np.array(background)).sum(axis=1))]  # the pixel farthest from the box
    assert background == label_colors(shape)[0]
    assert contrast(text_rgb, background) >= 7  # WCAG AAA between text and its box
    assert contrast(background, shape) >= 3  # the box stands out from the shape under it
    assert tuple(int(v) for v in pixels[y0, x0]) == shape  # outlined in the label's colour


@pytest.mark.parametrize("color", PALETTE)
def test_every_palette_colour_gets_a_box_that_stands_out_and_readable_text(color):
    box, text = label_colors(color)
    assert contrast(box, color) >= 3 and contrast(text, box) >= 7


def test_labels_are_drawn_after_every_shape():
    first = '<box label="cup">[100, 100, 400, 400]</box>'
    cover = '<box label="z">[0, 0, 999, 999]</box><mask>[(0, 0), (999, 0), (999, 999), (0, 999)]</mask>'
    trace = gk.parse(f"<think>{first}{cover}</think><answer>1</answer>", "groundkit")
    out = gk.render(trace, Image.new("RGB", (W, H), (255, 255, 255)))
    size = ImageSize(W, H)
    g = trace.groundings[0]
    placed = place_label("cup", gk.get_registry().grounding_type("box").anchor(g, size), size, label_font(size))
    assert ink(out, placed.box, label_color("cup")) == expected_ink("cup", label_font(size), label_color("cup"))


def test_a_label_wider_than_the_image_is_shortened_and_kept_inside():
    size = ImageSize(60, 40)
    placed = place_label("an extremely long label for a tiny image", (30, 20), size, label_font(size))
    assert placed.text.endswith("...") and placed.text.startswith("an")
    assert 0 <= placed.box[0] and placed.box[2] <= size.width - 1 and placed.box[3] <= size.height - 1


@settings(max_examples=150, deadline=None)
@given(st.integers(40, 600), st.integers(30, 400), st.floats(-100, 700), st.floats(-100, 500),
       st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40))
def test_placed_labels_never_leave_the_image(width, height, ax, ay, text):
    size = ImageSize(width, height)
    placed = place_label(text, (ax, ay), size, label_font(size))
    x0, y0, x1, y1 = placed.box
    assert 0 <= x0 <= x1 <= width - 1 and 0 <= y0 <= y1 <= height - 1
    assert placed.origin[0] >= x0 and x1 - x0 >= 2 * PAD
