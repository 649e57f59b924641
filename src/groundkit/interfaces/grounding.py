"""Grounding types and their per-dialect syntax: the base class every type plugin extends."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from PIL import ImageDraw

from groundkit.errors import PluginError
from groundkit.frames import ImageSize
from groundkit.geometry import Box, box_iou, mask_iou
from groundkit.trace import Grounding

#: One grounding read off the parse tree: label and the written values (textual order).
RawGrounding = tuple["str | None", "list[Any]"]


#: Terminal names read as labels and as numbers. ``JLABEL`` holds the body of a JSON string
#: (native JSON output): its escapes are decoded. ``JNUM`` is a JSON number in native forms.
LABEL_TERMINALS = frozenset({"LABEL", "JLABEL"})
NUM_TERMINALS = frozenset({"NUM", "JNUM"})


def label_text(name: str, raw: str) -> str:
    """A label token's text (a ``JLABEL``'s JSON escapes such as ``\\u00e9`` decoded)."""
    if name == "JLABEL" and "\\" in raw:
        return str(json.loads(f'"{raw}"'))
    return raw


def default_reader(tokens: Sequence[Any]) -> list[RawGrounding]:
    """One grounding per element: the last non-empty label token and every number token."""
    labels = [t for t in tokens if t.type in LABEL_TERMINALS and str(t).strip()]
    nums = [t for t in tokens if t.type in NUM_TERMINALS]
    return [(label_text(labels[-1].type, str(labels[-1])) if labels else None, nums)]


@dataclass(frozen=True)
class Syntax:
    """How a grounding type is written in one dialect.

    ``rule`` is Lark grammar text defining a rule named after the type (helper rules and
    terminals must be prefixed with the type's name). It may use the dialect skeleton's
    ``LABEL`` and ``_SEP`` terminals and the frame's ``NUM`` terminal. ``write(label,
    values)`` returns the canonical text, ``values`` being already-formatted numbers in
    textual order. ``reader`` turns the rule's tokens into groundings. ``writes_label`` is
    False where the dialect has no place for a label (writing one then needs ``lossy``).
    ``reading_rule`` (optional) replaces ``rule`` in the grammar the *parser* reads: the
    canonical form plus what native models write (e.g. JSON whitespace, either key order);
    the decoder and the exports keep ``rule``, so constrained output stays canonical.
    """

    rule: str
    write: Callable[[str | None, list[str]], str]
    reader: Callable[[Sequence[Any]], list[RawGrounding]] = default_reader
    writes_label: bool = True
    reading_rule: str | None = None


@dataclass
class GroundingType:
    """Base class of grounding types (point, box, mask, and third-party types).

    Coordinates are flat (x, y, x, y, ...) in the canonical unit frame. ``arity`` is the
    number of values (None: any even number >= 2 * ``min_vertices``). ``ordering`` lists
    index pairs (i, j) meaning ``coords[i] > coords[j]`` (box x1<x2, y1<y2); the decoder
    enforces these too.

    The declaration may also give:

    - ``fields``: the values' names in textual order (an ellipse's ``("cx", "cy", "rx",
      "ry")``), used by every error message; default ``x1, y1, x2, y2, ...``. Value ``i`` is
      still on axis ``"xy"[i % 2]`` (that is how frames scale it).
    - ``minimums``: value index -> least canonical unit value (``{2: 0.005}``: ``rx`` at
      least 0.5% of the image width). The parser and the formatter check them (a
      :class:`~groundkit.errors.ParseError` / :class:`~groundkit.errors.FormatError` naming
      the field); the constrained decoder does not enforce them yet.

    and two optional hooks: :meth:`from_mask` (build the values from a segmentation mask;
    ``groundkit synth`` can then output the type) and :meth:`example` (a typical grounding
    for prompts).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    arity: ClassVar[int | None] = 2
    min_vertices: ClassVar[int] = 1
    ordering: ClassVar[tuple[tuple[int, int], ...]] = ()
    fields: ClassVar[tuple[str, ...]] = ()
    minimums: ClassVar[dict[int, float]] = {}
    syntaxes: dict[str, Syntax] = field(default_factory=dict)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A declaration that contradicts itself fails when the plugin's class is defined (the
        plugin is then reported as failed to load, naming the reason)."""
        super().__init_subclass__(**kwargs)
        problem = _declaration_problem(cls)
        if problem:
            raise PluginError(f"grounding type {cls.name or cls.__name__!r}: {problem}")

    # --- structure -------------------------------------------------------------------
    def axes(self, n_values: int | None = None) -> tuple[str, ...]:
        n = self.arity if n_values is None else n_values
        return tuple("xy"[i % 2] for i in range(n or 2))

    def syntax(self, dialect: str) -> Syntax | None:
        return self.syntaxes.get(dialect)

    def check_values(self, values: Sequence[float]) -> str | None:
        """Why the written values cannot form this type (count, ordering), or None."""
        n = len(values)
        if self.arity is not None and n != self.arity:
            return f"a {self.name} needs {self.arity} values, got {n}"
        if self.arity is None and (n % 2 or n < 2 * self.min_vertices):
            return f"a {self.name} needs at least {self.min_vertices} (x, y) vertices, got {n} values"
        for i, j in self.ordering:
            if not values[i] > values[j]:
                names = self.value_names(n)
                return f"degenerate {self.name}: {names[i]}={values[i]:g} must be greater than {names[j]}={values[j]:g}"
        return None

    def check_minimums(self, coords: Sequence[float], written: Sequence[float] | None = None) -> tuple[int, str] | None:
        """The first value below its declared minimum as ``(index, reason)``, or None.

        ``coords`` are canonical unit values; ``written`` (optional) the same values as written
        in the text, quoted in the reason.
        """
        names = self.value_names(len(coords))
        for i, least in sorted(self.minimums.items()):
            if i < len(coords) and coords[i] < least - 1e-9:
                shown = f"{written[i]:g}" if written is not None else f"{coords[i]:g}"
                side = "width" if i % 2 == 0 else "height"
                return i, (f"{self.name} {names[i]}={shown} is below its minimum: {names[i]} must be at least "
                           f"{least:g} of the image {side}")
        return None

    def value_names(self, n: int) -> list[str]:
        """The names of ``n`` values: the declared ``fields``, or x1, y1, x2, y2, ..."""
        if self.fields and len(self.fields) == n:
            return list(self.fields)
        return [f"{a}{i // 2 + 1}" for i, a in enumerate(self.axes(n))]

    # --- optional hooks -------------------------------------------------------------------
    def from_mask(self, mask: np.ndarray, **params: Any) -> tuple[float, ...] | None:
        """Canonical unit values of this type derived from a boolean ``(height, width)`` mask.

        Called by ``groundkit synth`` (``output.grounding: <type name>``; ``params`` come from
        ``output.grounding_params``) for every mask a grounder returns. Return None when the
        mask cannot give one (the record is dropped with the reason ``align_failed``). A type
        that does not override this cannot be synthesised.

        Example (a point at the mask's interior point)::

            def from_mask(self, mask, **params):
                return groundkit.mask_interior_point(mask)
        """
        raise NotImplementedError(f"grounding type {self.name!r} cannot be built from a mask (it has no from_mask)")

    def example(self) -> Grounding | None:
        """A typical grounding of this type (label included) for prompts, or None for an
        automatic one. ``grounding_instruction`` writes it in the prompt's dialect and frame.

        Example::

            def example(self):
                return groundkit.Grounding("ellipse", (0.5, 0.4, 0.12, 0.08), "plate")
        """
        return None

    @classmethod
    def builds_from_mask(cls) -> bool:
        """Whether the type implements :meth:`from_mask`."""
        return cls.from_mask is not GroundingType.from_mask

    # --- geometry (unit frame); subclasses override with exact formulas ------------------
    def bbox(self, g: Grounding) -> Box:
        xs, ys = g.coords[0::2], g.coords[1::2]
        return (min(xs), min(ys), max(xs), max(ys))

    def area(self, g: Grounding) -> float:
        return float(self.to_mask(g, 512, 512).mean())

    def contains(self, g: Grounding, x: float, y: float) -> bool:
        m = self.to_mask(g, 512, 512)
        return bool(m[min(int(y * 512), 511), min(int(x * 512), 511)])

    def to_mask(self, g: Grounding, width: int, height: int) -> np.ndarray:
        """Boolean (height, width) raster of the grounding."""
        raise NotImplementedError(f"{self.name} cannot be rasterised")

    def iou(self, a: Grounding, b: Grounding, resolution: int = 512) -> float:
        """IoU of two groundings (exact for boxes; rasterised otherwise; IoU is scale invariant)."""
        if a.type == b.type == "box":
            return box_iou(a.coords, b.coords)
        return mask_iou(self.to_mask(a, resolution, resolution), _registry_type(b).to_mask(b, resolution, resolution))

    # --- drawing ------------------------------------------------------------------------
    def draw(self, canvas: ImageDraw.ImageDraw, g: Grounding, size: ImageSize, color: tuple[int, int, int]) -> None:
        x1, y1, x2, y2 = self.bbox(g)
        canvas.rectangle([x1 * size.width, y1 * size.height, x2 * size.width, y2 * size.height], outline=color, width=2)

    def anchor(self, g: Grounding, size: ImageSize) -> tuple[float, float]:
        """Where a label is drawn (top-left of the bounding box, in pixels)."""
        x1, y1, _, _ = self.bbox(g)
        return x1 * size.width, y1 * size.height


def _declaration_problem(cls: type[GroundingType]) -> str | None:
    """Why a type's ``fields`` / ``minimums`` cannot hold (lengths, indices, values), or None."""
    n = cls.arity
    if cls.fields:
        if n is None:
            return "fields names fixed values; a type with arity None has any number of them"
        if len(cls.fields) != n or len(set(cls.fields)) != n or not all(isinstance(f, str) and f for f in cls.fields):
            return f"fields must be {n} distinct names (arity {n}), got {cls.fields!r}"
    for i, least in cls.minimums.items():
        if not isinstance(i, int) or i < 0 or (n is not None and i >= n):
            return f"minimums index {i!r} is not a value index" + (f" (0..{n - 1})" if n else "")
        if isinstance(least, bool) or not isinstance(least, (int, float)) or not 0 <= least < 1:
            return f"minimums[{i}] must be a unit value in [0, 1), got {least!r}"
    return None


def _registry_type(g: Grounding) -> GroundingType:
    from groundkit.registry import get_registry

    return get_registry().grounding_type(g.type)


