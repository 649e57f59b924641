"""A noisy oracle: grounded completions written from the ground truth, with controlled mistakes.

It stands in for a model where none is available (the demo, tests, sanity checks of a
metric pipeline): counting questions get a point per counted object, spatial ones a box
per named object, then the answer. A share ``wrong`` of records goes wrong the way models
do (a missed or spurious point and the count that follows from it; a flipped relation),
and a share ``invalid`` is cut short, so format validity is exercised too. Deterministic
per ``seed`` and record id.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from groundkit.rewards.groundtruth import GroundTruth
from groundkit.text.formatter import format_trace
from groundkit.trace import Grounding, Segment, Text, Trace


@dataclass(frozen=True)
class NoisyOracle:
    """Writes one completion per ground-truth record (see the module docstring)."""

    wrong: float = 0.2
    invalid: float = 0.1
    jitter: float = 0.01
    seed: int = 0
    dialect: str = "groundkit"

    def complete(self, truth: GroundTruth) -> str:
        rng = np.random.default_rng([self.seed, zlib.crc32(truth.id.encode())])
        mistake = rng.random() < self.wrong
        objects = list(truth.objects or ())
        if truth.answer_type == "count":
            think, answer = self._count(rng, truth, objects, mistake)
        else:
            think, answer = self._spatial(rng, truth, objects, mistake)
        text = format_trace(Trace(tuple(think), answer), self.dialect, image_size=truth.image_size)
        if rng.random() < self.invalid:
            text = text[: int(rng.integers(1, max(2, len(text) - 12)))]
        return text

    def _jit(self, rng: np.random.Generator, v: float) -> float:
        return float(min(1.0, max(0.0, v + rng.normal(0, self.jitter))))

    def _count(self, rng: np.random.Generator, truth: GroundTruth, objects: list, mistake: bool) -> tuple[list[Segment], str]:
        label = truth.extra.get("target") or (objects[0].label if objects else "object")
        points = [(o.points[0] if o.points else _centre(o.bbox)) for o in objects if o.points or o.bbox]
        if mistake and points and rng.random() < 0.5:
            points.pop(int(rng.integers(len(points))))
        elif mistake:
            points.append((float(rng.uniform(0.05, 0.95)), float(rng.uniform(0.05, 0.95))))
        think: list[Segment] = [Text(f"I look for every {label} in the image. ")]
        for k, (x, y) in enumerate(points):
            think += [Grounding("point", (self._jit(rng, x), self._jit(rng, y)), label), Text(", " if k < len(points) - 1 else ". ")]
        think.append(Text(f"That makes {len(points)}."))
        return think, str(len(points))

    def _spatial(self, rng: np.random.Generator, truth: GroundTruth, objects: list, mistake: bool) -> tuple[list[Segment], str]:
        think: list[Segment] = [Text("I locate the objects the question names: ")]
        for o in objects:
            if o.bbox is None:
                continue
            x1, y1, x2, y2 = o.bbox
            box = sorted((self._jit(rng, x1), self._jit(rng, x2))), sorted((self._jit(rng, y1), self._jit(rng, y2)))
            if box[0][1] - box[0][0] > 0.005 and box[1][1] - box[1][0] > 0.005:
                think += [Text(f"the {o.label} "), Grounding("box", (box[0][0], box[1][0], box[0][1], box[1][1]), o.label), Text(". ")]
        think.append(Text("Comparing their positions gives the answer."))
        return think, _answer(rng, truth, mistake)


def _centre(box: tuple[float, float, float, float] | None) -> tuple[float, float]:
    assert box is not None
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _answer(rng: np.random.Generator, truth: GroundTruth, mistake: bool) -> str:
    answer = truth.answer or ""
    if not mistake:
        return answer
    if truth.answer_type == "yes_no":
        return "no" if answer.strip().lower() in ("yes", "true") else "yes"
    if truth.answer_type == "multiple_choice" and len(truth.choices) > 1:
        letters = [chr(65 + k) for k in range(len(truth.choices)) if chr(65 + k) != answer.strip().upper()]
        return letters[int(rng.integers(len(letters)))]
    return "unsure"


def simulate_completions(truths: Iterable[GroundTruth], **oracle: object) -> list[dict[str, str]]:
    """``{"id", "completion"}`` rows for each record, written by a :class:`NoisyOracle` (its fields as keywords)."""
    model = NoisyOracle(**oracle)  # type: ignore[arg-type]
    return [{"id": t.id, "completion": model.complete(t)} for t in truths]
