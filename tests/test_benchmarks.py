"""Benchmark adapters read tiny copies written in each benchmark's published layouts."""

from __future__ import annotations

import json
import logging
import types
from pathlib import Path

import bench_published_fixtures as fx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

import groundkit as gk
from groundkit.cli import app
from groundkit.eval.benchmarks import BenchSpec, data_files, parse_bench_spec, with_images


def load(name, path, media=None, **kw):
    items = list(gk.load_benchmark(name, path, media, **kw))
    return [i for i in items if isinstance(i, gk.GroundTruth)], [i for i in items if isinstance(i, gk.DataError)]


# --- spec and split selection -------------------------------------------------------------

def test_bench_spec_names_path_split_and_images(tmp_path):
    assert parse_bench_spec("vsr:data/splits") == BenchSpec("vsr", Path("data/splits"))
    assert parse_bench_spec("vsr:data/splits:random/test") == BenchSpec("vsr", Path("data/splits"), "random/test")
    assert parse_bench_spec("blink:BLINK?split=val&images=/x") == BenchSpec("blink", Path("BLINK"), "val", Path("/x"))
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert parse_bench_spec(f"vsr:{odd}").path == odd  # an existing path keeps its colon
    assert str(parse_bench_spec("blink:BLINK:val?images=/x")) == "blink:BLINK:val?images=/x"
    assert with_images(["blink:B:val", "vsr:V?images=/y"], "/x") == ["blink:B:val?images=/x", "vsr:V?images=/y"]
    for bad in ("vsr", ":x", "vsr:", "vsr:x?spilt=val", "vsr:x:val?split=test"):
        with pytest.raises(gk.GroundkitError):
            parse_bench_spec(bad)


_PART = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="._-/ "), min_size=1, max_size=12).map(str.strip).filter(
    lambda t: t and not t.startswith("/") and not t.endswith("/") and "//" not in t)


@settings(max_examples=60, deadline=None)
@given(name=_PART.filter(lambda t: "/" not in t), path=_PART, split=st.none() | _PART, images=st.none() | _PART)
def test_bench_spec_text_round_trips(name, path, split, images):
    spec = BenchSpec(name, Path(path), split, Path(images) if images else None)
    assert parse_bench_spec(str(spec)) == spec


def test_a_folder_with_several_splits_needs_one_named(tmp_path):
    d = fx.pixmo_count(tmp_path)
    with pytest.raises(gk.DataError, match="several splits .*test, train, validation"):
        list(gk.load_benchmark("pixmo-count", d))
    with pytest.raises(gk.DataError, match="no split 'dev2'.*validation"):
        list(gk.load_benchmark("pixmo-count", d, split="dev2"))
    assert [f.name for f, _ in data_files(d, "val")] == ["validation-00000-of-00001.parquet"]  # val = validation


def test_an_adapter_without_split_refuses_one(fresh_registry, tmp_path):
    class Old(gk.BenchmarkAdapter):
        name = "old"

        def load(self, path, media_dir=None):
            yield gk.DataError("never read")

    reg = fresh_registry(("old", types.SimpleNamespace(register_benchmark_adapters=gk.hookimpl(lambda register: register(Old())))))
    assert reg.benchmark_adapter("old")
    with pytest.raises(gk.GroundkitError, match="'old' does not take split"):
        list(gk.load_benchmark("old", tmp_path, split="val"))
    with pytest.raises(gk.DataError, match="images folder not found"):
        list(gk.load_benchmark("old", tmp_path, images=tmp_path / "nope"))


# --- CountBenchQA -------------------------------------------------------------------------

def test_countbenchqa_parquet_with_embedded_images(tmp_path):
    path = fx.countbenchqa(tmp_path)
    for source in (path, path.parent.parent):  # the file, or the repository folder
        good, bad = load("countbenchqa", source, tmp_path / "media")
        assert [(t.answer, t.answer_type, t.extra["task"]) for t in good] == [("3", "count", "counting"), ("2", "count", "counting")]
        assert good[1].image_size == (80, 60) and Image.open(good[1].image).size == (80, 60)
        assert len(bad) == 1 and bad[0].record_id == "3" and "number" in str(bad[0])
    no_media, _ = load("countbenchqa", path, None)  # without a media folder the size is still read, nothing is written
    assert no_media[0].image is None and no_media[0].image_size == (64, 48)


def test_countbenchqa_from_a_datasets_save_to_disk_export(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image(), "question": datasets.Value("string"), "number": datasets.Value("int32")})
    one = {"image": [{"bytes": fx.png(), "path": None}], "question": ["How many mugs?"], "number": [4]}
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(one, features=features),
                          "train": datasets.Dataset.from_dict({**one, "number": [5]}, features=features)}).save_to_disk(str(tmp_path / "cb"))
    with pytest.raises(gk.DataError, match="several splits"):
        load("countbenchqa", tmp_path / "cb")
    good, bad = load("countbenchqa", tmp_path / "cb", tmp_path / "media", split="test")
    assert not bad and [t.answer for t in good] == ["4"] and good[0].image_size == (64, 48)


# --- PixMo-Count --------------------------------------------------------------------------

def test_pixmo_count_finds_images_where_molmos_downloader_saves_them(tmp_path):
    d = fx.pixmo_count(tmp_path)
    good, bad = load("pixmo-count", d, split="validation", images=tmp_path / "pixmo-images")
    assert [(t.answer, t.image_size) for t in good] == [("4", (40, 30)), ("3", (30, 20)), ("5", (20, 10))]
    assert all(t.objects is None for t in good)  # the eval splits carry no points
    assert good[1].question == "How many traffic lights are there?"
    (missing,) = bad  # the image never downloaded is reported, by record, with where it was looked for
    assert missing.record_id.endswith("-boats") and fx.url_hash(fx.PIXMO_URLS[5]) in str(missing) and "--images" in str(missing)
    _, without = load("pixmo-count", d, split="validation")  # without --images the third image is missing too
    assert len(without) == 2


def test_pixmo_count_points_as_a_struct_of_lists_become_unit_points(tmp_path):
    good, bad = load("pixmo-count", fx.pixmo_count(tmp_path) / "data", split="train")
    (apples,) = good
    assert apples.image_size == (100, 50) and [o.points[0] for o in apples.objects] == [(0.1, 0.4), (0.9, 0.8)]
    assert len(bad) == 1 and "cats" in bad[0].record_id and "not found" in str(bad[0])
    (test,), _ = load("pixmo-count", fx.pixmo_count(tmp_path / "t") / "data" / "test-00000-of-00001.parquet")
    assert test.objects is None  # points null


def test_pixmo_count_ids_come_from_the_data_not_row_positions(tmp_path):
    d = fx.pixmo_count(tmp_path)
    images = tmp_path / "pixmo-images"
    first = {t.id: t.answer for t in load("pixmo-count", d, split="validation", images=images)[0]}
    import pyarrow.parquet as pq

    path = d / "data" / "validation-00000-of-00001.parquet"
    rows = pq.read_table(path).to_pylist()[::-1]
    fx.write_parquet(path, rows)
    again = {t.id: t.answer for t in load("pixmo-count", d, split="validation", images=images)[0]}
    assert again == first and len(first) == 3
    train = {t.id for t in load("pixmo-count", d, split="train")[0]}
    assert train == {f"{0:016x}-apples"}


# --- CV-Bench -----------------------------------------------------------------------------

def test_cv_bench_repo_folder_reads_the_2d_split_once(tmp_path, caplog):
    d = fx.cv_bench(tmp_path)
    with caplog.at_level(logging.WARNING):
        good, bad = load("cv-bench-2d", d, tmp_path / "media")
    assert [(t.id, t.answer, t.extra["task"]) for t in good] == [("0", "C", "counting"), ("1", "B", "spatial")]
    assert len(bad) == 1 and bad[0].record_id == "3"  # answer (E) of two choices
    assert "test_2d.jsonl holds the same records and is not read" in caplog.text
    assert good[0].choices == ("0", "3", "2", "1") and "(C) 2" in good[0].question
    assert gk.answer_correct("C", good[0]) == 1.0 and gk.answer_correct("2", good[0]) == 1.0
    (only_3d,) = load("cv-bench-2d", d, split="test_3d")[1]
    assert "has none" in str(only_3d)


def test_cv_bench_jsonl_with_its_img_folder(tmp_path):
    d = fx.cv_bench(tmp_path)
    good, bad = load("cv-bench-2d", d / "test_2d.jsonl")
    assert [t.image_size for t in good] == [(70, 50), (70, 50)] and Path(good[0].image).name == "ade20k_1.png"
    assert [b.record_id for b in bad] == ["3"]  # (E) fails before the missing image


# --- VSR ----------------------------------------------------------------------------------

def test_vsr_github_layout_finds_data_images_and_coco_folders(tmp_path):
    path = fx.vsr(tmp_path)
    repo = path.parents[3]
    with pytest.raises(gk.DataError, match="several folders .*random/test, .*zeroshot/test"):
        load("vsr", repo, split="test")
    good, bad = load("vsr", repo, split="random/test", images=tmp_path / "coco")
    assert [(t.answer, t.extra["relation"], t.image_size) for t in good] == [
        ("no", "under", (120, 90)), ("yes", "below", (120, 90)), ("yes", "left of", (60, 40))]
    assert "The umbrella is under the bed." in good[0].question
    assert {b.record_id.split("-")[0] for b in bad} == {"000000099999", "line 5"}  # the missing image and the broken line
    assert "000000099999.jpg not found" in str(next(b for b in bad if b.record_id.startswith("0")))
    assert good[0].id.startswith("000000085637-") and len({t.id for t in good}) == 3
    _, no_coco = load("vsr", path)
    assert len(no_coco) == 3  # without the COCO folder its image is reported missing


def test_vsr_hugging_face_layout(tmp_path):
    d = fx.vsr_hf(tmp_path)
    with pytest.raises(gk.DataError, match="several splits \\(dev, test, train\\)"):
        load("vsr", d)
    good, bad = load("vsr", d, split="dev")
    assert not bad and [t.answer for t in good] == ["no", "yes"] and good[0].image_size == (120, 90)


# --- BLINK --------------------------------------------------------------------------------

def test_blink_val_reads_counting_spatial_and_relative_depth(tmp_path, caplog):
    d = fx.blink(tmp_path)
    with pytest.raises(gk.DataError, match="several splits \\(test, val\\)"):
        load("blink", d)
    with caplog.at_level(logging.WARNING):
        good, bad = load("blink", d, tmp_path / "media", split="val")
    assert not bad and len(good) == 6
    by_id = {t.id: t for t in good}
    assert (by_id["val_Counting_1"].answer, by_id["val_Counting_1"].extra["task"]) == ("B", "counting")
    assert by_id["val_Counting_1"].choices == ("0", "3", "2", "1") and "(B) 3" in by_id["val_Counting_1"].question
    assert (by_id["val_Relative_Depth_2"].answer, by_id["val_Relative_Depth_2"].extra["task"]) == ("B", "spatial")
    assert by_id["val_Spatial_Relation_1"].answer == "A"
    assert "subtasks not read" in caplog.text and "Jigsaw (2)" in caplog.text


def test_blink_test_split_hidden_answers_are_generation_only_said_once(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        good, bad = load("blink", fx.blink(tmp_path), split="test")
    assert not bad and len(good) == 6 and all(t.answer is None for t in good)
    assert sum("hidden answers" in r.getMessage() for r in caplog.records) == 1 and "6 records" in caplog.text


def test_blink_unsupported_subtask_is_reported_by_name(tmp_path):
    good, bad = load("blink", fx.blink(tmp_path) / "Jigsaw" / "val-00000-of-00001.parquet")
    assert not good and len(bad) == 1 and "Jigsaw (2) is not supported" in str(bad[0])


# --- What'sUp -----------------------------------------------------------------------------

def test_whatsup_reads_all_four_subsets_each_row_its_own_id(tmp_path):
    good, bad = load("whatsup", fx.whatsup(tmp_path))
    assert len(good) == 9 and len({t.id for t in good}) == 9
    assert {t.extra["subset"] for t in good} == {"controlled_images", "controlled_clevr", "coco_qa_one_obj", "coco_qa_two_obj",
                                                 "vg_qa_one_obj", "vg_qa_two_obj"}
    qa = [json.loads((tmp_path / "whatsup_vlms" / "data" / f"{n}.json").read_text()) for n in ("coco_qa_one_obj", "coco_qa_two_obj", "vg_qa_two_obj")]
    right, wrong = {r[1] for rows in qa for r in rows}, {r[2] for rows in qa for r in rows}
    by_id = {t.id: t for t in good}
    picked = {rid: t.choices[ord(t.answer) - 65] for rid, t in by_id.items()}  # the right caption survives the shuffle
    assert all(picked[rid] in right and picked[rid] not in wrong for rid in by_id if rid.startswith(("coco", "vg_qa_two")))
    assert picked["controlled_images/beer-bottle_under_armchair"] == fx.CONTROLLED[1]
    assert picked["controlled_clevr/cube_left_of_sphere"] == "A cube to the left of a sphere"
    on = by_id["controlled_images/beer-bottle_on_armchair"]
    assert picked[on.id] == fx.CONTROLLED[0] and on.extra["relation"] == "on" and on.image_size == (90, 70)
    assert by_id["coco_qa_one_obj/139"].image_size == (64, 48) and by_id["coco_qa_one_obj/139"].extra["relation"] == "left"
    assert {"coco_qa_two_obj/139", "coco_qa_two_obj/139~2"} <= set(by_id)  # one image, two rows
    assert by_id["vg_qa_two_obj/498"].image_size == (32, 32)
    (missing,) = bad
    assert missing.record_id == "vg_qa_two_obj/31337" and "31337.jpg not found" in str(missing)


def test_whatsup_split_picks_subsets(tmp_path):
    d = fx.whatsup(tmp_path)
    good, _ = load("whatsup", d, split="coco")
    assert {t.extra["subset"] for t in good} == {"coco_qa_one_obj", "coco_qa_two_obj"}
    good, _ = load("whatsup", d / "data", split="A,vg_qa_one_obj")
    assert {t.extra["subset"] for t in good} == {"controlled_images", "vg_qa_one_obj"}
    with pytest.raises(gk.DataError, match="no subset 'up'"):
        load("whatsup", d, split="up")


# --- scenes, errors, plugins, CLI ---------------------------------------------------------

def test_scenes_adapter_reads_a_scenes_folder(tmp_path):
    from groundkit.scenes import generate_scenes

    generate_scenes(tmp_path, 4, seed=0, size="tiny", split="train=0.5,test=0.5")
    good, bad = load("scenes", tmp_path, None)
    assert len(good) == 2 and not bad and all(Image.open(t.image).size == (128, 128) for t in good)
    assert len(load("scenes", tmp_path, split="train")[0]) == 2


def test_unknown_benchmark_and_missing_data():
    with pytest.raises(gk.UnknownNameError, match="cv-bench-2d"):
        list(gk.load_benchmark("nope", "x"))
    with pytest.raises(gk.DataError, match="not found"):
        list(gk.load_benchmark("vsr", "/nonexistent/file.jsonl"))


PUBLISHED = {  # name: (fixture, spec suffix, images folder under tmp_path, records evaluated, problems)
    "countbenchqa": (lambda root: fx.countbenchqa(root).parents[1], "", None, 2, 1),
    "pixmo-count": (fx.pixmo_count, ":validation", "pixmo-images", 3, 1),
    "cv-bench-2d": (fx.cv_bench, "", None, 2, 1),
    "vsr": (lambda root: fx.vsr(root).parents[3], ":random/test", "coco", 3, 2),
    "blink": (fx.blink, ":val", None, 6, 0),
    "whatsup": (fx.whatsup, "", None, 9, 1),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_groundkit_eval_runs_each_published_layout(name, tmp_path):
    make, split, images, n, problems = PUBLISHED[name]
    path = make(tmp_path)
    spec = f"{name}:{path}{split}"
    bench = parse_bench_spec(spec)
    folder = tmp_path / images if images else None
    ids = [t.id for t in gk.load_benchmark(name, bench.path, split=bench.split, images=folder) if isinstance(t, gk.GroundTruth)]
    comp = tmp_path / "c.jsonl"
    comp.write_text("".join(json.dumps({"id": rid, "completion": "<think>Looking.</think><answer>A</answer>"}) + "\n" for rid in ids))
    args = ["eval", "--bench", spec, "--completions", str(comp), "--out", str(tmp_path / "o"), "--json"]
    result = CliRunner().invoke(app, args + (["--images", str(folder)] if folder else []))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["summary"]["by_benchmark"][name]["n"] == n == len(ids) and report["problems"] == problems


def test_eval_cli_scores_blink_val_and_generates_only_for_test(tmp_path):
    d = fx.blink(tmp_path)
    comp = tmp_path / "c.jsonl"
    with comp.open("w") as f:
        for split in ("val", "test"):
            for sub in ("Counting", "Spatial_Relation", "Relative_Depth"):
                for n in (1, 2):
                    f.write(json.dumps({"id": f"{split}_{sub}_{n}", "completion": "<think>Looking.</think><answer>B</answer>"}) + "\n")
    runner = CliRunner()
    val = runner.invoke(app, ["eval", "--bench", f"blink:{d}:val", "--completions", str(comp), "--out", str(tmp_path / "v"), "--json"])
    assert val.exit_code == 0, val.output
    summary = json.loads(val.stdout.strip().splitlines()[-1])["summary"]
    assert summary["by_benchmark"]["blink"]["n"] == 6 and summary["by_benchmark"]["blink"]["correct"] == 4
    test = runner.invoke(app, ["eval", "--bench", f"blink:{d}?split=test", "--completions", str(comp), "--out", str(tmp_path / "t"), "--json"])
    assert test.exit_code == 0, test.output
    rows = [json.loads(line) for line in (tmp_path / "t" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {r["status"] for r in rows} == {"unscored"}
    twice = runner.invoke(app, ["eval", "--bench", f"blink:{d}:val", "--bench", f"blink:{d}:test", "--completions", str(comp), "--out", str(tmp_path / "x")])
    assert twice.exit_code == 1 and "given twice" in twice.output


def test_eval_cli_images_option_reaches_the_adapter(tmp_path):
    fx.pixmo_count(tmp_path)
    comp = tmp_path / "c.jsonl"
    comp.write_text("")
    args = ["eval", "--bench", f"pixmo-count:{tmp_path / 'pixmo-count'}:validation", "--completions", str(comp), "--out", str(tmp_path / "o")]
    without = CliRunner().invoke(app, args)
    with_images = CliRunner().invoke(app, [*args[:1], "--images", str(tmp_path / "pixmo-images"), *args[1:], "--fresh"])
    assert without.output.count("not found") == 2 and with_images.output.count("not found") == 1


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
    twice = fresh_registry(("lines", plugin), ("again", types.SimpleNamespace(register_benchmark_adapters=gk.hookimpl(lambda register: register(Lines())))))
    assert [f.name for f in twice.failures] == ["again"] and "registered twice" in twice.failures[0].error  # rejected, first wins
