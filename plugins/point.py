"""The ``point`` grounding type: one (x, y) location."""

from groundkit import Grounding, GroundingType, Syntax, hookimpl, mask_interior_point, read_grammar


def _attr(label):
    return f' label="{label}"' if label is not None else ""


def _qwen2vl_ref(label):
    return f"<|object_ref_start|>{label}<|object_ref_end|>" if label is not None else ""


def _json_label(label):
    return f', "label": "{label}"' if label is not None else ""


def read_molmo(tokens):
    """Molmo writes one ``<point x y>`` or ``<points x1 y1 x2 y2 ...>``: one point per (x, y) pair."""
    labels = [t for t in tokens if t.type == "LABEL" and str(t).strip()]
    label = str(labels[-1]) if labels else None
    nums = [t for t in tokens if t.type in ("NUM", "MOLMO_NUM")]
    return [(label, nums[i : i + 2]) for i in range(0, len(nums), 2)]


def _molmo(label, v):
    alt = f' alt="{label}"' if label is not None else ""
    return f'<point x="{v[0]}" y="{v[1]}"{alt}>{label or ""}</point>'


def _syntax(dialect, write, native=False, **kw):
    reading = read_grammar("groundkit.grammars", "types", "point", f"{dialect}.reading.lark") if native else None
    return Syntax(read_grammar("groundkit.grammars", "types", "point", f"{dialect}.lark"), write, reading_rule=reading, **kw)


class Point(GroundingType):
    name = "point"
    description = "a single (x, y) location; suits counting"
    arity = 2
    fields = ("x", "y")

    def __init__(self):
        super().__init__(
            {
                "groundkit": _syntax("groundkit", lambda label, v: f"<point{_attr(label)}>({v[0]}, {v[1]})</point>"),
                "treevgr": _syntax("treevgr", lambda label, v: f"<point>[{v[0]},{v[1]}]</point>", writes_label=False),
                "qwen2vl": _syntax("qwen2vl", lambda label, v: f"{_qwen2vl_ref(label)}<|box_start|>({v[0]},{v[1]})<|box_end|>"),
                "qwen-json": _syntax("qwen-json", lambda label, v: f'{{"point_2d": [{v[0]}, {v[1]}]{_json_label(label)}}}',
                                     native=True),
                "molmo": _syntax("molmo", _molmo, native=True, reader=read_molmo),
            }
        )

    def from_mask(self, mask, **params):
        """The mask's interior point (the pixel farthest from the background)."""
        return mask_interior_point(mask) if mask.any() else None

    def example(self):
        return Grounding("point", (0.42, 0.37), "cup")

    def bbox(self, g):
        x, y = g.coords
        return (x, y, x, y)

    def area(self, g):
        return 0.0

    def contains(self, g, x, y):
        return False

    def to_mask(self, g, width, height):
        import numpy as np

        m = np.zeros((height, width), dtype=bool)
        m[min(int(g.coords[1] * height), height - 1), min(int(g.coords[0] * width), width - 1)] = True
        return m

    def draw(self, canvas, g, size, color):
        x, y = g.coords[0] * size.width, g.coords[1] * size.height
        r = max(4, min(size.width, size.height) // 60)
        canvas.ellipse([x - r, y - r, x + r, y + r], fill=color, outline=(255, 255, 255), width=2)

    def anchor(self, g, size):
        return g.coords[0] * size.width + 5, g.coords[1] * size.height - 14


@hookimpl
def register_grounding_types(register):
    register(Point())
