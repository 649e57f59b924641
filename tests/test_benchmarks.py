"""Benchmark adapters read tiny copies written in each benchmark's published layout."""

from __future__ import annotations

import types

import bench_fixtures as fx
import pytest
from PIL import Image

import groundkit as gk


def load(name, path, media):
    items = list(gk.load_benchmark(name, path, media))
    return [i for i in items if isinstance(i, gk.GroundTruth)], [i for i in items if isinstance(i, gk.DataError)]


def test_countbenchqa_parquet_with_embedded_images(tmp_path):
    good, bad = load("countbenchqa", fx.countbenchqa(tmp_path), tmp_path / "media")
    assert [(t.answer, t.answer_type, t.extra["task"]) for t in good] == [("3", "count", "counting"), ("2", "count", "counting")]
    assert good[1].image_size == (80, 60) and Image.open(good[1].image).size == (80, 60)
    assert len(bad) == 1 and bad[0].record_id == "3" and "number" in str(bad[0])
    # without a media folder the size is still read, nothing is written
    no_media, _ = load("countbenchqa", fx.countbenchqa(tmp_path / "again"), None)
    assert no_media[0].image is None and no_media[0].image_size == (64, 48)


def test_countbenchqa_from_a_datasets_save_to_disk_export(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": fx.png(), "path": None}], "text": ["x"], "question": ["How many mugs?"], "number": [4]},
        features=datasets.Features({"image": datasets.Image(), "text": datasets.Value("string"), "question": datasets.Value("string"), "number": datasets.Value("int32")}),
    )
    ds.save_to_disk(str(tmp_path / "cb"))
    good, bad = load("countbenchqa", tmp_path / "cb", tmp_path / "media")
    assert not bad and good[0].answer == "4" and good[0].image_size == (64, 48)


def test_pixmo_count_points_in_pixels_become_unit_point_objects(tmp_path):
    good, bad = load("pixmo-count", fx.pixmo_count(tmp_path), None)
    apples, cars = good
    assert apples.question == "How many apples are there?" and apples.answer == "2"
    assert [o.points[0] for o in apples.objects] == [(0.1, 0.4), (0.9, 0.8)]
    assert cars.objects is None  # eval splits carry no points
    assert len(bad) == 1 and "ccc333" in str(bad[0]) and "image" in str(bad[0])


def test_pixmo_count_points_stored_as_a_struct_of_lists(tmp_path):
    path = fx.write_parquet(tmp_path / "p.parquet", [{"image": {"bytes": fx.png(100, 50), "path": None}, "image_sha256": "s", "count": 1, "points": {"x": [50.0], "y": [25.0]}, "label": "dog"}], ("image",))
    good, bad = load("pixmo-count", path, tmp_path / "m")
    assert not bad and good[0].objects[0].points == ((0.5, 0.5),)


def test_cv_bench_2d_keeps_count_and_relation(tmp_path):
    good, bad = load("cv-bench-2d", fx.cv_bench(tmp_path), tmp_path / "media")
    assert [(t.id, t.answer, t.extra["task"]) for t in good] == [("0", "C", "counting"), ("1", "B", "spatial")]
    assert good[0].choices == ("0", "3", "2", "1") and "(C) 2" in good[0].question
    assert gk.answer_correct("C", good[0]) == 1.0 and gk.answer_correct("2", good[0]) == 1.0
    assert len(bad) == 1 and bad[0].record_id == "3"


def test_vsr_jsonl_with_local_images(tmp_path):
    good, bad = load("vsr", fx.vsr(tmp_path), None)
    assert [(t.answer, t.extra["relation"]) for t in good] == [("no", "under"), ("yes", "below"), ("yes", "left of")]
    assert good[0].image_size == (120, 90) and good[2].image is None  # its image is not there: no picture, still evaluable
    assert "The umbrella is under the bed." in good[0].question
    assert len(bad) == 1 and bad[0].record_id == "line 4"


def test_blink_counting_and_spatial_relation_only(tmp_path):
    good, bad = load("blink", fx.blink(tmp_path), tmp_path / "media")
    assert {(t.id, t.answer, t.extra["task"]) for t in good} == {("val_Counting_1", "B", "counting"), ("val_Spatial_Relation_1", "A", "spatial")}
    assert len(bad) == 1 and bad[0].record_id == "test_Counting_1" and "hides" in str(bad[0])


def test_whatsup_shuffles_options_and_keeps_the_right_one(tmp_path):
    good, bad = load("whatsup", fx.whatsup(tmp_path), None)
    (t,) = good
    assert t.choices[ord(t.answer) - 65] == "A beer bottle on a armchair" and t.extra["relation"] == "on"
    assert t.image_size == (90, 70)
    assert len(bad) == 1 and bad[0].record_id == "missing"


def test_scenes_adapter_reads_a_scenes_folder(tmp_path):
    from groundkit.scenes import generate_scenes

    generate_scenes(tmp_path, 4, seed=0, size="tiny", split="train=0.5,test=0.5")
    good, bad = load("scenes", tmp_path, None)
    assert len(good) == 2 and not bad and all(Image.open(t.image).size == (128, 128) for t in good)


def test_unknown_benchmark_and_bad_spec():
    with pytest.raises(gk.UnknownNameError, match="cv-bench-2d"):
        list(gk.load_benchmark("nope", "x"))
    with pytest.raises(gk.DataError, match="not found"):
        list(gk.load_benchmark("vsr", "/nonexistent/file.jsonl"))


def test_hook_register_benchmark_adapters(fresh_registry, tmp_path):
    class Lines(gk.BenchmarkAdapter):
        name = "lines"
        description = "one question per line"

        def load(self, path, media_dir=None):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                question, _, answer = line.partition("=")
                yield gk.truth_from_fields({"question": question, "answer": answer, "answer_type": "count"}, str(n)) if answer else gk.DataError("no answer", str(n))

    def register_benchmark_adapters(register):
        register(Lines())

    plugin = types.SimpleNamespace(register_benchmark_adapters=gk.hookimpl(register_benchmark_adapters))
    reg = fresh_registry(("lines", plugin))
    assert reg.plugins["lines"].registered == [("benchmark adapter", "lines")]
    (tmp_path / "q.txt").write_text("How many?=3\nbroken\n")
    items = list(gk.load_benchmark("lines", tmp_path / "q.txt"))
    assert items[0].answer == "3" and isinstance(items[1], gk.DataError)
    with pytest.raises(gk.PluginError, match="registered twice"):
        fresh_registry(("lines", plugin), ("again", types.SimpleNamespace(register_benchmark_adapters=gk.hookimpl(lambda register: register(Lines())))))
