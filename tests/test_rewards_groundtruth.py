"""The ground-truth schema: round trips, geometry of objects, and errors that name the record."""

from __future__ import annotations

import json

import numpy as np
import pytest

import groundkit as gk

RECORD = {
    "id": "s1", "image": "img/s1.png", "width": 200, "height": 100, "question": "How many mugs?",
    "answer": "2", "answer_type": "count",
    "objects": [
        {"label": "mug", "box": [0.1, 0.2, 0.3, 0.4], "points": [[0.2, 0.3]], "synonyms": ["cup"]},
        {"label": "plate", "mask": [[0.5, 0.5, 0.9, 0.5, 0.9, 0.9]]},
    ],
    "source": "synthetic",
}


def test_round_trip_keeps_every_field():
    gt = gk.GroundTruth.from_dict(RECORD)
    assert gt.to_dict() == RECORD
    again = gk.GroundTruth.from_dict(json.loads(json.dumps(gt.to_dict())))
    assert again.to_dict() == RECORD and again.image_size == (200, 100) and again.extra == {"source": "synthetic"}


def test_rle_masks_round_trip_and_give_geometry():
    m = np.zeros((100, 200), dtype=bool)
    m[20:40, 50:150] = True
    gt = gk.GroundTruth.from_dict({"id": "r", "objects": [{"label": "rug", "mask": gk.rle_encode(m)}]})
    rug = gt.objects[0]
    assert rug.bbox == pytest.approx((0.25, 0.2, 0.75, 0.4))
    assert rug.contains(0.5, 0.3) and not rug.contains(0.5, 0.5)
    assert rug.raster(50, 25).sum() == 5 * 25  # nearest-neighbour resample of the 20x100 block
    assert gk.GroundTruth.from_dict(gt.to_dict()).objects[0].rle_mask.sum() == m.sum()
    counts = {"size": [2, 2], "counts": [1, 2, 1]}  # uncompressed counts
    assert gk.GroundTruth.from_dict({"id": "u", "objects": [{"label": "x", "mask": counts}]}).objects[0].rle_mask.sum() == 2


def test_pixel_coordinates_are_converted_to_the_unit_frame():
    gt = gk.GroundTruth.from_dict({"id": "p", "coords": "pixel", "width": 200, "height": 100,
                                   "objects": [{"label": "a", "box": [20, 10, 100, 50], "points": [[100, 50]]}]})
    assert gt.objects[0].box == pytest.approx((0.1, 0.1, 0.5, 0.5)) and gt.objects[0].points == ((0.5, 0.5),)


def test_record_level_synonyms_and_unannotated_objects():
    gt = gk.GroundTruth.from_dict({"id": "y", "synonyms": {"mug": ["cup"]}, "objects": [{"label": "mug"}]})
    assert gt.objects[0].synonyms == ("cup",) and "cup" in gt.objects[0].keys
    assert gk.GroundTruth.from_dict({"id": "n", "answer": "yes"}).objects is None
    assert gk.GroundTruth.from_dict({"id": "e", "objects": []}).objects == ()


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"answer_type": "essay"}, "answer_type must be one of"),
        ({"objects": [{"label": "x", "box": [0.5, 0.5, 0.1, 0.1]}]}, r"objects\[0\].box must have x1 < x2"),
        ({"objects": [{"label": "x", "box": [0.1, 0.1, 2.0, 0.5]}]}, r"objects\[0\].box is outside the image"),
        ({"objects": [{"box": [0.1, 0.1, 0.2, 0.2]}]}, r"objects\[0\].label must be non-empty"),
        ({"objects": [{"label": "x", "mask": {"size": [2, 2], "counts": [1, 1]}}]}, r"objects\[0\].mask: corrupt COCO RLE"),
        ({"objects": [{"label": "x", "mask": [0.1, 0.1, 0.2, 0.2]}]}, "at least 3"),
        ({"objects": [{"label": "x", "points": [[0.1]]}]}, r"points\[0\] must be a list of 2"),
        ({"coords": "pixel", "objects": []}, "needs width and height"),
        ({"width": -3}, "width must be a positive integer"),
        ({"objects": "mug"}, "objects must be a list"),
    ],
)
def test_bad_records_raise_data_errors_naming_the_record(record, message):
    with pytest.raises(gk.DataError, match=message) as info:
        gk.GroundTruth.from_dict({"id": "bad7", **record})
    assert info.value.record_id == "bad7" and str(info.value).startswith("record bad7: ")


def test_reading_jsonl_reports_bad_lines_and_goes_on(tmp_path):
    path = tmp_path / "gt.jsonl"
    path.write_text("\n".join([json.dumps(RECORD), "{not json", json.dumps({"objects": 3}), ""]))
    items = list(gk.read_ground_truth(path))
    assert isinstance(items[0], gk.GroundTruth) and items[0].id == "s1"
    assert [str(e).split(":")[0] for e in items[1:]] == ["record line 2", "record line 3"]
    with pytest.raises(gk.DataError, match="record line 2"):
        gk.load_ground_truth(path)
    with pytest.raises(gk.DataError, match="file not found"):
        list(gk.read_ground_truth(tmp_path / "missing.jsonl"))
