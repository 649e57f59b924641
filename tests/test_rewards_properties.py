"""Properties of the matching and IoU code the reward terms stand on, and of label/answer reading."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import groundkit as gk

unit = st.floats(0, 1, allow_nan=False)
below_one = st.floats(0, 0.999, allow_nan=False)


@st.composite
def box(draw):
    x1, x2 = sorted((draw(below_one), draw(below_one)))
    y1, y2 = sorted((draw(below_one), draw(below_one)))
    return (x1, y1, x2 + 1e-3, y2 + 1e-3)


boxes = st.lists(box(), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(box(), box())
def test_box_iou_is_symmetric_bounded_and_one_for_identical(a, b):
    m = gk.box_iou_matrix(np.array([a, b]), np.array([a, b]))
    assert m[0, 1] == pytest.approx(m[1, 0])
    assert ((0 <= m) & (m <= 1 + 1e-12)).all()
    assert m[0, 0] == pytest.approx(1.0) and m[1, 1] == pytest.approx(1.0)
    assert m[0, 1] == pytest.approx(gk.box_iou(a, b))


@settings(max_examples=200, deadline=None)
@given(boxes, boxes)
def test_hungarian_is_never_worse_than_greedy_in_total_iou(pred, gt):
    iou = gk.box_iou_matrix(np.array(pred), np.array(gt))
    hungarian, greedy = gk.hungarian(iou), gk.greedy_pairs(iou)
    for pairs in (hungarian, greedy):
        assert len({r for r, _ in pairs}) == len(pairs) == len({c for _, c in pairs})  # one-to-one
    total = lambda pairs: sum(iou[r, c] for r, c in pairs)  # noqa: E731
    assert total(hungarian) >= total(greedy) - 1e-9


def test_hungarian_beats_greedy_where_greedy_is_trapped():
    score = np.array([[0.9, 0.8], [0.7, 0.0]])
    assert sorted(gk.greedy_pairs(score)) == [(0, 0)]  # 0.9, then row 1 can only take 0.0
    assert sorted(gk.hungarian(score)) == [(0, 1), (1, 0)]  # 0.8 + 0.7 = 1.5


def fmt(xs):
    return "".join(f"<box>[{int(b[0] * 999)}, {int(b[1] * 999)}, {int(b[2] * 999) + 1}, {int(b[3] * 999) + 1}]</box>" for b in xs)


@settings(max_examples=60, deadline=None)
@given(boxes, boxes)
def test_box_terms_stay_in_unit_interval_and_hungarian_never_exceeds_greedy(pred, gt):
    truth = gk.GroundTruth.from_dict({"id": "s", "objects": [{"label": "o", "box": list(b)} for b in gt]})
    result = gk.RewardSet.from_spec("box_iou_greedy,box_iou_hungarian")([f"<think>{fmt(pred)}</think><answer>1</answer>"], [truth])
    greedy, hungarian = result.values["box_iou_greedy"][0], result.values["box_iou_hungarian"][0]
    assert 0 <= hungarian <= greedy + 1e-9 <= 1 + 2e-9  # one-to-one can only lose IoU to best-per-box


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(unit, unit), max_size=12), st.lists(box(), max_size=5))
def test_point_terms_stay_in_unit_interval(points, gt):
    text = "".join(f"<point>({int(x * 1000)}, {int(y * 1000)})</point>" for x, y in points)
    truth = gk.GroundTruth.from_dict({"id": "s", "objects": [{"label": "o", "box": list(b)} for b in gt]})
    values = gk.RewardSet.from_spec("point_f1,point_in_mask")([f"<think>{text}</think><answer>1</answer>"], [truth]).values
    for name, (v,) in values.items():
        assert v is None or 0 <= v <= 1, name


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("Mugs", "mug", True), ("knives", "knife", True), ("shelves", "shelf", True), ("boxes", "box", True),
     ("berries", "berry", True), ("glasses", "glass", True), ("The red Cups", "red cup", True), ("bus", "buses", True),
     ("cat", "dog", False), ("red cup", "blue cup", False)],
)
def test_labels_match_case_and_plural_insensitively(a, b, expected):
    assert gk.labels_match(a, gk.label_keys(b)) is expected and gk.labels_match(b, gk.label_keys(a)) is expected


def test_synonyms_and_unlabelled_predictions():
    keys = gk.label_keys("mug", ["cup", "coffee cup"])
    assert gk.labels_match("Cups", keys) and gk.labels_match("coffee cups", keys) and not gk.labels_match("plate", keys)
    assert gk.labels_match(None, keys) and gk.labels_match("  ", keys)


def test_hedged_answers_read_as_no_answer():
    assert gk.single_count("2 or 3") is None and gk.single_count("three") == 3 and gk.single_count("1,024") == 1024
    assert gk.yes_no("yes or no") is None and gk.yes_no("No.") is False
    assert gk.choice_indices("A or B", ("x", "y")) == {0, 1} and gk.choice_indices("A cat", ("dog", "cat")) == {1}
    assert gk.choice_indices("I think B", ("x", "y")) == {1}
