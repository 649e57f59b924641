"""Lenient reading: every well-formed grounding anywhere is recovered, the rest is skipped with
a reason, nothing raises for content; reward terms and TRL functions can read leniently."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import trace

import groundkit as gk
from groundkit.text.lenient import EXPLAINED

DIALECTS = ["groundkit", "treevgr", "qwen2vl", "qwen-json", "molmo"]


def boxes(t: gk.Trace) -> list[tuple[float, ...]]:
    return [g.raw for g in t.groundings]


def test_malformed_degenerate_and_out_of_frame_groundings_are_skipped_with_reasons():
    text = (
        '<think>a <box label="cup">[1, 2, 3, 4]</box> b <box>[5, 5, 1, 1]</box> c <box>[1, 2, 3</box> '
        "d <point>(1, 2000)</point> e <box>[10, 20, 30, 40]</box></think><answer>2</answer>"
    )
    with pytest.raises(gk.ParseError):
        gk.parse(text)
    t = gk.parse(text, lenient=True)
    assert boxes(t) == [(1, 2, 3, 4), (10, 20, 30, 40)]
    assert t.answer == "2" and t.groundings[0].label == "cup"
    reasons = [p.reason for p in t.problems]
    assert "degenerate box" in reasons[0]
    assert reasons[1].startswith("malformed box: unexpected character '<'") and '","' in reasons[1]
    assert "outside [0, 1000]" in reasons[2]
    assert [text[slice(*p.span)][:5] for p in t.problems] == ["<box>", "<box>", "<poin"]
    assert [p.kind for p in t.problems] == ["box", "box", "point"]


def test_groundings_in_the_answer_or_without_any_tags_are_recovered():
    vlm_r1 = "<think>The cup is on the left.</think><answer><box>[10, 20, 30, 40]</box></answer>"
    t = gk.parse(vlm_r1, lenient=True)
    assert boxes(t) == [(10, 20, 30, 40)] and t.thought == "The cup is on the left."
    assert t.answer == "<box>[10, 20, 30, 40]</box>"
    bare = 'Two mugs: <point label="mug">(1, 2)</point> and <point label="mug">(3, 4)</point>'
    t = gk.parse(bare, lenient=True)
    assert [g.raw for g in t.groundings] == [(1, 2), (3, 4)] and t.answer is None and not t.problems
    assert gk.parse('<think>x {"bbox_2d": [1, 2, 3, 4]}', "qwen-json", lenient=True).groundings[0].raw == (1, 2, 3, 4)


def test_a_truncated_completion_keeps_its_groundings_and_notes_the_unfinished_one():
    text = '<think>mug <point label="mug">(12, 34)</point> and <point label="mug">(56, '
    t = gk.parse(text, lenient=True)
    assert [g.raw for g in t.groundings] == [(12, 34)] and t.answer is None
    (problem,) = t.problems
    assert problem.reason.startswith("unfinished point: the text ends inside it") and problem.span[1] == len(text)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_lenient_reading_equals_strict_on_valid_text_and_never_raises_on_mutations(dialect, data):
    tr = data.draw(trace(dialect))
    text = gk.format_trace(tr, dialect)
    assert gk.parse(text, dialect, lenient=True) == gk.parse(text, dialect)
    for _ in range(3):
        pos = data.draw(st.integers(0, len(text)))
        noise = data.draw(st.sampled_from(["<", ">", '"', ",", "0", "9999", "[", "]", "{", "}", "(", "\n", "</think>", ""]))
        text = text[:pos] + noise + text[pos + data.draw(st.integers(0, 3)):]
        got = gk.parse(text, dialect, lenient=True)
        for g in got.groundings:  # each recovered grounding is exactly what the strict parser reads from its text
            alone = gk.parse(f"<think>{text[g.span[0]:g.span[1]]}</think><answer></answer>", dialect)
            assert [(x.type, x.raw, x.label) for x in alone.groundings][:1] == [(g.type, g.raw, g.label)]
        for p in got.problems:
            assert 0 <= p.span[0] < p.span[1] <= len(text) and p.reason


def test_many_malformed_candidates_each_get_a_problem_and_later_ones_a_short_reason():
    text = "<think>" + "<box>[1, 2, x" * (EXPLAINED + 10) + "<box>[1, 2, 3, 4]</box>"
    t = gk.parse(text, lenient=True)
    assert boxes(t) == [(1, 2, 3, 4)]
    assert len(t.problems) == EXPLAINED + 10
    assert "expected" in t.problems[0].reason and t.problems[-1].reason == "malformed box"


def test_trace_problems_are_in_its_dict_and_a_strict_trace_has_none():
    t = gk.parse("<think><box>[5, 5, 1, 1]</box></think><answer>1</answer>", lenient=True)
    assert t.to_dict()["problems"][0]["kind"] == "box"
    assert gk.parse("<think>x</think><answer>1</answer>").problems == ()


# --- rewards ------------------------------------------------------------------------------
GT = [[100, 100, 300, 300], [500, 500, 800, 900]]


def ivgr_greedy(pred: list[list[int]], gt: list[list[int]]) -> float:
    """iVGR's box reward written out: 0.5 x (mean best IoU per ground-truth box + mean best IoU per predicted box)."""
    def iou(a, b):
        w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    m = np.array([[iou(p, g) for g in gt] for p in pred])
    return 0.5 * (m.max(axis=0).mean() + m.max(axis=1).mean())


IVGR_CASES = [  # (completion with malformed boxes among good ones, the good boxes iVGR scores)
    ("<think>first <box>[100,100,300,300]</box> then <box>[500,500,800]</box></think><answer>A</answer>",
     [[100, 100, 300, 300]]),
    ("<think><box>[120,90,310,280]</box> <box>[abc,1,2,3]</box> <box>[480,520,820,880]</box></think><answer>B</answer>",
     [[120, 90, 310, 280], [480, 520, 820, 880]]),
    ("<think><box>[100,100,300,300] the cup <box>[500,500,800,900]</box></think><answer>C</answer>",
     [[500, 500, 800, 900]]),
    ("<think><box>[0,0,1000,1000]</box><box>[1,2,3,4,5]</box><box>[510,490,790,910]</box>", [[0, 0, 1000, 1000], [510, 490, 790, 910]]),
]


@pytest.mark.parametrize(("text", "good"), IVGR_CASES)
def test_lenient_box_iou_greedy_equals_ivgr_on_its_skip_the_bad_box_cases(text, good):
    truth = gk.GroundTruth.from_dict({"id": "s", "objects": [{"label": f"o{k}", "box": [v / 1000 for v in b]} for k, b in enumerate(GT)]})
    lenient = gk.RewardSet.from_spec("box_iou_greedy,format", reading="lenient")([text], [truth], dialect="treevgr")
    assert lenient.values["box_iou_greedy"] == [pytest.approx(ivgr_greedy(good, GT))]
    assert lenient.values["format"] == [0.0]  # the format term stays strict
    strict = gk.RewardSet.from_spec("box_iou_greedy")([text], [truth], dialect="treevgr")
    assert strict.values["box_iou_greedy"] == [0.0]


def test_lenient_reading_reads_the_answer_and_a_valid_completion_scores_the_same():
    truth = gk.GroundTruth.from_dict({"id": "s", "answer": "2", "answer_type": "count"})
    texts = ["<think>x <point>(1, 2</point></think><answer>2</answer>", "<think>x</think><answer>2</answer>"]
    strict = gk.RewardSet.from_spec("answer,format")(texts, [truth, truth])
    lenient = gk.RewardSet.from_spec("answer,format", reading="lenient")(texts, [truth, truth])
    assert strict.values["answer"] == [0.0, 1.0] and lenient.values["answer"] == [1.0, 1.0]
    assert strict.values["format"] == lenient.values["format"] == [0.0, 1.0]


def test_an_unknown_reading_is_a_clear_error():
    with pytest.raises(gk.GroundkitError, match="reading must be one of strict, lenient"):
        gk.RewardSet.from_spec("format", reading="loose")


def test_trl_reward_functions_read_leniently_when_asked():
    from groundkit.rewards.trl import trl_reward_funcs

    text = IVGR_CASES[0][0]
    gt = {"id": "s", "objects": [{"label": f"o{k}", "box": [v / 1000 for v in b]} for k, b in enumerate(GT)]}
    (func,), _ = trl_reward_funcs("box_iou_greedy", dialect="treevgr", reading="lenient")
    assert func(prompts=["p"], completions=[text], ground_truth=[gt]) == [pytest.approx(ivgr_greedy(IVGR_CASES[0][1], GT))]
    (strict,), _ = trl_reward_funcs("box_iou_greedy", dialect="treevgr")
    assert strict(prompts=["p"], completions=[text], ground_truth=[gt]) == [0.0]


# --- command line -------------------------------------------------------------------------
def test_parse_and_score_take_lenient(tmp_path):
    import json

    from typer.testing import CliRunner

    from groundkit.cli import app

    text = IVGR_CASES[1][0]
    comp, gt = tmp_path / "c.jsonl", tmp_path / "gt.jsonl"
    comp.write_text(json.dumps({"id": "c1", "sample_id": "s", "completion": text}) + "\n")
    gt.write_text(json.dumps({"id": "s", "answer": "B", "objects": [{"label": f"o{k}", "box": [v / 1000 for v in b]} for k, b in enumerate(GT)]}) + "\n")
    runner = CliRunner()
    strict = runner.invoke(app, ["parse", str(comp), "-d", "treevgr"])
    assert strict.exit_code == 1 and "record c1" in strict.output
    lenient = runner.invoke(app, ["parse", str(comp), "-d", "treevgr", "--lenient"])
    assert lenient.exit_code == 0, lenient.output
    parsed = json.loads(lenient.stdout)
    assert len(parsed["think"]) >= 2 and parsed["problems"][0]["reason"].startswith("malformed box")
    out = tmp_path / "scores.jsonl"
    scored = runner.invoke(app, ["score", str(comp), "--data", str(gt), "-d", "treevgr", "-r", "format,answer,box_iou_greedy",
                                 "--lenient", "-o", str(out)])
    assert scored.exit_code == 0, scored.output
    row = json.loads(out.read_text())
    assert row["terms"]["format"] == 0.0 and row["terms"]["answer"] == 1.0
    assert row["terms"]["box_iou_greedy"] == pytest.approx(ivgr_greedy(IVGR_CASES[1][1], GT))
    assert row["skipped"][0]["kind"] == "box" and "parse_error" in row


def test_training_config_reading_reaches_the_reward_functions():
    from groundkit.training.config import ConfigError, load_config
    from groundkit.training.grpo import reward_functions

    base = {"model": {"path": "tiny:qwen2-vl"}, "data": {"train": "train.jsonl"}, "rewards": {"box_iou_greedy": 1.0}}
    cfg = load_config({**base, "reading": "lenient"}, "grpo")
    (func,), weights = reward_functions(cfg, gk.get_grammar("treevgr"))
    gt = {"id": "s", "objects": [{"label": f"o{k}", "box": [v / 1000 for v in b]} for k, b in enumerate(GT)]}
    assert func(prompts=["p"], completions=[IVGR_CASES[0][0]], ground_truth=[gt]) == [pytest.approx(ivgr_greedy(IVGR_CASES[0][1], GT))]
    assert load_config(base, "grpo").reading == "strict"
    from groundkit.training.dual_stream import dual_stream_rewards

    dual = load_config({**base, "reading": "lenient", "dual_stream": {"enabled": True}}, "grpo")
    assert dual_stream_rewards(dual, gk.get_grammar("treevgr"))[0][0].inner.cache.reading == "lenient"
    with pytest.raises(ConfigError, match="reading"):
        load_config({**base, "reading": "loose"}, "grpo")


def test_eval_lenient_keeps_format_strict_and_reads_answers_and_groundings_leniently(tmp_path):
    import json

    from groundkit.eval import EvalConfig, evaluate
    from groundkit.scenes import generate_scenes
    from groundkit.scenes.simulate import simulate_completions

    generate_scenes(tmp_path / "scenes", 6, seed=3, size="tiny")
    truths = gk.load_ground_truth(tmp_path / "scenes" / "scenes.jsonl").values()
    rows = list(simulate_completions(truths, wrong=0.0, invalid=0.0, jitter=0.0))
    clean, flawed = tmp_path / "clean.jsonl", tmp_path / "flawed.jsonl"
    clean.write_text("".join(json.dumps(r) + "\n" for r in rows))
    flawed.write_text("".join(json.dumps({**r, "completion": r["completion"].replace("<think>", "<think><box>[1, 2, x</box>", 1)}) + "\n"
                              for r in rows))
    bench = [f"scenes:{tmp_path / 'scenes'}"]
    reference = evaluate(EvalConfig(bench, completions=str(clean)), tmp_path / "ref").summary["overall"]
    strict = evaluate(EvalConfig(bench, completions=str(flawed)), tmp_path / "strict").summary["overall"]
    run = evaluate(EvalConfig(bench, completions=str(flawed), reading="lenient"), tmp_path / "lenient")
    lenient = run.summary["overall"]
    assert strict["format"] == lenient["format"] == 0.0 and strict["answer"] == 0.0
    for metric in ("answer", "point_in_mask", "point_f1", "box_iou_hungarian"):
        assert lenient[metric] == pytest.approx(reference[metric]), metric
    assert all(r["skipped"][0]["reason"].startswith("malformed box") and r["parse_error"] for r in run.rows)
    from typer.testing import CliRunner

    from groundkit.cli import app

    result = CliRunner().invoke(app, ["eval", "-b", bench[0], "-c", str(flawed), "-o", str(tmp_path / "cli"), "--lenient", "--json"])
    assert result.exit_code == 0, result.output
    overall = json.loads(result.stdout)["summary"]["overall"]
    assert overall["format"] == 0.0 and overall["answer"] == pytest.approx(reference["answer"])


def test_a_run_of_candidate_starts_is_one_skipped_span():
    text = "<think>" + "{" * 5000 + '{"point_2d": [1, 2]} done'
    t = gk.parse(text, "qwen-json", lenient=True)
    assert [g.raw for g in t.groundings] == [(1, 2)]
    (problem,) = t.problems
    assert problem.span == (7, 5007)


def test_a_pixel_frame_without_the_image_size_is_the_callers_error_in_lenient_reading_too():
    text = '<think>{"bbox_2d": [1, 2, 3, 4]} {"bbox_2d": [1, 2, 3'
    with pytest.raises(gk.FrameError, match="needs the image size"):
        gk.parse(text, "qwen-json", frame="abs-original", lenient=True)
    assert [g.raw for g in gk.parse(text, "qwen-json", frame="abs-original", image_size=(640, 480), lenient=True).groundings] == [(1, 2, 3, 4)]
