"""Built-in reward terms: format, answer, count_consistency, duplicate_penalty,
grounded_if_correct, consistency (the geometric terms live in ``reward_grounding``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from groundkit_plugins.reward_grounding import TERMS as GROUNDING_TERMS

from groundkit import (
    ConsistencyJudge,
    OverlapJudge,
    ParseError,
    RewardTerm,
    ScoringBatch,
    answer_correct,
    box_iou_matrix,
    get_registry,
    hookimpl,
    single_count,
)


def _data_problem(batch: ScoringBatch, i: int) -> bool:
    """The text failed to parse for a reason other than the text (e.g. a pixel frame without image size)."""
    err = batch.parse_error(i)
    return err is not None and not isinstance(err, ParseError)


@dataclass(frozen=True)
class Format(RewardTerm):
    """1.0 when the completion parses under the dialect; ``prefix_credit`` for a valid but
    unfinished prefix (a truncated completion); 0.0 otherwise. Always the strict parse, also
    when the batch reads leniently."""

    prefix_credit: float = 0.0
    name = "format"
    description = "the completion parses under the dialect (optional partial credit for a valid prefix)"

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        if _data_problem(batch, i):
            return None
        if batch.parse_error(i) is None:
            return 1.0
        return self.prefix_credit if self.prefix_credit and batch.is_valid_prefix(i) else 0.0


@dataclass(frozen=True)
class Answer(RewardTerm):
    """1.0 for a correct answer: exact integer for counts, option letter or text for multiple
    choice, yes/no, numbers within ``rel_tol`` / ``abs_tol``, normalised text otherwise.
    Hedged answers (several candidates) and unparseable completions score 0."""

    rel_tol: float = 0.01
    abs_tol: float = 1e-6
    name = "answer"
    description = "the answer is right (count, multiple choice, yes/no, number with tolerance, text); hedges score 0"
    columns = ("answer", "answer_type", "choices")

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        truth = batch.truth(i)
        if truth is None or truth.answer is None or _data_problem(batch, i):
            return None
        trace = batch.trace(i)
        return answer_correct(trace.answer if trace is not None else None, truth, self.rel_tol, self.abs_tol)


@dataclass(frozen=True)
class CountConsistency(RewardTerm):
    """1.0 when the number of point groundings equals the count the answer gives.

    Applies to count questions (``answer_type`` count) and, without ground truth, to any
    completion whose answer is a single integer. A count question answered without a single
    count (or unparseable) scores 0.
    """

    name = "count_consistency"
    description = "the number of point groundings equals the count in the answer"
    columns = ("answer_type",)

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        truth = batch.truth(i)
        kind = truth.answer_type if truth is not None else None
        if (kind is not None and kind != "count") or _data_problem(batch, i):
            return None
        trace = batch.trace(i)
        count = single_count(trace.answer) if trace is not None else None
        if count is None:
            return 0.0 if kind == "count" else None
        return float(len(batch.groundings(i, "point")) == count)


@dataclass(frozen=True)
class DuplicatePenalty(RewardTerm):
    """Minus the share of groundings that nearly repeat an earlier one of the same type:
    points closer than ``point_distance`` (unit frame), boxes or masks with IoU above
    ``iou_threshold``. 0.0 without duplicates, towards -1.0 when all repeat."""

    iou_threshold: float = 0.9
    point_distance: float = 0.01
    resolution: int = 128
    name = "duplicate_penalty"
    description = "penalises near-duplicate groundings (IoU > threshold, points closer than a threshold)"

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        trace = batch.trace(i)
        if trace is None:
            return None
        groundings = batch.groundings(i)
        if not groundings:
            return 0.0
        by_type: dict[str, list] = {}
        for g in groundings:
            by_type.setdefault(g.type, []).append(g)
        repeats = sum(self.repeats(type_name, items) for type_name, items in by_type.items() if len(items) > 1)
        return -repeats / len(groundings)

    def repeats(self, type_name: str, items: list) -> int:
        """How many items nearly repeat some item before them."""
        if type_name == "point":
            xy = [g.coords[:2] for g in items]
            return sum(
                any(math.hypot(xy[k][0] - xy[m][0], xy[k][1] - xy[m][1]) < self.point_distance for m in range(k))
                for k in range(1, len(xy))
            )
        kind = get_registry().grounding_type(type_name)
        boxes = np.array([kind.bbox(g) for g in items], dtype=float)
        iou = box_iou_matrix(boxes, boxes)
        if type_name != "box":
            iou = self.region_iou(items, kind, boxes)
        return int(np.tril(iou > self.iou_threshold, k=-1).any(axis=1).sum())

    def region_iou(self, items: list, kind, boxes: np.ndarray) -> np.ndarray:
        """Rasterised IoU for the pairs that could exceed the threshold (an exact bound prunes the rest):
        IoU <= (intersection of the bounding boxes) / (the larger area)."""
        iou = np.zeros((len(items), len(items)))
        areas: dict[int, float] = {}
        r = self.resolution
        for a in range(1, len(items)):
            for b in range(a):
                w = min(boxes[a, 2], boxes[b, 2]) - max(boxes[a, 0], boxes[b, 0])
                h = min(boxes[a, 3], boxes[b, 3]) - max(boxes[a, 1], boxes[b, 1])
                if w <= 0 or h <= 0:
                    continue
                largest = max(areas.get(a) or areas.setdefault(a, kind.area(items[a])),
                              areas.get(b) or areas.setdefault(b, kind.area(items[b])))
                if not largest or w * h / largest <= self.iou_threshold:
                    continue
                ma, mb = kind.to_mask(items[a], r, r), kind.to_mask(items[b], r, r)
                union = np.logical_or(ma, mb).sum()
                iou[a, b] = np.logical_and(ma, mb).sum() / union if union else 0.0
        return iou


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


@dataclass(frozen=True)
class GroundedIfCorrect(RewardTerm):
    """The grounding reward, paid only when the answer is right (DeepEyes' fix for reward hacking).

    Right answer: the mean of the ``grounding`` terms for the grounding types the completion
    uses (all of them when it uses none); wrong answer: 0.0; no reference answer: None.
    """

    grounding: tuple[str, ...] = ("point_f1", "box_iou_hungarian", "mask_iou")
    answer: str = "answer"
    name = "grounded_if_correct"
    description = "grounding reward only when the answer is right (DeepEyes)"
    columns = ("answer", "answer_type", "choices", "objects")

    def score(self, batch: ScoringBatch) -> list[float | None]:
        reg = get_registry()
        correct = batch.scores(reg.reward_term(self.answer))
        inner = [reg.reward_term(name) for name in self.grounding]
        values = {t.name: batch.scores(t) for t in inner}
        out: list[float | None] = []
        for i in range(len(batch)):
            if correct[i] is None:
                out.append(None)
            elif correct[i] < 1.0:
                out.append(0.0)
            else:
                used = {g.type for g in batch.groundings(i)}
                chosen = [t for t in inner if t.grounding_type in used] or inner
                out.append(_mean([values[t.name][i] for t in chosen]))
        return out


@dataclass(frozen=True)
class Consistency(RewardTerm):
    """iVGR's textual-stream reward: for a completion without groundings, the ``judge``'s
    agreement with the best grounded completion of the same sample (same group).

    The best grounded completion has the highest answer score, then the highest mean of the
    ``grounding`` terms. Grounded completions, and textual ones without a grounded partner,
    get None. An LLM judge plugs in by subclassing this term with another ``name`` and judge.
    """

    judge: ConsistencyJudge = field(default_factory=OverlapJudge)
    grounding: tuple[str, ...] = ("point_f1", "box_iou_hungarian", "mask_iou")
    answer: str = "answer"
    name = "consistency"
    description = "agreement of a textual completion with the best grounded completion of the same sample"
    columns = ("answer", "objects")

    def score(self, batch: ScoringBatch) -> list[float | None]:
        reg = get_registry()
        correct = batch.scores(reg.reward_term(self.answer))
        inner = [batch.scores(reg.reward_term(name)) for name in self.grounding]
        out: list[float | None] = [None] * len(batch)
        pairs, slots = [], []
        for members in batch.groups().values():
            traces = {i: batch.trace(i) for i in members}
            grounded = [i for i, t in traces.items() if t is not None and batch.groundings(i)]
            if not grounded:
                continue
            best = max(grounded, key=lambda i: (correct[i] or 0.0, _mean([v[i] for v in inner]) or 0.0, -i))
            for i, t in traces.items():
                if t is not None and not batch.groundings(i):
                    pairs.append((t, traces[best], batch.truth(i)))
                    slots.append(i)
        if pairs:
            for i, value in zip(slots, self.judge.judge(pairs), strict=True):
                out[i] = float(value)
        return out


TERMS = (Format(), Answer(), CountConsistency(), DuplicatePenalty(), GroundedIfCorrect(), Consistency())


@hookimpl
def register_reward_terms(register):
    for term in (*TERMS, *GROUNDING_TERMS):
        register(term)
