"""Grounding reward terms: point_in_mask, point_f1, box_iou_greedy, box_iou_hungarian, mask_iou.

Conventions shared by these terms (all coordinates in the unit frame):

- None when the sample has no annotated objects (``objects`` absent) or none of the kind
  the term compares against (e.g. only points for a box term), or the text could not be
  parsed for a data reason (a pixel frame without the image size).
- 0.0 when the completion does not parse, or when exactly one side (predictions / ground
  truth) is empty; 1.0 when both are empty (nothing to ground, nothing grounded).
- A prediction only pairs with an object whose label it matches (case/plural-insensitive,
  synonyms); an unlabelled prediction matches any object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from groundkit import (
    ObjectTruth,
    ParseError,
    RewardTerm,
    ScoringBatch,
    Trace,
    box_iou_matrix,
    hungarian,
    label_forms,
    polygon_bbox,
)


def _labels_ok(labels: list[str | None], objects: list[ObjectTruth]) -> np.ndarray:
    """(n_pred, n_obj) booleans: may prediction i pair with object j by label."""
    ok = np.ones((len(labels), len(objects)), dtype=bool)
    for i, label in enumerate(labels):
        if label is not None and label.strip():
            forms = label_forms(label)
            for j, o in enumerate(objects):
                ok[i, j] = not forms.isdisjoint(o.keys)
    return ok


class GroundingTerm(RewardTerm):
    """Shared plumbing: the parsed trace and the relevant objects, or the reason the term does not apply."""

    def objects(self, o: ObjectTruth) -> bool:
        """Whether an object takes part in this term (has the geometry it compares against)."""
        return True

    def inputs(self, batch: ScoringBatch, i: int) -> tuple[Trace | None, list[ObjectTruth]] | None:
        """None: not applicable. ``(None, objs)``: the completion does not parse (scores 0)."""
        truth = batch.truth(i)
        if truth is None or truth.objects is None:
            return None
        objs = [o for o in truth.objects if self.objects(o)]
        if truth.objects and not objs:
            return None
        for o in objs:
            o.rle_mask  # noqa: B018 - decoded once; a DataError (corrupt or empty mask) makes the term None, recorded
        trace = batch.trace(i)
        if trace is None and not isinstance(batch.parse_error(i), ParseError):
            return None
        return trace, objs


def _both_sides(n_pred: int, n_obj: int) -> float | None:
    """The score when a side is empty (1.0 both, 0.0 one), None when both have items."""
    if n_pred == 0 and n_obj == 0:
        return 1.0
    if n_pred == 0 or n_obj == 0:
        return 0.0
    return None


@dataclass(frozen=True)
class PointInMask(GroundingTerm):
    """Share of predicted points inside the region (mask, else box) of an object with a matching label."""

    name = "point_in_mask"
    description = "share of predicted points inside a ground-truth mask of a label-matching object"
    columns = ("objects",)
    grounding_type = "point"

    def objects(self, o: ObjectTruth) -> bool:
        return o.has_region

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        got = self.inputs(batch, i)
        if got is None:
            return None
        trace, objs = got
        if trace is None:
            return 0.0
        points = batch.groundings(i, "point")
        if not points:
            return None
        ok = _labels_ok([p.label for p in points], objs)
        hits = sum(
            any(ok[k, j] and o.contains(p.coords[0], p.coords[1]) for j, o in enumerate(objs)) for k, p in enumerate(points)
        )
        return hits / len(points)


def _raster_crop(xy: tuple[float, ...], w: int, h: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A polygon rasterised on a ``w`` x ``h`` grid, only over its bounding box: (pixels, (x0, y0, x1, y1)).

    Matches rasterising the whole grid up to float rounding on edges (a stray pixel at most per edge)."""
    xs, ys = [v * w for v in xy[0::2]], [v * h for v in xy[1::2]]
    x0, y0 = max(0, int(min(xs)) - 1), max(0, int(min(ys)) - 1)
    x1, y1 = min(w, int(max(xs)) + 2), min(h, int(max(ys)) + 2)
    img = Image.new("1", (max(1, x1 - x0), max(1, y1 - y0)), 0)
    ImageDraw.Draw(img).polygon([(x - x0, y - y0) for x, y in zip(xs, ys)], fill=1, outline=1)
    return np.array(img, dtype=bool)[: y1 - y0, : x1 - x0], (x0, y0, x1, y1)


def _gt_raster(batch: ScoringBatch, o: ObjectTruth, w: int, h: int) -> tuple[np.ndarray, int]:
    """A ground-truth mask on the grid and its pixel count, once per batch."""
    key = ("mask_raster", id(o), w, h)
    if key not in batch.cache:
        m = o.raster(w, h)
        batch.cache[key] = (m, int(np.count_nonzero(m)))
    return batch.cache[key]


def _distance_to_box(xy: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(n, m) Euclidean distances from points (n, 2) to boxes (m, 4); 0 inside."""
    dx = np.maximum(np.maximum(boxes[None, :, 0] - xy[:, None, 0], 0), xy[:, None, 0] - boxes[None, :, 2])
    dy = np.maximum(np.maximum(boxes[None, :, 1] - xy[:, None, 1], 0), xy[:, None, 1] - boxes[None, :, 3])
    return np.hypot(dx, dy)


@dataclass(frozen=True)
class PointF1(GroundingTerm):
    """F1 of a one-to-one matching (Hungarian) of points to objects.

    A point may match an object inside its region (mask, else box), or within
    ``max_distance`` (unit frame) of it: of its box, or of its nearest annotated point for
    point-only objects. The assignment first maximises the number of matches, then prefers
    inside matches and closer ones. Recall counts every annotated object.
    """

    max_distance: float = 0.05
    name = "point_f1"
    description = "precision/recall F1 of points matched one-to-one to objects (inside mask, else by distance)"
    columns = ("objects",)
    grounding_type = "point"

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        got = self.inputs(batch, i)
        if got is None:
            return None
        trace, objs = got
        if trace is None:
            return 0.0
        points = batch.groundings(i, "point")
        edge = _both_sides(len(points), len(objs))
        if edge is not None:
            return edge
        xy = np.array([p.coords[:2] for p in points], dtype=float)
        dist = np.full((len(points), len(objs)), np.inf)
        inside = np.zeros_like(dist, dtype=bool)
        for j, o in enumerate(objs):
            if o.has_region:
                dist[:, j] = _distance_to_box(xy, np.array([o.bbox], dtype=float))[:, 0]
                for k in np.nonzero(dist[:, j] == 0)[0]:
                    inside[k, j] = o.contains(xy[k, 0], xy[k, 1])
            elif o.points:
                dist[:, j] = np.min(np.hypot(*(xy[:, None, :] - np.array(o.points)[None, :, :]).transpose(2, 0, 1)), axis=1)
        eligible = _labels_ok([p.label for p in points], objs) & (inside | (dist <= self.max_distance))
        base = 2.0 * min(len(points), len(objs)) + 1.0  # more matches always beat better-placed ones
        closeness = np.where(inside, 1.0, 1.0 - np.minimum(dist, self.max_distance) / (2 * self.max_distance))
        weight = np.where(eligible, base + closeness, 0.0)
        matched = len(hungarian(weight, minimum=base))
        if matched == 0:
            return 0.0
        precision, recall = matched / len(points), matched / len(objs)
        return 2 * precision * recall / (precision + recall)


def _box_inputs(term: GroundingTerm, batch: ScoringBatch, i: int) -> tuple[np.ndarray, float | None] | None:
    """The label-masked IoU matrix (pred x gt), or a fixed score where a side is empty (shared by box terms)."""
    key = ("box_iou", i)
    if key not in batch.cache:
        batch.cache[key] = _box_matrix(term, batch, i)
    return batch.cache[key]


def _box_matrix(term: GroundingTerm, batch: ScoringBatch, i: int) -> tuple[np.ndarray, float | None] | None:
    got = term.inputs(batch, i)
    if got is None:
        return None
    trace, objs = got
    if trace is None:
        return np.zeros((0, 0)), 0.0
    boxes = batch.groundings(i, "box")
    edge = _both_sides(len(boxes), len(objs))
    if edge is not None:
        return np.zeros((0, 0)), edge
    iou = box_iou_matrix(np.array([b.coords for b in boxes]), np.array([o.bbox for o in objs]))
    return np.where(_labels_ok([b.label for b in boxes], objs), iou, 0.0), None


@dataclass(frozen=True)
class BoxIoUGreedy(GroundingTerm):
    """iVGR's box reward: 0.5 x (mean over ground-truth boxes of the best IoU with a predicted box
    + mean over predicted boxes of the best IoU with a ground-truth box). Not one-to-one."""

    name = "box_iou_greedy"
    description = "0.5 x (mean best IoU per ground-truth box + mean best IoU per predicted box), as iVGR"
    columns = ("objects",)
    grounding_type = "box"

    def objects(self, o: ObjectTruth) -> bool:
        return o.has_region

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        got = _box_inputs(self, batch, i)
        if got is None:
            return None
        iou, fixed = got
        if fixed is not None:
            return fixed
        return 0.5 * (float(iou.max(axis=0).mean()) + float(iou.max(axis=1).mean()))


def matched_mean(score: np.ndarray) -> float:
    """Hungarian-matched total over the pairs, averaged as 0.5 x (total / n_gt + total / n_pred)."""
    total = sum(score[r, c] for r, c in hungarian(score))
    return 0.5 * (total / score.shape[1] + total / score.shape[0])


@dataclass(frozen=True)
class BoxIoUHungarian(GroundingTerm):
    """One-to-one (Hungarian) matched IoU; unmatched boxes on either side count 0:
    0.5 x (matched IoU sum / n_gt + matched IoU sum / n_pred)."""

    name = "box_iou_hungarian"
    description = "one-to-one matched mean IoU of boxes; unmatched boxes count 0 on both sides"
    columns = ("objects",)
    grounding_type = "box"

    def objects(self, o: ObjectTruth) -> bool:
        return o.has_region

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        got = _box_inputs(self, batch, i)
        if got is None:
            return None
        iou, fixed = got
        return fixed if fixed is not None else matched_mean(iou)


@dataclass(frozen=True)
class MaskIoU(GroundingTerm):
    """One-to-one matched IoU of predicted polygons with ground-truth masks (RLE or polygons),
    computed on a grid of at most ``resolution`` pixels on the long side; averaged like
    ``box_iou_hungarian``."""

    resolution: int = 256
    name = "mask_iou"
    description = "one-to-one matched mean IoU of polygon masks against ground-truth masks"
    columns = ("objects",)
    grounding_type = "mask"

    def objects(self, o: ObjectTruth) -> bool:
        return o.has_mask

    def grid(self, batch: ScoringBatch, i: int, objs: list[ObjectTruth]) -> tuple[int, int]:
        truth = batch.truth(i)
        size = truth.image_size if truth is not None else None
        if size is None:
            with_rle = [o for o in objs if o.rle is not None]
            size = (with_rle[0].rle["size"][1], with_rle[0].rle["size"][0]) if with_rle else (1, 1)
        w, h = size
        scale = self.resolution / max(w, h)
        return max(1, round(w * scale)), max(1, round(h * scale))

    def score_one(self, batch: ScoringBatch, i: int) -> float | None:
        got = self.inputs(batch, i)
        if got is None:
            return None
        trace, objs = got
        if trace is None:
            return 0.0
        masks = batch.groundings(i, "mask")
        edge = _both_sides(len(masks), len(objs))
        if edge is not None:
            return edge
        w, h = self.grid(batch, i, objs)
        gt_boxes = np.array([o.bbox for o in objs], dtype=float)
        pred_boxes = np.array([polygon_bbox(m.coords) for m in masks], dtype=float)
        overlaps = (box_iou_matrix(pred_boxes, gt_boxes) > 0) & _labels_ok([m.label for m in masks], objs)
        iou = np.zeros(overlaps.shape)
        for k in np.nonzero(overlaps.any(axis=1))[0]:
            pred, (x0, y0, x1, y1) = _raster_crop(masks[k].coords, w, h)
            area = int(pred.sum())
            for j in np.nonzero(overlaps[k])[0]:
                gt, gt_area = _gt_raster(batch, objs[j], w, h)
                inter = int(np.count_nonzero(pred & gt[y0:y1, x0:x1]))
                union = area + gt_area - inter
                iou[k, j] = inter / union if union else 0.0
        return matched_mean(iou)


TERMS = (PointInMask(), PointF1(), BoxIoUGreedy(), BoxIoUHungarian(), MaskIoU())
