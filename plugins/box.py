"""The ``box`` grounding type: (x1, y1, x2, y2) with x1 < x2 and y1 < y2."""

from groundkit import (
    Grounding,
    GroundingType,
    Syntax,
    box_area,
    box_contains,
    box_iou,
    hookimpl,
    mask_box,
    read_grammar,
)


def _syntax(dialect, write, native=False, **kw):
    reading = read_grammar("groundkit.grammars", "types", "box", f"{dialect}.reading.lark") if native else None
    return Syntax(read_grammar("groundkit.grammars", "types", "box", f"{dialect}.lark"), write, reading_rule=reading, **kw)



def _groundkit(label, v):
    attr = f' label="{label}"' if label is not None else ""
    return f"<box{attr}>[{v[0]}, {v[1]}, {v[2]}, {v[3]}]</box>"


def _qwen2vl(label, v):
    ref = f"<|object_ref_start|>{label}<|object_ref_end|>" if label is not None else ""
    return f"{ref}<|box_start|>({v[0]},{v[1]}),({v[2]},{v[3]})<|box_end|>"


def _qwen_json(label, v):
    lab = f', "label": "{label}"' if label is not None else ""
    return f'{{"bbox_2d": [{v[0]}, {v[1]}, {v[2]}, {v[3]}]{lab}}}'


class Box(GroundingType):
    name = "box"
    description = "an axis-aligned box (x1, y1, x2, y2); suits spatial reasoning"
    arity = 4
    ordering = ((2, 0), (3, 1))
    fields = ("x1", "y1", "x2", "y2")

    def __init__(self):
        super().__init__(
            {
                "groundkit": _syntax("groundkit", _groundkit),
                "treevgr": _syntax("treevgr", lambda label, v: f"<box>[{v[0]},{v[1]},{v[2]},{v[3]}]</box>", writes_label=False),
                "qwen2vl": _syntax("qwen2vl", _qwen2vl),
                "qwen-json": _syntax("qwen-json", _qwen_json, native=True),
            }
        )

    def from_mask(self, mask, **params):
        """The mask's tight box (pixel edges)."""
        return mask_box(mask) if mask.any() else None

    def example(self):
        return Grounding("box", (0.2, 0.55, 0.48, 0.8), "plate")

    def bbox(self, g):
        return tuple(g.coords)

    def area(self, g):
        return box_area(g.coords)

    def contains(self, g, x, y):
        return box_contains(g.coords, x, y)

    def iou(self, a, b, resolution=512):
        if b.type == "box":
            return box_iou(a.coords, b.coords)
        return super().iou(a, b, resolution)

    def to_mask(self, g, width, height):
        import numpy as np

        m = np.zeros((height, width), dtype=bool)
        x1, y1, x2, y2 = g.coords
        m[int(round(y1 * height)) : int(round(y2 * height)), int(round(x1 * width)) : int(round(x2 * width))] = True
        return m

    def draw(self, canvas, g, size, color):
        x1, y1, x2, y2 = g.coords
        canvas.rectangle([x1 * size.width, y1 * size.height, x2 * size.width, y2 * size.height], outline=color, width=3)


@hookimpl
def register_grounding_types(register):
    register(Box())
