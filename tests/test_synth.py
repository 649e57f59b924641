"""The synthesis pipeline: end to end on scenes (simulated teacher + oracle), the real tiny
teacher path, hooks, derivation properties, ambiguity, config errors, resume."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import groundkit as gk
from groundkit.scenes import generate_scenes
from groundkit.synth import Dropped, MaskCandidate, Mention, config_from_dict, resolve


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    generate_scenes(root, 24, seed=3, size="tiny")
    return root / "scenes.jsonl"


def config(scenes, out, **over):
    data = {"input": str(scenes), "out": str(out), "batch_size": 5, "teacher": {"simulate": {"wrong": 0.25}}, "grounder": "oracle"}
    data.update(over)
    return config_from_dict(data)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def check_output(out, scenes):
    """Every input id exactly once (kept or dropped); kept traces parse, groundings inside the image and their masks."""
    kept, dropped = rows(out / "data.jsonl"), rows(out / "dropped.jsonl")
    ids = [r["id"] for r in kept + dropped]
    expected = [json.loads(line)["id"] for line in scenes.read_text().splitlines()]
    assert sorted(ids) == sorted(expected), "lost or duplicated records"
    for r in dropped:
        assert r["reason"] and r["detail"]
    for r in kept:
        size = gk.ImageSize(r["width"], r["height"])
        trace = gk.parse(r["completion"], r["dialect"], r["frame"], image_size=size)
        assert len(trace.groundings) == len(r["objects"]) and trace.answer == r["answer"]
        truth = gk.GroundTruth.from_dict(r)  # the record is valid ground truth (COCO RLE masks)
        for g, obj in zip(trace.groundings, truth.objects):
            assert all(0.0 <= c <= 1.0 for c in g.coords)
            if g.type == "point":
                assert obj.contains(*g.coords)
            assert obj.contains(*obj.points[0])
        assert (out / r["image"]).exists()
    return kept, dropped


def test_end_to_end_on_scenes_with_the_oracle(scenes, tmp_path):
    summary = gk.run_synth(config(scenes, tmp_path / "out"))
    kept, dropped = check_output(tmp_path / "out", scenes)
    assert summary.kept == len(kept) > 10 and summary.total == 24
    assert summary.dropped.get("wrong_answer", 0) >= 1 and sum(summary.dropped.values()) == len(dropped)
    assert set(summary.grounding_types) == {"point", "box"}  # auto: points for counting, boxes for spatial
    assert summary.objects_per_trace["mean"] > 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["kept"] == summary.kept
    prov = kept[0]["provenance"]
    assert prov["grounder"]["name"] == "oracle" and prov["teacher"]["kind"] == "simulated" and prov["teacher_completion"]
    again = gk.run_synth(config(scenes, tmp_path / "out"))  # resumed: nothing redone
    assert again.processed_now == 0 and again.resumed == 24 and again.kept == summary.kept


@pytest.mark.parametrize(("dialect", "grounding"), [("groundkit", "mask"), ("qwen2vl", "box"), ("treevgr", "point"), ("molmo", "point")])
def test_other_dialects_and_grounding_types(scenes, tmp_path, dialect, grounding):
    gk.run_synth(config(scenes, tmp_path, limit=8, output={"dialect": dialect, "grounding": grounding}))
    kept = [r for r in rows(tmp_path / "data.jsonl")]
    assert kept and all(r["dialect"] == dialect for r in kept)
    for r in kept:
        trace = gk.parse(r["completion"], dialect, image_size=(r["width"], r["height"]))
        assert {g.type for g in trace.groundings} <= {grounding}


def test_real_tiny_teacher_is_batched_and_drops_with_reasons(scenes, tmp_path):
    teacher = {"model": "tiny:gemma3", "max_new_tokens": 4, "batch_size": 2, "constrained": False}
    cfg = config(scenes, tmp_path, limit=3, teacher=teacher)
    summary = gk.run_synth(cfg)
    dropped = rows(tmp_path / "dropped.jsonl")
    assert summary.kept == 0 and len(dropped) == 3  # a random model decoding freely writes no valid trace
    assert {r["reason"] for r in dropped} == {"unparseable"}
    assert all(r["detail"].startswith(f"record {r['id']}, line 1") for r in dropped)


def test_bad_input_records_are_dropped_with_reasons(scenes, tmp_path):
    lines = scenes.read_text().splitlines()[:3]
    broken = json.loads(lines[1]) | {"image": "images/nope.png"}
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([lines[0], json.dumps(broken), "{not json", lines[2]]) + "\n")
    (tmp_path / "images").symlink_to(scenes.parent / "images")
    gk.run_synth(config(src, tmp_path / "out", teacher={"simulate": {"wrong": 0.0}}))
    reasons = {r["id"]: r["reason"] for r in rows(tmp_path / "out" / "dropped.jsonl")}
    assert reasons["line 3"] == "bad_record"
    assert reasons[broken["id"]] == "missing_image"
    src.write_text(lines[0] + "\n" + lines[0] + "\n")
    with pytest.raises(gk.DataError, match="duplicate id"):
        gk.run_synth(config(src, tmp_path / "out2"))


def test_config_errors_name_the_key(scenes, tmp_path):
    with pytest.raises(gk.ConfigError, match="'teacher.modle'"):
        config(scenes, tmp_path, teacher={"modle": "x"})
    with pytest.raises(gk.ConfigError, match="'teacher'.*exactly one"):
        config(scenes, tmp_path, teacher={"model": "tiny:gemma3", "simulate": {}})
    with pytest.raises(gk.ConfigError, match="'batch_size'"):
        config(scenes, tmp_path, batch_size="big")
    with pytest.raises(gk.ConfigError, match="'output.grounding'"):
        config(scenes, tmp_path, output={"grounding": "polygon"})
    with pytest.raises(gk.ConfigError, match="'grounder.treshold'"):
        gk.run_synth(config(scenes, tmp_path, grounder={"name": "sam3", "treshold": 0.3}))
    with pytest.raises(gk.ConfigError, match="'grounder.checkpoint'"):
        gk.run_synth(config(scenes, tmp_path / "x", grounder={"name": "sam3"}, limit=2))
    with pytest.raises(gk.UnknownNameError, match="grounder 'sam4'"):
        gk.run_synth(config(scenes, tmp_path, grounder="sam4"))
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("input: scenes.jsonl\nout: o\nteacher: {simulate: {}}\nlimt: 3\n")
    with pytest.raises(gk.ConfigError, match="'limt'"):
        gk.load_synth_config(yaml_file)
    gk.run_synth(config(scenes, tmp_path / "r", limit=2))
    with pytest.raises(gk.ConfigError, match="another config"):
        gk.run_synth(config(scenes, tmp_path / "r", limit=2, ambiguity="drop"))


def blob(h=20, w=20, box=(2, 2, 6, 6)):
    m = np.zeros((h, w), bool)
    m[box[1] : box[3], box[0] : box[2]] = True
    return m


def test_ambiguity_is_resolved_explicitly():
    a, b = MaskCandidate(blob(box=(2, 2, 6, 6)), 0.6), MaskCandidate(blob(box=(10, 10, 16, 16)), 0.9)
    dup = MaskCandidate(blob(box=(2, 2, 6, 7)), 0.5)  # IoU 0.8 with a: a duplicate
    one = Mention("the cup", "cup", 0, 7)
    assert [c.score for c in resolve([one], [[a, b, dup]], "best")[0].masks] == [0.9]
    r = resolve([one], [[a, b, dup]], "all")[0]
    assert r.ambiguous and r.candidates == 2 and len(r.masks) == 2
    with pytest.raises(Dropped, match="ambiguous_phrase"):
        resolve([one], [[a, b]], "drop")
    with pytest.raises(Dropped, match="ungrounded_phrase"):
        resolve([one], [[]], "best")
    many = Mention("the cups", "cup", 0, 8, plural=True)
    assert [c.score for c in resolve([many], [[b, a, dup]], "drop")[0].masks] == [0.6, 0.9]  # all, left to right
    assert resolve([many], [[]], "drop")[0].masks == []  # a plural with no mask: a count of zero


def test_rule_extractor_ties_mentions_to_the_question():
    assert gk.synth.question_phrases("Is the red circle left of the blue square?") == ["red circle", "blue square"]
    assert gk.synth.question_phrases("How many mugs are there?") == ["mugs"]
    truth = gk.GroundTruth("x", "2", "count", "How many red circles are there?", objects=(gk.ObjectTruth("red circle"),) * 2)
    thought = "There are two red circles here: each red circle is small."
    found = gk.RuleExtractor().extract_one(gk.ExtractionItem("x", truth.question, thought, "2", truth))
    assert [(m.phrase, m.label, m.plural) for m in found] == [("red circles", "red circle", True)]
    assert thought[found[0].start : found[0].end] == "red circles"
    bare = gk.GroundTruth("y", "yes", "yes_no", "Is the cup left of the plate?")
    found = gk.RuleExtractor().extract_one(gk.ExtractionItem("y", bare.question, "The plate is right; the cup is left.", "yes", bare))
    assert [(m.label, m.plural) for m in found] == [("plate", False), ("cup", False)]


@st.composite
def concave_masks(draw):
    """Random masks: unions of discs and rectangles with holes and notches cut out (rings, C shapes)."""
    h, w = draw(st.integers(8, 48)), draw(st.integers(8, 48))
    yy, xx = np.mgrid[:h, :w]
    m = np.zeros((h, w), bool)
    for _ in range(draw(st.integers(1, 4))):
        cx, cy, r = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1)), draw(st.integers(1, 20))
        if draw(st.booleans()):
            m |= (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        else:
            m[max(0, cy - r) : cy + r, max(0, cx - r // 2) : cx + r // 2 + 1] = True
    for _ in range(draw(st.integers(0, 3))):
        cx, cy, r = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1)), draw(st.integers(1, 12))
        m &= ~((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r)
    if not m.any():
        m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
    return m


@settings(max_examples=150, deadline=None)
@given(concave_masks())
def test_derived_point_box_polygon_fit_the_mask(mask):
    h, w = mask.shape
    x, y = gk.mask_interior_point(mask)
    assert mask[int(y * h), int(x * w)], "the interior point lies outside the mask"
    x1, y1, x2, y2 = gk.mask_box(mask)
    ys, xs = np.nonzero(mask)
    assert (x1, y1, x2, y2) == (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)
    poly = gk.mask_polygon(mask, max_vertices=12)
    assert 6 <= len(poly) <= 24
    assert all(x1 - 1e-9 <= poly[i] <= x2 + 1e-9 and y1 - 1e-9 <= poly[i + 1] <= y2 + 1e-9 for i in range(0, len(poly), 2))


def test_polygon_traces_an_exact_outline():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    m[5:8, 3:5] = True  # an L: 6 corners, traced exactly
    poly = gk.mask_polygon(m, max_vertices=16)
    assert len(poly) == 12
    assert np.array_equal(gk.rasterize_polygon(poly, 12, 10) & m, m)


def plugin(**hooks):
    return types.SimpleNamespace(**{name: gk.hookimpl(fn) for name, fn in hooks.items()})


def test_hook_register_grounders(fresh_registry, scenes, tmp_path):
    @dataclass
    class BoxOracle(gk.Grounder):
        """Rectangles from the ground-truth boxes."""

        grow: int = 0
        name = "box-oracle"

        def ground(self, queries):
            oracle = gk.get_registry().grounder("oracle").with_params(box_masks=True)
            masks = oracle.ground(queries)
            return [[[gk.MaskCandidate(np.ones_like(c.mask) & _bbox(c.mask), 0.5) for c in per] for per in q] for q in masks]

    def register_grounders(register):
        register(BoxOracle())

    reg = fresh_registry(("boxes", plugin(register_grounders=register_grounders)))
    assert reg.plugins["boxes"].registered == [("grounder", "box-oracle")]
    assert reg.grounder("box-oracle").with_params(grow=2).grow == 2
    summary = gk.run_synth(config(scenes, tmp_path, limit=6, grounder={"name": "box-oracle", "grow": 1}))
    kept = rows(tmp_path / "data.jsonl")
    assert summary.kept == len(kept) > 0 and all(o["score"] == 0.5 for r in kept for o in r["objects"])


def _bbox(m):
    out = np.zeros_like(m)
    ys, xs = np.nonzero(m)
    out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    return out


def test_hook_register_extractors(fresh_registry, scenes, tmp_path):
    @dataclass(frozen=True)
    class FirstWord(gk.Extractor):
        name = "answer-word"

        def extract_one(self, item):
            label = item.truth.objects[0].label if item.truth.objects else "object"
            return [gk.Mention(item.thought.split()[0], label, 0, len(item.thought.split()[0]), plural=True)]

    def register_extractors(register):
        register(FirstWord())

    reg = fresh_registry(("words", plugin(register_extractors=register_extractors)))
    assert reg.plugins["words"].registered == [("extractor", "answer-word")]
    gk.run_synth(config(scenes, tmp_path, limit=6, extractor="answer-word", output={"grounding": "point"}))
    kept = rows(tmp_path / "data.jsonl")
    assert kept and all(r["completion"].startswith("<think>I <point") for r in kept if r["objects"])


@pytest.fixture(scope="module")
def tiny_sam3(tmp_path_factory):
    from groundkit_plugins.grounders import build_tiny_sam3

    return build_tiny_sam3(tmp_path_factory.mktemp("sam3") / "ckpt")


def test_sam3_grounder_step_with_a_tiny_random_checkpoint(tiny_sam3, scenes):
    from PIL import Image

    sam3 = gk.get_registry().grounder("sam3").with_params(checkpoint=str(tiny_sam3), threshold=0.0, min_area=1, max_masks=3, batch_size=2)
    images = [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (40, 70), (30, 30, 200))]
    queries = [gk.GroundingQuery("a", images[0], ("red circle", "blue square", "cup")), gk.GroundingQuery("b", images[1], ("mug",))]
    out = sam3.ground(queries)
    assert [len(per) for per in out] == [3, 1]
    for q, per in zip(queries, out):
        for cands in per:
            assert len(cands) <= 3
            for c in cands:
                assert c.mask.shape == (q.image.size[1], q.image.size[0]) and c.mask.dtype == bool and 0.0 <= c.score <= 1.0
    # batched = one at a time (image features are shared between a batch's phrases)
    single = [sam3.with_params(batch_size=1).ground([q])[0] for q in queries]
    for per_b, per_s in zip(out, single):
        for cb, cs in zip(per_b, per_s):
            assert [round(c.score, 4) for c in cb] == [round(c.score, 4) for c in cs]
    # through the pipeline: every record is kept (parses) or dropped with a reason
    cfg = {"input": str(scenes), "teacher": {"simulate": {"wrong": 0.0}}, "limit": 4, "ambiguity": "best",
           "grounder": {"name": "sam3", "checkpoint": str(tiny_sam3), "threshold": 0.0, "min_area": 1}}
    out_dir = tiny_sam3.parent / "run"
    summary = gk.run_synth(config_from_dict({**cfg, "out": str(out_dir)}))
    assert summary.kept + sum(summary.dropped.values()) == 4
    for r in rows(out_dir / "data.jsonl"):
        assert gk.parse(r["completion"], image_size=(r["width"], r["height"])).groundings


SLOW_WRITES = """
import time
import groundkit.synth.writer as writer

_append = writer._File.append


def slow_append(self, fd, row):
    time.sleep(0.02)  # widen the window: the kill lands between lines of a batch, before its fsync
    _append(self, fd, row)


writer._File.append = slow_append
"""


def test_a_killed_run_restarts_without_loss_or_duplicates(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    generate_scenes(tmp_path / "scenes", 40, seed=5, size="tiny")
    scenes = tmp_path / "scenes" / "scenes.jsonl"
    cfg = tmp_path / "synth.yaml"
    cfg.write_text("input: scenes/scenes.jsonl\nout: out\nbatch_size: 4\nteacher: {simulate: {wrong: 0.3}}\ngrounder: oracle\n")
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "sitecustomize.py").write_text(SLOW_WRITES)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "hooks")}
    out = tmp_path / "out"

    def written():
        return sum(len(rows(out / f)) for f in ("data.jsonl", "dropped.jsonl"))

    for target in (5, 17):  # kill twice, at different points
        proc = subprocess.Popen([sys.executable, "-m", "groundkit", "synth", "--config", str(cfg)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while written() < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        assert target <= written() < 40, "the kill did not land mid-run"
    result = subprocess.run([sys.executable, "-m", "groundkit", "synth", "--config", str(cfg), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["total"] == 40 and summary["resumed"] >= 17 and summary["kept"] + sum(summary["dropped"].values()) == 40
    check_output(out, scenes)


def test_a_torn_last_line_is_cut_and_its_record_redone(scenes, tmp_path):
    gk.run_synth(config(scenes, tmp_path, limit=6))
    data = tmp_path / "data.jsonl"
    lines = data.read_text().splitlines(keepends=True)
    torn_id = json.loads(lines[-1])["id"]
    data.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a write cut by a crash
    again = gk.run_synth(config(scenes, tmp_path, limit=6))
    assert again.processed_now == 1 and again.kept == len(lines)
    assert [json.loads(line)["id"] for line in data.read_text().splitlines()][-1] == torn_id
