"""Geometry of the built-in grounding types and COCO RLE masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import groundkit as gk

unit = st.floats(0, 1, allow_nan=False)


@st.composite
def boxes(draw):
    """Boxes with sides of at least 1e-6 (coordinates come from finite-precision frames)."""
    x1, y1 = draw(st.floats(0, 1 - 1e-6)), draw(st.floats(0, 1 - 1e-6))
    return (x1, y1, draw(st.floats(x1 + 1e-6, 1)), draw(st.floats(y1 + 1e-6, 1)))


@settings(max_examples=200, deadline=None)
@given(a=boxes(), b=boxes())
def test_box_iou_is_symmetric_bounded_and_one_for_identical(a, b):
    assert gk.box_iou(a, b) == pytest.approx(gk.box_iou(b, a))
    assert 0 <= gk.box_iou(a, b) <= 1
    assert gk.box_iou(a, a) == pytest.approx(1.0)


def test_box_type_geometry():
    box = gk.get_registry().grounding_type("box")
    g = gk.Grounding("box", (0.1, 0.2, 0.5, 0.6))
    assert box.area(g) == pytest.approx(0.16)
    assert box.contains(g, 0.3, 0.3) and not box.contains(g, 0.6, 0.3)
    m = box.to_mask(g, 100, 100)
    assert m.sum() == 40 * 40 and m[30, 30] and not m[10, 10]
    assert box.iou(g, gk.Grounding("box", (0.3, 0.2, 0.7, 0.6))) == pytest.approx(0.5 * 0.16 / (0.32 - 0.08))


def test_mask_type_geometry_matches_rasterisation():
    mask = gk.get_registry().grounding_type("mask")
    tri = gk.Grounding("mask", (0.0, 0.0, 1.0, 0.0, 0.0, 1.0))
    assert mask.area(tri) == pytest.approx(0.5)
    assert mask.bbox(tri) == (0.0, 0.0, 1.0, 1.0)
    assert mask.contains(tri, 0.2, 0.2) and not mask.contains(tri, 0.8, 0.8)
    raster = mask.to_mask(tri, 200, 200)
    assert raster.mean() == pytest.approx(0.5, abs=0.01)
    box = gk.Grounding("box", (0.0, 0.0, 1.0, 1.0))
    assert mask.iou(tri, box) == pytest.approx(0.5, abs=0.01)
    concave = gk.Grounding("mask", (0, 0, 1, 0, 1, 1, 0.5, 0.2, 0, 1))
    assert not mask.contains(concave, 0.5, 0.5)


def test_point_type_geometry():
    point = gk.get_registry().grounding_type("point")
    p = gk.Grounding("point", (0.25, 0.75))
    assert point.bbox(p) == (0.25, 0.75, 0.25, 0.75) and point.area(p) == 0
    m = point.to_mask(p, 8, 8)
    assert m.sum() == 1 and m[6, 2]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_rle_round_trip(h, w, seed):
    mask = np.random.default_rng(seed).random((h, w)) > 0.5
    rle = gk.rle_encode(mask)
    assert rle["size"] == [h, w] and isinstance(rle["counts"], str)
    assert (gk.rle_decode(rle) == mask).all()


def test_uncompressed_rle_and_corrupt_rle():
    mask = gk.rle_decode({"size": [2, 3], "counts": [1, 2, 3]})  # column-major runs: 1 off, 2 on, 3 off
    assert mask.tolist() == [[False, True, False], [True, False, False]]
    with pytest.raises(gk.DataError, match="record r1: corrupt COCO RLE"):
        gk.rle_decode({"size": [2, 3], "counts": [1, 2]}, "r1")
    with pytest.raises(gk.DataError):
        gk.rle_decode({"counts": "abc"}, "r2")


def test_mask_bbox_and_polygon_helpers():
    m = np.zeros((10, 20), bool)
    m[2:5, 4:8] = True
    assert gk.mask_bbox(m) == (4 / 20, 2 / 10, 8 / 20, 5 / 10)
    assert gk.mask_bbox(np.zeros((3, 3), bool)) is None
    assert gk.polygon_area((0, 0, 2, 0, 2, 2, 0, 2)) == 4
    assert gk.point_in_polygon((0, 0, 2, 0, 2, 2, 0, 2), 1, 1)
