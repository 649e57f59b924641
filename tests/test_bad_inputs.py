"""Bad input never raises anything but a typed groundkit error naming the record / field, and one
bad record never stops a batch (issue 13): huge numbers, bad resize parameters, corrupt or empty
RLE masks, non-numbers in ground truth, non-UTF-8 bytes, decompression bombs, API misuse."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

import groundkit as gk
from groundkit.cli import app
from groundkit.geometry import rle_decode, rle_encode
from groundkit.records import read_records
from groundkit.rewards.trl import GroundkitRewardSet, trl_reward_funcs

ALL_TERMS = ("format,answer,point_in_mask,point_f1,box_iou_greedy,box_iou_hungarian,mask_iou,count_consistency,"
             "duplicate_penalty,grounded_if_correct,consistency")
GOOD = '<think>x <point label="mug">(212, 533)</point> <box label="mug">[1, 2, 300, 400]</box></think><answer>2</answer>'
TEXTUAL = "<think>two mugs</think><answer>2</answer>"
HUGE = "9" * 400


def truth(**objects_and_fields):
    return gk.GroundTruth.from_dict({"id": "s", "answer": "2", **objects_and_fields})


# --- frames -----------------------------------------------------------------------------------

def test_a_400_digit_number_is_a_parse_error_naming_the_column():
    text = f'<think><point label="mug">({HUGE}, 5)</point></think><answer>2</answer>'
    with pytest.raises(gk.ParseError, match="not a finite number") as err:
        gk.parse(text)
    assert (err.value.line, err.value.column) == (1, 28)
    result = gk.RewardSet.from_spec(ALL_TERMS)([text, GOOD], [truth(objects=[{"label": "mug", "points": [[0.2, 0.5]]}])] * 2)
    assert result.values["format"] == [0.0, 1.0] and result.values["point_f1"][0] == 0.0


@pytest.mark.parametrize("spec", ["abs-resized:factor=0", "abs-resized:max_pixels=0", "abs-resized:factor=-28",
                                  "abs-resized:min_pixels=-1", "abs-resized:min_pixels=5000000"])
def test_resize_parameters_must_be_positive_and_ordered(spec):
    with pytest.raises(gk.FrameError, match="factor|pixels"):
        gk.parse("<think><point>(1, 2)</point></think><answer>1</answer>", frame=spec, image_size=(100, 100))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0, -3, 2.5, True, "640"])
def test_image_size_rejects_what_is_not_a_positive_integer(bad):
    with pytest.raises(gk.FrameError):
        gk.ImageSize(bad, 10)
    with pytest.raises(gk.FrameError):
        gk.smart_resize(10, bad)
    assert gk.ImageSize(640.0, np.int64(480)) == gk.ImageSize(640, 480)


def test_a_non_finite_coordinate_cannot_be_written_in_a_frame():
    with pytest.raises(gk.FrameError, match="not a finite coordinate"):
        gk.get_registry().frame("rel-1000").from_unit(float("nan"), "x")


# --- ground truth -----------------------------------------------------------------------------

CORRUPT_MASKS = {
    "all zero": ({"size": [4, 4], "counts": [16]}, "no pixel set"),
    "0x0": ({"size": [0, 0], "counts": []}, "two positive integers"),
    "0x0 compressed": ({"size": [0, 0], "counts": ""}, "two positive integers"),
    "negative size": ({"size": [-2, -2], "counts": [4]}, "two positive integers"),
    "negative count": ({"size": [2, 2], "counts": [-1, 5]}, r"counts\[0\] must be a non-negative integer"),
    "float count": ({"size": [2, 2], "counts": [1.5, 2.5]}, r"counts\[0\] must be a non-negative integer"),
    "bool count": ({"size": [2, 2], "counts": [True, 3]}, r"counts\[0\]"),
    "sum mismatch": ({"size": [2, 2], "counts": [1, 2]}, "sum to 3"),
    "short compressed": ({"size": [2, 2], "counts": "1"}, "sum to 1"),
    "empty compressed": ({"size": [2, 2], "counts": ""}, "sum to 0"),
    "garbage compressed": ({"size": [2, 2], "counts": "zzz"}, "not a valid compressed"),
    "huge": ({"size": [100000, 100000], "counts": [10**10]}, "exceeds the limit"),
    "no counts": ({"size": [2, 2]}, "'size' and 'counts'"),
    "number": (5, "COCO RLE"),
    "text": ("abc", "list of"),
    "dict counts": ({"size": [2, 2], "counts": {"a": 1}}, "list or a string"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_MASKS))
def test_corrupt_or_empty_masks_are_data_errors_naming_the_record_and_field(case):
    mask, message = CORRUPT_MASKS[case]
    with pytest.raises(gk.DataError, match=message) as err:
        truth(objects=[{"label": "mug", "box": [0.1, 0.1, 0.5, 0.5], "mask": mask}])
    assert str(err.value).startswith("record s: objects[0].mask")


@pytest.mark.parametrize(("fields", "message"), [
    ({"width": float("nan"), "height": 10}, "width must be a positive integer"),
    ({"width": 10, "height": float("inf")}, "height must be a positive integer"),
    ({"width": "640", "height": 480}, "width must be a positive integer"),
    ({"objects": [{"label": "mug", "box": ["0.1", "0.1", "0.5", "0.5"]}]}, r"objects\[0\].box must hold finite numbers"),
    ({"objects": [{"label": "mug", "box": [False, False, True, True]}]}, "not text or true/false"),
    ({"objects": [{"label": "mug", "points": [[float("nan"), 0.5]]}]}, r"points\[0\] must hold finite numbers"),
    ({"objects": [{"label": "mug", "points": {"x": 1}}]}, r"objects\[0\].points must be a list"),
    ({"objects": [{"label": "mug", "box": [0, 0, 1, 1], "synonyms": 3}]}, "synonyms must be a list"),
    ({"answer": True}, "answer must be text or a number, got bool"),
    ({"answer": float("nan")}, "answer must be a finite number"),
    ({"question": ["a"]}, "question must be text"),
])
def test_numbers_written_as_text_booleans_or_non_finite_are_rejected(fields, message):
    with pytest.raises(gk.DataError, match=message):
        truth(**fields)


def test_an_object_built_by_hand_with_an_empty_mask_scores_none_and_records_why():
    empty = rle_encode(np.zeros((8, 8), dtype=bool))
    t = gk.GroundTruth("s", answer="2", objects=(gk.ObjectTruth("mug", rle=empty),))
    rs = gk.RewardSet.from_spec(ALL_TERMS)
    batch = rs.batch([GOOD, TEXTUAL], [t, t])
    result = rs.score(batch)
    for name in ("point_in_mask", "point_f1", "box_iou_greedy", "box_iou_hungarian", "mask_iou"):
        assert result.values[name] == [None, None], name
    assert result.values["answer"] == [1.0, 1.0]
    assert ("s", "point_f1", "object 'mug': the mask has no pixel set") in batch.problems


def test_a_ground_truth_built_by_hand_with_a_bad_size_is_a_data_error():
    for bad in (-5, 0, float("nan"), True, 2.5):
        with pytest.raises(gk.DataError, match="record s: width must be a positive integer"):
            gk.GroundTruth("s", answer="2", width=bad, height=10)


@settings(max_examples=60, deadline=None)
@given(counts=st.binary(max_size=12), h=st.integers(1, 6), w=st.integers(1, 6))
def test_any_compressed_rle_string_decodes_to_its_size_or_is_a_data_error(counts, h, w):
    try:
        mask = rle_decode({"size": [h, w], "counts": counts})
    except gk.DataError:
        return
    assert mask.shape == (h, w) and mask.dtype == bool


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**31))
def test_valid_masks_round_trip_through_the_checked_decoder(h, w, seed):
    mask = np.random.default_rng(seed).random((h, w)) < 0.4
    assert (rle_decode(rle_encode(mask)) == mask).all()


# --- reward engine and TRL ----------------------------------------------------------------------

def test_reward_set_misuse_is_a_typed_error():
    rs = gk.RewardSet.from_spec("format,answer")
    with pytest.raises(gk.GroundkitError, match="3 completions but 2 truths"):
        rs([GOOD] * 3, [truth()] * 2)
    with pytest.raises(gk.GroundkitError, match=r"truths\[0\] must be a GroundTruth.*from_dict"):
        rs([GOOD], [{"id": "s", "answer": "2"}])
    with pytest.raises(gk.GroundkitError, match=r"completions\[1\] must be text"):
        rs([GOOD, None], None)
    for weight in ("nan", "inf", "-inf"):
        with pytest.raises(gk.GroundkitError, match="weight must be a finite number"):
            gk.RewardSet.from_spec(f"format:{weight},answer")


def test_a_term_returning_nan_or_infinity_gives_none_and_a_problem():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Wild(gk.RewardTerm):
        name = "wild"

        def score_one(self, batch, i):
            return [float("nan"), float("inf"), "x", 0.5][i]

    rs = gk.RewardSet([(Wild(), 1.0)])
    batch = rs.batch(["a", "b", "c", "d"])
    assert rs.score(batch).values["wild"] == [None, None, None, 0.5]
    assert [p[0] for p in batch.problems] == ["#0", "#1", "#2"] and "not a finite number" in batch.problems[0][2]


def test_trl_completion_of_the_wrong_type_is_a_typed_error():
    funcs, _ = trl_reward_funcs("format")
    with pytest.raises(gk.GroundkitError, match="a completion must be text or a list of messages, got int"):
        funcs[0](prompts=["p"], completions=[5])


def test_trl_ground_truth_column_of_another_length_is_an_error_not_silent_none():
    funcs, _ = trl_reward_funcs("format,point_f1")
    gt = json.dumps({"id": "s", "answer": "2", "objects": []})
    with pytest.raises(gk.GroundkitError, match="column 'ground_truth' has 1 values for 2 completions"):
        funcs[1](prompts=["p", "p"], completions=[GOOD, GOOD], ground_truth=[gt])
    with pytest.raises(gk.GroundkitError, match="column 'objects' has 3 values"):
        funcs[1](prompts=["p", "p"], completions=[GOOD, GOOD], answer=["2", "2"], objects=[[], [], []])


def test_trl_image_that_disagrees_with_the_ground_truth_size_is_a_logged_bad_record(caplog):
    gt = {"id": "s", "answer": "2", "width": 640, "height": 480, "objects": [{"label": "mug", "points": [[0.2, 0.5]]}]}
    reward = GroundkitRewardSet("format,answer,point_f1")
    images = [Image.new("RGB", (320, 240)), Image.new("RGB", (640, 480))]
    with caplog.at_level(logging.WARNING):
        total = reward(prompts=["p", "q"], completions=[GOOD, GOOD], ground_truth=[gt, dict(gt, id="t")], image=images)
    assert total[0] == 1.0 and total[1] == 3.0  # row 0: format only (no ground truth); row 1: every term
    assert "image is 320x240 but the ground truth gives width/height 640x480" in caplog.text


def test_trl_reward_functions_survive_huge_numbers():
    funcs, _ = trl_reward_funcs(ALL_TERMS)
    text = f'<think><box label="mug">[{HUGE}, 1, 2, 3]</box></think><answer>2</answer>'
    gt = [{"id": "s", "answer": "2", "objects": [{"label": "mug", "box": [0.1, 0.1, 0.5, 0.5]}]}]
    values = {f.__name__: f(prompts=["p"], completions=[text], ground_truth=gt) for f in funcs}
    assert values["format"] == [0.0] and values["box_iou_greedy"] == [0.0]


# --- files: score, synth, eval ------------------------------------------------------------------

def test_score_writes_every_good_record_when_lines_are_not_utf8(tmp_path):
    gt, comp, out = tmp_path / "gt.jsonl", tmp_path / "c.jsonl", tmp_path / "out.jsonl"
    gt.write_bytes(b'{"id": "a", "answer": "2"}\n{"id": "b", "answer": "caf\xe9"}\n{"id": "c", "answer": "1"}\n')
    comp.write_bytes(b'{"id": "a", "completion": "<think>x</think><answer>2</answer>"}\n'
                     b'{"id": "x", "completion": "\xff"}\n'
                     b'{"id": "c", "completion": "<think>\xe2\x80\xa8</think><answer>1</answer>"}\n')  # U+2028 inside
    result = CliRunner().invoke(app, ["score", str(comp), "--data", str(gt), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a", "c"]
    assert "record line 2: ground truth is not UTF-8 (byte 0xe9 at column 27)" in result.stderr
    assert "record line 2: not UTF-8 (byte 0xff at column 28)" in result.stderr


def test_jsonl_nested_too_deeply_or_with_huge_integers_is_a_bad_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text("[" * 100000 + "\n" + '{"id": 1' + "1" * 5000 + "}\n" + '{"completion": "ok"}\n')
    records = list(read_records(path))
    assert [r.error is None for r in records] == [False, False, True]
    assert "nested too deeply" in str(records[0].error)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from groundkit.scenes import generate_scenes

    root = tmp_path_factory.mktemp("bad-scenes")
    generate_scenes(root, 4, seed=5, size="tiny")
    return root


def test_synth_records_a_decompression_bomb_in_dropped_and_goes_on(scenes, tmp_path, monkeypatch):
    from groundkit.synth import config_from_dict

    lines = (scenes / "scenes.jsonl").read_text().splitlines()
    big = tmp_path / "big.png"
    Image.new("L", (400, 400)).save(big)
    bomb = json.loads(lines[1]) | {"image": str(big), "width": 400, "height": 400}
    other_size = json.loads(lines[2]) | {"width": 64, "height": 64}
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([lines[0], json.dumps(bomb), json.dumps(other_size), lines[3]]) + "\n")
    (tmp_path / "images").symlink_to(scenes / "images")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30000)  # 128x128 scenes pass; 400x400 is over twice the limit
    cfg = config_from_dict({"input": str(src), "out": str(tmp_path / "out"), "teacher": {"simulate": {"wrong": 0.0}},
                            "grounder": "oracle"})
    summary = gk.run_synth(cfg)
    dropped = {json.loads(r)["id"]: json.loads(r) for r in (tmp_path / "out" / "dropped.jsonl").read_text().splitlines()}
    assert dropped[bomb["id"]]["reason"] == "image_too_large" and "DecompressionBomb" not in dropped[bomb["id"]]["reason"]
    assert dropped[other_size["id"]]["reason"] == "image_size_mismatch"
    assert summary.total == 4 and summary.kept + sum(summary.dropped.values()) == 4
    again = gk.run_synth(cfg)  # a rerun gets past the bomb: nothing is redone
    assert again.processed_now == 0 and again.resumed == 4


def test_eval_writes_its_report_with_placeholders_for_bomb_images(scenes, tmp_path, monkeypatch):
    from groundkit.eval import EvalConfig, evaluate
    from groundkit.scenes.simulate import simulate_completions

    truths = gk.load_ground_truth(scenes / "scenes.jsonl").values()
    comp = tmp_path / "c.jsonl"
    comp.write_text("".join(json.dumps(r) + "\n" for r in simulate_completions(truths)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # every 128x128 scene image is now a bomb
    run = evaluate(EvalConfig([f"scenes:{scenes}"], completions=str(comp)), tmp_path / "out")
    report = run.report.read_text()
    assert len(run.rows) == 4 and "image not shown: DecompressionBombError" in report
    assert len(list((tmp_path / "out" / "gallery").rglob("*.png"))) == 4


def test_every_image_opener_turns_a_decompression_bomb_into_a_data_error(tmp_path, monkeypatch):
    from PIL import Image

    from groundkit.images import image_size, open_rgb
    from groundkit.training.data import _open_size

    path = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64 x 64 > 2 x 100: PIL raises DecompressionBombError
    for opener in (open_rgb, image_size, _open_size):
        with pytest.raises(gk.DataError, match="DecompressionBombError") as err:
            opener(path, "rec-7")
        assert "rec-7" in str(err.value)
    with pytest.raises(gk.DataError, match="cannot open image"):
        open_rgb(tmp_path / "missing.png", "rec-8")


def test_a_frame_object_where_a_spec_string_is_expected_is_a_typed_error():
    frame = gk.get_grammar("groundkit").frame
    with pytest.raises(gk.FrameError, match="spec string"):
        gk.parse("<think>x</think><answer>1</answer>", frame=frame)
