"""The ``mask`` grounding type: a polygon of >= 3 vertices in text (COCO RLE for ground truth)."""

from groundkit import (
    Grounding,
    GroundingType,
    Syntax,
    hookimpl,
    mask_polygon,
    point_in_polygon,
    polygon_area,
    polygon_bbox,
    rasterize_polygon,
    read_grammar,
)


def _groundkit(label, v):
    attr = f' label="{label}"' if label is not None else ""
    vertices = ", ".join(f"({v[i]}, {v[i + 1]})" for i in range(0, len(v), 2))
    return f"<mask{attr}>[{vertices}]</mask>"


class Mask(GroundingType):
    name = "mask"
    description = "a polygon outline of >= 3 (x, y) vertices"
    arity = None
    min_vertices = 3

    def __init__(self):
        super().__init__({"groundkit": Syntax(read_grammar("groundkit.grammars", "types", "mask", "groundkit.lark"), _groundkit)})

    def from_mask(self, mask, max_vertices=16):
        """The outline of the mask's largest component, simplified to at most ``max_vertices`` vertices."""
        return mask_polygon(mask, max_vertices) if mask.any() else None

    def example(self):
        return Grounding("mask", (0.6, 0.2, 0.75, 0.3, 0.65, 0.45), "leaf")

    def bbox(self, g):
        return polygon_bbox(g.coords)

    def area(self, g):
        return polygon_area(g.coords)

    def contains(self, g, x, y):
        return point_in_polygon(g.coords, x, y)

    def to_mask(self, g, width, height):
        return rasterize_polygon(g.coords, width, height)

    def draw(self, canvas, g, size, color):
        pts = [(x * size.width, y * size.height) for x, y in g.points]
        canvas.polygon(pts, outline=color, fill=color + (70,), width=2)


@hookimpl
def register_grounding_types(register):
    register(Mask())
