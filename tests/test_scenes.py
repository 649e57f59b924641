"""Synthetic scenes: masks match boxes, points and pixels; answers match the objects; runs are reproducible."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import groundkit as gk
from groundkit.cli import app
from groundkit.scenes import COLORS, generate_scenes, make_scene, parse_split
from groundkit.scenes.questions import AREA_RATIO, CENTRE_MARGIN, MARGIN


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    generate_scenes(out, 40, seed=3, size="tiny", split="train=0.75,test=0.25")
    records = [json.loads(line) for name in ("train", "test") for line in (out / f"{name}.jsonl").read_text().splitlines()]
    return out, records


def test_every_record_loads_as_ground_truth(scenes):
    out, records = scenes
    truths = {**gk.load_ground_truth(out / "train.jsonl"), **gk.load_ground_truth(out / "test.jsonl")}
    assert len(truths) == 40 == len(records)
    assert {t.answer_type for t in truths.values()} >= {"count", "yes_no", "multiple_choice"}
    assert {t.extra["task"] for t in truths.values()} == {"counting", "spatial"}


def test_masks_match_boxes_points_and_pixels(scenes):
    out, records = scenes
    checked = 0
    for rec in records:
        img = np.asarray(Image.open(out / rec["image"]), dtype=float)
        assert img.shape == (rec["height"], rec["width"], 3)
        truth = gk.GroundTruth.from_dict(rec)
        for obj in truth.objects:
            mask = gk.rle_decode(obj.rle)
            assert mask.shape == (rec["height"], rec["width"]) and mask.any()
            assert np.allclose(gk.mask_bbox(mask), obj.box, atol=1e-6), rec["id"]
            (x, y), = obj.points
            assert obj.contains(x, y), (rec["id"], obj.label)
            assert mask[int(y * rec["height"]), int(x * rec["width"])]
            color = next(c for c in COLORS if obj.label.startswith(c) or c in obj.synonyms[-1])
            assert np.abs(img[mask].mean(axis=0) - COLORS[color]).max() < 25, (rec["id"], obj.label)
            checked += 1
    assert checked > 40


def _centroid(obj: gk.ObjectTruth) -> tuple[float, float]:
    ys, xs = np.nonzero(obj.rle_mask)
    h, w = obj.rle_mask.shape
    return (xs.mean() + 0.5) / w, (ys.mean() + 0.5) / h


def test_count_answers_match_the_objects_and_the_scene(scenes):
    _, records = scenes
    counts = [r for r in records if r["task"] == "counting"]
    assert counts
    for rec in counts:
        target = rec["target"].split()
        words = target if target[-1] != "shape" else target[:-1]
        in_scene = [o for o in rec["scene"] if all(w in o["label"].split() for w in words)]
        assert rec["answer"] == str(len(rec["objects"])) == str(len(in_scene)), rec["id"]
        assert rec["question"] == f"How many {rec['target']}s are there?"


def test_spatial_answers_follow_from_the_masks(scenes):
    _, records = scenes
    spatial = [r for r in records if r["task"] == "spatial"]
    assert spatial
    for rec in spatial:
        truth = gk.GroundTruth.from_dict(rec)
        a, b = truth.objects
        (ax, ay), (bx, by) = _centroid(a), _centroid(b)
        holds = {
            "left of": bx - ax >= MARGIN, "right of": ax - bx >= MARGIN, "above": by - ay >= MARGIN, "below": ay - by >= MARGIN,
            "closer to the centre": math.hypot(bx - .5, by - .5) - math.hypot(ax - .5, ay - .5) >= CENTRE_MARGIN - 1e-9,
            "larger": a.rle_mask.sum() >= AREA_RATIO * b.rle_mask.sum(),
        }
        assert holds[rec["relation"]], rec["id"]
        if rec["answer_type"] == "multiple_choice":
            picked = rec["choices"][ord(rec["answer"]) - 65]
            assert picked in (rec["relation"], f"the {a.label}"), rec["id"]
        else:
            assert rec["answer"] in ("yes", "no")
            assert a.label in rec["question"] and b.label in rec["question"]


def test_generation_is_deterministic_and_extends(tmp_path):
    r1, i1 = make_scene(5, 7, "tiny")
    r2, i2 = make_scene(5, 7, "tiny")
    assert r1 == r2 and i1.tobytes() == i2.tobytes()
    assert make_scene(6, 7, "tiny")[0] != r1
    generate_scenes(tmp_path / "a", 6, seed=1, size="tiny")
    generate_scenes(tmp_path / "b", 6, seed=1, size="tiny")
    generate_scenes(tmp_path / "c", 3, seed=1, size="tiny")
    a = (tmp_path / "a" / "scenes.jsonl").read_text()
    assert a == (tmp_path / "b" / "scenes.jsonl").read_text()
    assert a.startswith((tmp_path / "c" / "scenes.jsonl").read_text())
    assert (tmp_path / "a/images/scene-1-000002.png").read_bytes() == (tmp_path / "c/images/scene-1-000002.png").read_bytes()


def test_split_is_an_exact_seeded_partition(scenes):
    out, records = scenes
    manifest = json.loads((out / "manifest.json").read_text())
    assert {k: v["count"] for k, v in manifest["splits"].items()} == {"train": 30, "test": 10}
    assert len({r["id"] for r in records}) == 40
    assert parse_split("a=0.5,b=0.25,c=0.25") == {"a": 0.5, "b": 0.25, "c": 0.25}
    for bad in ("train=0.9", "train=0.5,test=x", "=1", "train=1.5,test=-0.5"):
        with pytest.raises(gk.GroundkitError):
            parse_split(bad)


def test_scenes_cli(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["scenes", "--n", "3", "--seed", "2", "--size", "96x80", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rec = json.loads((tmp_path / "scenes.jsonl").read_text().splitlines()[0])
    assert (rec["width"], rec["height"]) == (96, 80) and (tmp_path / rec["image"]).exists()
    bad = runner.invoke(app, ["scenes", "--n", "3", "--out", str(tmp_path), "--split", "train=2"])
    assert bad.exit_code == 1 and "split" in bad.output
    bad = runner.invoke(app, ["scenes", "--n", "3", "--out", str(tmp_path), "--size", "huge"])
    assert bad.exit_code == 1 and "unknown scene size" in bad.output
