"""Golden tests per built-in reward term (hand-computed cases), reward-hacking outputs, reward sets."""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np
import pytest

import groundkit as gk

ALL_TERMS = [
    "format", "answer", "point_in_mask", "point_f1", "box_iou_greedy", "box_iou_hungarian", "mask_iou",
    "count_consistency", "duplicate_penalty", "grounded_if_correct", "consistency",
]


def rle_rect(x1: int, y1: int, x2: int, y2: int, w: int = 100, h: int = 100) -> dict:
    m = np.zeros((h, w), dtype=bool)
    m[y1:y2, x1:x2] = True
    return gk.rle_encode(m)


def truth(**kw) -> gk.GroundTruth:
    return gk.GroundTruth.from_dict({"id": "s", **kw})


def score(name: str, completions: list[str], truths, **params) -> list[float | None]:
    term = gk.get_registry().reward_term(name)
    if params:
        term = term.with_params(**params)
    truths = truths if isinstance(truths, list) else [truths] * len(completions)
    return gk.RewardSet([(term, 1.0)])(completions, truths).values[term.name]


def trace(think: str, answer: str = "1") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


def pt(x: int, y: int, label: str | None = None) -> str:
    attr = f' label="{label}"' if label else ""
    return f"<point{attr}>({x}, {y})</point>"


def bx(x1: int, y1: int, x2: int, y2: int, label: str | None = None) -> str:
    attr = f' label="{label}"' if label else ""
    return f"<box{attr}>[{x1}, {y1}, {x2}, {y2}]</box>"


def test_every_builtin_term_is_registered_by_the_rewards_plugin():
    reg = gk.get_registry()
    assert reg.reward_terms.names() == sorted(ALL_TERMS)
    assert all(reg.reward_terms.items[n].plugin.name == "rewards" for n in ALL_TERMS)


def test_format():
    ok, cut, bad = trace(pt(1, 2)), "<think>so far <point>(1, ", "hello"
    assert score("format", [ok, cut, bad], None) == [1.0, 0.0, 0.0]
    assert score("format", [ok, cut, bad], None, prefix_credit=0.5) == [1.0, 0.5, 0.0]


def test_format_is_none_when_a_pixel_frame_lacks_the_image_size():
    rs = gk.RewardSet([(gk.get_registry().reward_term("format"), 1.0)])
    text = trace(pt(10, 20))
    no_size = rs(["x", text], [truth(), truth()], frame="abs-original").values["format"]
    sized = rs([text], [truth(width=64, height=48)], frame="abs-original").values["format"]
    assert no_size == [0.0, None] and sized == [1.0]  # bad text is still the text's fault


@pytest.mark.parametrize(
    ("kind", "reference", "extra", "answers", "expected"),
    [
        ("count", "3", {}, ["3", "3 mugs", "three", "2 or 3", "4", "3.5"], [1, 1, 1, 0, 0, 0]),
        ("multiple_choice", "B", {"choices": ["red", "blue", "green"]},
         ["B", "(b)", "B. blue", "blue", "A or B", "C", "The answer is B"], [1, 1, 1, 1, 0, 0, 1]),
        ("yes_no", "yes", {}, ["Yes.", "yes", "no", "yes or no", "maybe"], [1, 1, 0, 0, 0]),
        ("number", "3.14", {}, ["3.14", "3.15", "3.5", "3.14 or 4"], [1, 1, 0, 0]),
        ("free_text", "red car", {}, ["The Red Car.", "red", "a red car"], [1, 0, 1]),
    ],
)
def test_answer(kind, reference, extra, answers, expected):
    t = truth(answer=reference, answer_type=kind, **extra)
    assert score("answer", [trace("", a) for a in answers], t) == [float(e) for e in expected]


def test_answer_unparseable_scores_zero_and_missing_reference_is_none():
    assert score("answer", ["<think>no end", trace("", "3")], [truth(answer="3", answer_type="count"), truth()]) == [0.0, None]


def test_point_in_mask():
    gt = truth(objects=[{"label": "mug", "mask": rle_rect(10, 10, 30, 30)}, {"label": "plate", "box": [0.6, 0.6, 0.9, 0.9]}])
    inside, wrong_label, outside, in_box = pt(200, 200, "mugs"), pt(200, 200, "plate"), pt(500, 100), pt(700, 700)
    assert score("point_in_mask", [trace(inside + wrong_label + outside + in_box)], gt) == [pytest.approx(2 / 4)]
    assert score("point_in_mask", [trace("no points"), trace(bx(1, 1, 5, 5))], gt) == [None, None]
    assert score("point_in_mask", [trace(inside)], truth()) == [None]  # no objects annotated


def test_point_f1():
    gt = truth(objects=[{"label": "mug", "box": [0.1, 0.1, 0.3, 0.3]}, {"label": "mug", "box": [0.6, 0.6, 0.8, 0.8]}])
    # one inside the first mug, one 0.03 from the second's box (within 0.05), one far away: TP 2, P 2/3, R 1
    three = trace(pt(200, 200) + pt(830, 700) + pt(450, 950))
    # both points inside the same mug: only one matches; P 1/2, R 1/2
    same = trace(pt(150, 150) + pt(250, 250))
    # a label that names no object never matches
    cat = trace(pt(200, 200, "cat") + pt(700, 700, "cat"))
    got = score("point_f1", [three, same, cat, trace("none")], gt)
    assert got == [pytest.approx(0.8), pytest.approx(0.5), 0.0, 0.0]
    assert score("point_f1", [three], gt, max_distance=0.01) == [pytest.approx(0.4)]  # TP 1: P 1/3, R 1/2
    assert score("point_f1", [trace("none"), trace(pt(1, 1))], truth(objects=[])) == [1.0, 0.0]


def test_point_f1_matches_point_only_objects_by_distance():
    gt = truth(objects=[{"label": "star", "points": [[0.5, 0.5]]}])
    assert score("point_f1", [trace(pt(520, 500)), trace(pt(600, 500))], gt) == [1.0, 0.0]


BOXES = truth(objects=[{"label": "a", "box": [0, 0, 0.5, 0.5]}, {"label": "b", "box": [0.5, 0.5, 1, 1]}])


def test_box_iou_greedy_is_ivgr_formula():
    # P1 = A (IoU 1), P2 = top half of A (IoU 0.5 with A, 0 with B)
    # ground-truth side: A 1, B 0 -> 0.5; predicted side: P1 1, P2 0.5 -> 0.75; 0.5 * (0.5 + 0.75)
    text = trace(bx(0, 0, 500, 500) + bx(0, 0, 500, 250))
    assert score("box_iou_greedy", [text], BOXES) == [pytest.approx(0.625)]


def test_box_iou_hungarian_counts_unmatched_as_zero():
    text = trace(bx(0, 0, 500, 500) + bx(0, 0, 500, 250))
    assert score("box_iou_hungarian", [text], BOXES) == [pytest.approx(0.5)]  # P1-A 1, P2 unmatched; 0.5*(1/2+1/2)
    one = trace(bx(0, 0, 500, 500, "a"))
    assert score("box_iou_hungarian", [one], BOXES) == [pytest.approx(0.75)]  # 0.5*(1/2 + 1/1)
    swapped = trace(bx(0, 0, 500, 500, "b"))  # label b cannot take A's place
    assert score("box_iou_hungarian", [swapped], BOXES) == [0.0]
    points_only = truth(objects=[{"label": "a", "points": [[0.1, 0.1]]}])
    assert score("box_iou_hungarian", [one], points_only) == [None]


def test_mask_iou_against_rle_and_polygon_masks():
    square = [0.2, 0.2, 0.6, 0.2, 0.6, 0.6, 0.2, 0.6]
    for mask in (square, rle_rect(20, 20, 60, 60)):
        gt = truth(width=100, height=100, objects=[{"label": "rug", "mask": mask}])
        half = trace('<mask label="rug">[(200, 200), (600, 200), (600, 400), (200, 400)]</mask>')
        exact = trace("<mask>[(200, 200), (600, 200), (600, 600), (200, 600)]</mask>")
        got = score("mask_iou", [half, exact, trace(pt(1, 1))], gt)
        assert got[0] == pytest.approx(0.5, abs=0.03) and got[1] == pytest.approx(1.0, abs=0.03) and got[2] == 0.0


def test_count_consistency():
    count = truth(answer="2", answer_type="count")
    two = trace(pt(1, 1) + pt(5, 5), "2")
    got = score("count_consistency", [two, trace(pt(1, 1), "2"), trace(pt(1, 1), "2 or 3")], count)
    assert got == [1.0, 0.0, 0.0]
    assert score("count_consistency", [two], truth(answer="yes", answer_type="yes_no")) == [None]
    assert score("count_consistency", [trace(pt(1, 1) + pt(5, 5), "two"), trace("", "red")], None) == [1.0, None]


def test_duplicate_penalty():
    boxes = trace(bx(100, 100, 300, 300) + bx(101, 100, 300, 301) + bx(600, 600, 800, 800))
    points = trace(pt(100, 100) + pt(104, 100) + pt(500, 500))
    masks = trace("<mask>[(100, 100), (400, 100), (400, 400)]</mask><mask>[(100, 100), (400, 100), (400, 401)]</mask>")
    got = score("duplicate_penalty", [boxes, points, masks, trace("plain"), "bad"], None)
    assert got == [pytest.approx(-1 / 3), pytest.approx(-1 / 3), pytest.approx(-1 / 2), 0.0, None]


def test_grounded_if_correct():
    gt = truth(answer="2", answer_type="count",
               objects=[{"label": "mug", "box": [0.1, 0.1, 0.3, 0.3]}, {"label": "mug", "box": [0.6, 0.6, 0.8, 0.8]}])
    points = pt(200, 200) + pt(830, 700) + pt(450, 950)  # point_f1 0.8 (see test_point_f1)
    got = score("grounded_if_correct", [trace(points, "2"), trace(points, "3"), trace("", "2")], gt)
    assert got == [pytest.approx(0.8), 0.0, 0.0]  # right with no grounding: every grounding term is 0
    assert score("grounded_if_correct", [trace(points, "2")], truth(objects=[])) == [None]


def test_consistency_compares_textual_with_best_grounded_completion():
    gt = truth(answer="2", answer_type="count", objects=[{"label": "mug", "box": [0.1, 0.1, 0.3, 0.3]},
                                                         {"label": "plate", "box": [0.5, 0.5, 0.9, 0.9]}])
    good = trace(pt(200, 200, "mug") + pt(250, 250, "mug"), "2")
    bad = trace(pt(900, 900, "mug"), "3")
    texts = [bad, good, trace("I count two mugs", "2"), trace("Two plates", "2"), trace("mugs", "3")]
    got = score("consistency", texts, gt)
    # textual 1: answer agrees, names mug only -> 1; textual 2: agrees, names plate not mug -> 0.5 + 0.5 * 0
    # textual 3: answer disagrees with the best (correct) grounded completion, objects overlap -> 0.5
    assert got == [None, None, 1.0, 0.5, 0.5]
    assert score("consistency", [trace("two mugs", "2")], gt) == [None]  # no grounded partner


def test_consistency_judge_is_pluggable(fresh_registry):
    class Constant(gk.ConsistencyJudge):
        def judge(self, pairs):
            return [0.25 for _ in pairs]

    consistency = type(gk.get_registry().reward_term("consistency"))

    @dataclass(frozen=True)
    class LLMConsistency(consistency):
        name = "consistency_llm"

    def register_reward_terms(register):
        register(LLMConsistency(judge=Constant()))

    plugin = types.SimpleNamespace(register_reward_terms=gk.hookimpl(register_reward_terms))
    fresh_registry(("llmjudge", plugin))
    texts = [trace(pt(1, 1, "mug"), "2"), trace("mugs", "2")]
    result = gk.RewardSet.from_spec("consistency,consistency_llm")(texts, [truth(answer="2")] * 2)
    assert result.values["consistency_llm"] == [None, 0.25] and result.values["consistency"] == [None, 1.0]


# --- reward hacking ---------------------------------------------------------------------
COUNT = truth(answer="3", answer_type="count", width=100, height=100, objects=[
    {"label": "mug", "mask": rle_rect(10, 10, 20, 20), "box": [0.1, 0.1, 0.2, 0.2]},
    {"label": "mug", "mask": rle_rect(60, 60, 70, 70), "box": [0.6, 0.6, 0.7, 0.7]},
    {"label": "mug", "mask": rle_rect(40, 80, 50, 90), "box": [0.4, 0.8, 0.5, 0.9]},
])
HONEST_POINTS = trace(pt(150, 150) + pt(650, 650) + pt(450, 850), "3")
HONEST_BOXES = trace(bx(100, 100, 200, 200) + bx(600, 600, 700, 700) + bx(400, 800, 500, 900), "3")


def test_a_point_on_every_grid_cell_scores_low():
    grid = trace("".join(pt(x, y) for x in range(25, 1000, 50) for y in range(25, 1000, 50)), "3")  # 400 points
    for name, ceiling in (("point_in_mask", 0.05), ("point_f1", 0.05), ("count_consistency", 0.0)):
        hacked, honest = score(name, [grid, HONEST_POINTS], COUNT)
        assert hacked <= ceiling and honest == 1.0, name


def test_one_box_covering_the_image_scores_low():
    cover = trace(bx(0, 0, 1000, 1000), "3")
    for name in ("box_iou_greedy", "box_iou_hungarian"):
        hacked, honest = score(name, [cover, HONEST_BOXES], COUNT)
        assert hacked < 0.2 and honest == pytest.approx(1.0), name


def test_fifty_duplicate_boxes_score_low():
    dupes = trace(bx(100, 100, 200, 200) * 50, "3")
    assert score("box_iou_hungarian", [dupes], COUNT)[0] < 0.2
    assert score("duplicate_penalty", [dupes], COUNT)[0] == pytest.approx(-49 / 50)
    # greedy IoU alone is fooled by duplicates (iVGR's form); with the penalty the honest output wins
    rs = gk.RewardSet.from_spec("box_iou_greedy,duplicate_penalty")
    hacked, honest = rs([dupes, HONEST_BOXES], [COUNT, COUNT]).total
    assert honest > hacked + 0.5


# --- reward sets ------------------------------------------------------------------------
def test_reward_set_total_leaves_none_out_or_renormalises():
    texts = [trace(pt(150, 150), "3"), trace("no groundings", "3"), "garbage"]
    spec = "answer:2,point_in_mask:0.5"
    summed = gk.RewardSet.from_spec(spec)(texts, [COUNT] * 3)
    assert summed.values["point_in_mask"] == [1.0, None, 0.0]
    assert summed.total == [pytest.approx(2.5), pytest.approx(2.0), 0.0]
    renorm = gk.RewardSet.from_spec(spec, none="renormalize")(texts, [COUNT] * 3)
    assert renorm.total == [pytest.approx(2.5), pytest.approx(2.5), 0.0]
    assert gk.RewardSet.from_spec("point_in_mask")(["garbage"], [None]).total == [None]
    stats = summed.summary()["point_in_mask"]
    assert stats["mean"] == pytest.approx(0.5) and stats["none_share"] == pytest.approx(1 / 3)


def test_reward_set_spec_errors_are_clear():
    with pytest.raises(gk.UnknownNameError, match="unknown reward term 'nope'"):
        gk.RewardSet.from_spec("format,nope")
    with pytest.raises(gk.GroundkitError, match="weight must be a number"):
        gk.RewardSet.from_spec("format:x")
    with pytest.raises(gk.GroundkitError, match="twice"):
        gk.RewardSet.from_spec("format,format:2")
    with pytest.raises(gk.GroundkitError, match="no parameter|unexpected keyword"):
        gk.get_registry().reward_term("point_f1").with_params(nope=1)


def test_each_completion_is_parsed_once_per_batch(monkeypatch):
    calls = []
    original = gk.TraceParser.parse

    def counting(self, text, image_size=None):
        calls.append(text)
        return original(self, text, image_size)

    monkeypatch.setattr(gk.TraceParser, "parse", counting)
    texts = [HONEST_POINTS, HONEST_BOXES, "garbage", HONEST_POINTS]
    gk.RewardSet.from_spec(",".join(ALL_TERMS))(texts, [COUNT] * 4)
    assert sorted(calls) == sorted({*texts})  # one parse per distinct text, errors included


def test_hook_register_reward_terms(fresh_registry):
    @dataclass(frozen=True)
    class Brevity(gk.RewardTerm):
        max_chars: int = 30
        name = "brevity"

        def score_one(self, batch, i):
            return float(len(batch.samples[i].text) <= self.max_chars)

    def plugin():
        def register_reward_terms(register):
            register(Brevity())

        return types.SimpleNamespace(register_reward_terms=gk.hookimpl(register_reward_terms))

    reg = fresh_registry(("brevity_plugin", plugin()))
    assert reg.plugins["brevity_plugin"].registered == [("reward term", "brevity")]
    assert gk.RewardSet.from_spec("brevity")(["short", "x" * 40]).values["brevity"] == [1.0, 0.0]
    twice = fresh_registry(("brevity_plugin", plugin()), ("again", plugin()))  # rejected with a warning, first wins
    assert [f.name for f in twice.failures] == ["again"] and "registered twice" in twice.failures[0].error
