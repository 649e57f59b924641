"""Questions and answers about placed objects: counting (with distractors) and spatial relations.

Every answer is computed from the placed objects, never from the plan, so answers match
the objects by construction. Spatial relations use the visible centroids with a margin so
no question sits on a borderline: left / right / above / below, closer to the centre, larger;
asked as yes/no or multiple choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from groundkit.scenes.compose import ObjectSpec, PlacedObject

MARGIN = 0.12  # unit-frame centroid gap for left/right/above/below
CENTRE_MARGIN = 0.08  # gap in distance to the image centre
AREA_RATIO = 1.5  # "larger" means at least this much more visible area
COUNT_BY = ("both", "both", "both", "shape", "color")  # what a counting question names, drawn uniformly
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


@dataclass(frozen=True)
class CountTarget:
    """What a counting question counts: a shape, a colour, or both."""

    shape: str | None
    color: str | None

    def matches(self, spec: ObjectSpec) -> bool:
        return (self.shape is None or spec.shape == self.shape) and (self.color is None or spec.color == self.color)

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.color, self.shape or "shape") if p)

    @property
    def plural(self) -> str:
        return self.label + "s"


def plan_counting(rng: np.random.Generator, shapes: tuple[str, ...], colors: tuple[str, ...], max_objects: int, max_count: int,
                  *, min_count: int = 0, count_by: tuple[str, ...] = COUNT_BY, max_distractors: int | None = None,
                  large_share: float = 0.35) -> tuple[CountTarget, list[ObjectSpec]]:
    """A target and the objects to place: ``k`` targets (``min_count`` .. ``max_count``; with
    ``min_count`` 0, sometimes none) and near-miss distractors (at most ``max_distractors``)."""
    kind = rng.choice(list(count_by))
    shape, color = str(rng.choice(shapes)), str(rng.choice(colors))
    target = CountTarget(shape if kind != "color" else None, color if kind != "shape" else None)
    zero = rng.random() < 0.08
    k = 0 if zero and min_count == 0 else int(rng.integers(max(1, min_count), max_count + 1))
    specs = [ObjectSpec(shape if target.shape else str(rng.choice(shapes)), color if target.color else str(rng.choice(colors)), _size(rng, large_share)) for _ in range(k)]
    if max_distractors is None:
        n_distract = int(rng.integers(1, max(2, max_objects - k + 1)))
    else:
        n_distract = int(rng.integers(0, max(0, min(max_distractors, max_objects - k)) + 1))
    while len(specs) < k + n_distract:
        near = rng.random() < 0.7
        s = shape if near and rng.random() < 0.5 else str(rng.choice(shapes))
        c = color if near and s != shape else str(rng.choice(colors))
        spec = ObjectSpec(s, c, _size(rng, large_share))
        if not target.matches(spec):
            specs.append(spec)
    order = rng.permutation(len(specs))
    return target, [specs[i] for i in order]


def counting_record(target: CountTarget, objects: list[PlacedObject]) -> dict[str, Any]:
    counted = [o for o in objects if target.matches(o.spec)]
    return {
        "question": f"How many {target.plural} are there?",
        "answer": str(len(counted)),
        "answer_type": "count",
        "task": "counting",
        "target": target.label,
        "objects": [_truth(o, target.label) for o in counted],
    }


def plan_spatial(rng: np.random.Generator, shapes: tuple[str, ...], colors: tuple[str, ...], max_objects: int) -> list[ObjectSpec]:
    """2..max objects, each a unique colour-shape pair, so "the red circle" names one object."""
    n = int(rng.integers(2, max(3, min(max_objects, 6) + 1)))
    pairs = [(s, c) for s in shapes for c in colors]
    chosen = rng.choice(len(pairs), size=min(n, len(pairs)), replace=False)
    return [ObjectSpec(pairs[i][0], pairs[i][1], _size(rng)) for i in chosen]


def _relations(a: PlacedObject, b: PlacedObject) -> dict[str, float]:
    """Clear relations of a to b with their strength (only those beyond the margin)."""
    dx, dy = b.centroid[0] - a.centroid[0], b.centroid[1] - a.centroid[1]
    out = {}
    if abs(dx) >= MARGIN:
        out["left of" if dx > 0 else "right of"] = abs(dx)
    if abs(dy) >= MARGIN:
        out["above" if dy > 0 else "below"] = abs(dy)
    da, db = _centre_distance(a), _centre_distance(b)
    if db - da >= CENTRE_MARGIN:
        out["closer to the centre"] = db - da
    if a.area >= AREA_RATIO * b.area:
        out["larger"] = a.area / b.area
    return out


def _centre_distance(o: PlacedObject) -> float:
    return math.hypot(o.centroid[0] - 0.5, o.centroid[1] - 0.5)


def spatial_record(rng: np.random.Generator, objects: list[PlacedObject]) -> dict[str, Any] | None:
    """A spatial question about two objects with a clear relation, or None when no pair has one."""
    facts = [(i, j, rel, s) for i, a in enumerate(objects) for j, b in enumerate(objects) if i != j for rel, s in _relations(a, b).items()]
    if not facts:
        return None
    i, j, relation, _ = facts[int(rng.integers(len(facts)))]
    a, b = objects[i], objects[j]
    na, nb = f"the {a.label}", f"the {b.label}"
    record: dict[str, Any] = {"task": "spatial", "relation": relation, "objects": [_truth(a, a.label), _truth(b, b.label)]}
    if rng.random() < 0.5:
        asked, answer = relation, "yes"
        if rng.random() < 0.5:
            asked, answer = (OPPOSITE[relation], "no") if relation in OPPOSITE else (relation, "no")
            if relation not in OPPOSITE:
                na, nb = nb, na  # "Is B larger than A?" -> no
        record.update(question=_yes_no_question(asked, na, nb), answer=answer, answer_type="yes_no")
        return record
    if relation in OPPOSITE:
        rel = _relations(a, b)
        options = [relation, OPPOSITE[relation]]
        other_axis = ("above", "below") if relation in ("left of", "right of") else ("left of", "right of")
        if not any(r in rel for r in other_axis) and _axis_gap(a, b, other_axis) < 0.03:
            options += list(other_axis)  # clearly aligned on the other axis: neither is true
        choices = [options[k] for k in rng.permutation(len(options))]
        question = f"Where is {na} relative to {nb}?"
    else:
        choices = [na, nb] if rng.random() < 0.5 else [nb, na]
        question = "Which is closer to the centre of the image?" if relation == "closer to the centre" else "Which is larger?"
        relation = na
    letters = "ABCD"
    record.update(
        question=question + " " + " ".join(f"({letters[k]}) {c}" for k, c in enumerate(choices)),
        answer=letters[choices.index(relation)],
        answer_type="multiple_choice",
        choices=choices,
    )
    return record


def _axis_gap(a: PlacedObject, b: PlacedObject, axis: tuple[str, str]) -> float:
    k = 1 if axis[0] == "above" else 0
    return abs(a.centroid[k] - b.centroid[k])


def _yes_no_question(relation: str, na: str, nb: str) -> str:
    if relation == "closer to the centre":
        return f"Is {na} closer to the centre of the image than {nb}?"
    if relation == "larger":
        return f"Is {na} larger than {nb}?"
    return f"Is {na} {relation} {nb}?"


def _size(rng: np.random.Generator, large_share: float = 0.35) -> str:
    return "large" if rng.random() < large_share else "small"


def _truth(o: PlacedObject, label: str) -> dict[str, Any]:
    """The ground-truth object: label, box, interior point and COCO RLE mask (unit frame)."""
    from groundkit.geometry import rle_encode

    synonyms = sorted({o.spec.shape, o.spec.label} - {label})
    return {
        "label": label,
        "box": [round(v, 6) for v in o.box],
        "points": [[round(o.point[0], 6), round(o.point[1], 6)]],
        "mask": rle_encode(o.mask),
        **({"synonyms": synonyms} if synonyms else {}),
    }
