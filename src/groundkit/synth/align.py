"""From mentions + candidate masks to a grounded trace.

1. Resolve each mention's candidates (phrase-to-mask ambiguity, explicitly): near-duplicate
   masks (IoU >= ``dedupe_iou``) collapse to the best-scoring one; a plural mention keeps
   every mask (left to right); a singular mention with several masks follows ``ambiguity``:
   ``best`` (highest score), ``all`` or ``drop`` (the record is dropped). A singular mention
   with no mask drops the record; a plural one with none stays ungrounded (a count of zero).
2. Derive the grounding from each mask through its type's ``from_mask``: ``point``
   (interior point), ``box`` (tight box), ``mask`` (polygon), any registered type that
   implements ``from_mask``, or ``auto`` (points for plural mentions, which suit counting;
   boxes for singular ones, which suit spatial reasoning).
3. Insert the groundings right after their mention, write the trace in the requested
   dialect and frame, and parse it back: text that does not parse is never written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from groundkit.errors import ConfigError, GroundkitError
from groundkit.frames import ImageSize
from groundkit.geometry import mask_iou, rle_encode
from groundkit.interfaces.grounding import GroundingType
from groundkit.interfaces.synth import MaskCandidate, Mention
from groundkit.synth.derive import mask_box, mask_interior_point
from groundkit.text.formatter import format_trace
from groundkit.text.parser import get_parser
from groundkit.trace import Grounding, Segment, Text, Trace

AMBIGUITY = ("best", "all", "drop")
GROUNDINGS = ("auto", "point", "box", "mask")
"""The built-in choices of ``output.grounding``; any registered type with ``from_mask`` works too."""
AMBIGUOUS = "ambiguous_phrase"
UNGROUNDED = "ungrounded_phrase"
ALIGN_FAILED = "align_failed"


class Dropped(GroundkitError):
    """A record cannot be grounded; ``reason`` is its drop reason."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass
class Resolved:
    """A mention with the masks it keeps, and whether it was ambiguous."""

    mention: Mention
    masks: list[MaskCandidate]
    ambiguous: bool = False
    candidates: int = 0


@dataclass
class GroundedObject:
    """One grounded mask: its derived box, interior point and polygon, and the grounding written."""

    label: str
    phrase: str
    mask: np.ndarray
    score: float
    box: tuple[float, float, float, float]
    point: tuple[float, float]
    grounding: Grounding
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The object in the ground-truth schema (COCO RLE mask), plus phrase / score / grounding type."""
        return {
            "label": self.label, "box": [round(v, 6) for v in self.box], "points": [[round(v, 6) for v in self.point]],
            "mask": rle_encode(self.mask), "phrase": self.phrase, "score": round(float(self.score), 4),
            "grounding": self.grounding.type, **self.extra,
        }


def dedupe(cands: Sequence[MaskCandidate], iou: float) -> list[MaskCandidate]:
    """Best-scoring first; a mask overlapping a kept one by IoU >= ``iou`` is a duplicate. Empty masks go."""
    kept: list[MaskCandidate] = []
    for c in sorted((c for c in cands if c.mask.any()), key=lambda c: -c.score):
        if all(mask_iou(c.mask, k.mask) < iou for k in kept):
            kept.append(c)
    return kept


def resolve(mentions: Sequence[Mention], candidates: Sequence[Sequence[MaskCandidate]], ambiguity: str, dedupe_iou: float = 0.8) -> list[Resolved]:
    """Apply the ambiguity policy (module docstring); raises :class:`Dropped`."""
    out = []
    for m, cands in zip(mentions, candidates):
        masks = dedupe(cands, dedupe_iou)
        n = len(masks)
        if m.plural:
            masks.sort(key=lambda c: mask_box(c.mask)[0])
            out.append(Resolved(m, masks, False, n))
            continue
        if n == 0:
            raise Dropped(UNGROUNDED, f"no mask for {m.phrase!r}")
        if n > 1 and ambiguity == "drop":
            raise Dropped(AMBIGUOUS, f"{n} masks for the singular phrase {m.phrase!r}")
        out.append(Resolved(m, masks if ambiguity == "all" else masks[:1], n > 1, n))
    return out


def mask_grounding_types() -> list[str]:
    """Names of the registered grounding types that build from a mask (implement ``from_mask``)."""
    from groundkit.registry import get_registry

    reg = get_registry()
    return [n for n in reg.grounding_types.names() if reg.grounding_type(n).builds_from_mask()]


def grounding_kind(kind: str) -> GroundingType:
    """The grounding type ``output.grounding`` names; a :class:`ConfigError` listing the working
    choices for an unknown type or one without ``from_mask``."""
    from groundkit.registry import get_registry

    reg = get_registry()
    working = ", ".join(["auto", *mask_grounding_types()])
    if kind not in reg.grounding_types.names():
        raise ConfigError(f"unknown grounding type {kind!r}; types that build from a mask: {working}", "output.grounding")
    gtype = reg.grounding_type(kind)
    if not gtype.builds_from_mask():
        raise ConfigError(f"grounding type {kind!r} cannot be built from a mask (it has no from_mask); use one of: {working}",
                          "output.grounding")
    return gtype


def make_grounding(kind: str, plural: bool, mask: np.ndarray, label: str, max_vertices: int = 16,
                   params: dict[str, Any] | None = None) -> tuple[Grounding, tuple, tuple]:
    """The grounding of ``mask`` (``kind``: a type name or ``auto``), its tight box and interior
    point; raises :class:`Dropped` when the type's ``from_mask`` gives nothing usable."""
    box, point = mask_box(mask), mask_interior_point(mask)
    name = ("point" if plural else "box") if kind == "auto" else kind
    gtype = grounding_kind(name)
    kwargs = {"max_vertices": max_vertices} if name == "mask" else {}
    try:
        coords = gtype.from_mask(mask, **(kwargs | (params or {})))
        if coords is None:
            raise Dropped(ALIGN_FAILED, f"the mask of {label!r} gives no {name}")
        coords = tuple(float(c) for c in coords)
    except (GroundkitError, ValueError, TypeError, ArithmeticError) as exc:  # one bad mask drops its record, not the batch
        if isinstance(exc, Dropped):
            raise
        raise Dropped(ALIGN_FAILED, f"{name}.from_mask failed for {label!r}: {exc}") from exc
    hit = gtype.check_minimums(coords) if all(math.isfinite(c) for c in coords) else None
    problem = gtype.check_values(coords) or (hit[1] if hit else None)
    if problem or not all(0.0 <= c <= 1.0 for c in coords):
        raise Dropped(ALIGN_FAILED, f"{name}.from_mask for {label!r}: {problem or f'values {coords} are not unit coordinates in [0, 1]'}")
    return Grounding(name, coords, label), box, point


def ground_trace(
    thought: str,
    answer: str | None,
    resolved: Sequence[Resolved],
    size: ImageSize,
    dialect: str = "groundkit",
    frame: str | None = None,
    grounding: str = "auto",
    max_vertices: int = 16,
    parser: Any = None,
    params: dict[str, Any] | None = None,
) -> tuple[str, Trace, list[GroundedObject]]:
    """The grounded text, its parsed trace and the objects; raises :class:`Dropped` (align_failed)."""
    objects: list[GroundedObject] = []
    inserts: list[tuple[int, list[Grounding]]] = []
    for r in sorted(resolved, key=lambda r: r.mention.start):
        gs = []
        for c in r.masks:
            g, box, point = make_grounding(grounding, r.mention.plural, c.mask, r.mention.label, max_vertices, params)
            extra = {"ambiguous": r.candidates} if r.ambiguous else {}
            objects.append(GroundedObject(r.mention.label, r.mention.phrase, c.mask, c.score, box, point, g, extra))
            gs.append(g)
        if gs:
            inserts.append((r.mention.end, gs))
    segs: list[Segment] = []
    pos = 0
    for end, gs in inserts:
        if end > pos:
            segs.append(Text(thought[pos:end]))
        for g in gs:
            segs += [Text(" "), g]
        pos = end
    if pos < len(thought):
        segs.append(Text(thought[pos:]))
    try:
        text = format_trace(Trace(tuple(segs), answer), dialect, frame, image_size=size, lossy=True)
        trace = (parser or get_parser(dialect, frame)).parse(text, size)
    except GroundkitError as exc:
        raise Dropped(ALIGN_FAILED, str(exc).splitlines()[0]) from exc
    if len(trace.groundings) != len(objects):
        raise Dropped(ALIGN_FAILED, f"wrote {len(objects)} groundings, parsed back {len(trace.groundings)}")
    return text, trace, objects
