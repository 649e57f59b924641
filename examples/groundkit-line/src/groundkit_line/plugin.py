"""The ``line`` grounding type, using only groundkit's public API."""

import numpy as np
from PIL import Image, ImageDraw

import groundkit


def write_line(label, v):
    attr = f' label="{label}"' if label is not None else ""
    return f"<line{attr}>[({v[0]}, {v[1]}), ({v[2]}, {v[3]})]</line>"


class Line(groundkit.GroundingType):
    name = "line"
    description = "a line segment (x1, y1, x2, y2) between two points"
    arity = 4
    fields = ("x1", "y1", "x2", "y2")  # named in error messages
    tolerance = 0.01  # a point within 1% of the image diagonal counts as on the line

    def __init__(self):
        rule = groundkit.read_grammar("groundkit_line", "line.lark")
        super().__init__({"groundkit": groundkit.Syntax(rule, write_line)})

    def from_mask(self, mask):
        """The mask's extent along its principal axis (so ``groundkit synth`` can write lines)."""
        ys, xs = np.nonzero(mask)
        if len(xs) < 2:
            return None
        h, w = mask.shape
        pts = np.stack([(xs + 0.5) / w, (ys + 0.5) / h], axis=1)
        centre = pts.mean(axis=0)
        axis = np.linalg.svd(pts - centre, full_matrices=False)[2][0]
        t = (pts - centre) @ axis
        a, b = centre + t.min() * axis, centre + t.max() * axis
        return (float(a[0]), float(a[1]), float(b[0]), float(b[1]))

    def example(self):
        return groundkit.Grounding("line", (0.15, 0.7, 0.85, 0.62), "rope")

    def area(self, g):
        return 0.0

    def contains(self, g, x, y):
        x1, y1, x2, y2 = g.coords
        d = np.array([x2 - x1, y2 - y1])
        t = 0.0 if not d.any() else float(np.clip(np.dot([x - x1, y - y1], d) / np.dot(d, d), 0, 1))
        return float(np.hypot(x - (x1 + t * d[0]), y - (y1 + t * d[1]))) <= self.tolerance

    def to_mask(self, g, width, height):
        img = Image.new("1", (width, height), 0)
        x1, y1, x2, y2 = g.coords
        ImageDraw.Draw(img).line([x1 * width, y1 * height, x2 * width, y2 * height], fill=1, width=1)
        return np.array(img, dtype=bool)

    def draw(self, canvas, g, size, color):
        x1, y1, x2, y2 = g.coords
        canvas.line([x1 * size.width, y1 * size.height, x2 * size.width, y2 * size.height], fill=color, width=3)


@groundkit.hookimpl
def register_grounding_types(register):
    register(Line())
